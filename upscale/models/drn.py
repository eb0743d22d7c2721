"""DRN: Dual Regression Networks (Guo et al., CVPR 2020, "Closed-loop Matters").

The primal network upsamples the LR input with PyTorch's bicubic (a = -0.75, as the official code does,
not MATLAB's) inside the model, runs a U-Net-like path down to LR size and back up with RCAB groups, and
predicts an RGB image in [0, 255] at every power-of-two scale. The dual networks map each output back to
the next lower scale; they only matter for training.

Key names follow the official release (``sub_mean``, ``head``, ``down.P.dual_module``, ``up_blocks.I.J``,
``tail.K``, ``add_mean``), so ``DRN{S,L}{4,8}x.pt`` load as they are. The ``*_dual_model.pt`` files are
lists of dual state dicts (no primal network): read them with :func:`upscale.models.nets.drn.load_dual_models`.
"""

from __future__ import annotations

import re
from typing import Any

from .registry import ModelSpec, StateDict

# (F, B) per published configuration [DRN utility.py:init_model].
PUBLISHED = {("s", 4): (16, 30), ("s", 8): (8, 30), ("l", 4): (20, 40), ("l", 8): (10, 36)}


def detect(sd: StateDict) -> bool:
    return all(k in sd for k in ("sub_mean.weight", "head.weight", "down.0.dual_module.0.0.weight", "tail.0.weight"))


def hparams_from(sd: StateDict) -> dict[str, Any]:
    phases = len({m[1] for k in sd if (m := re.match(r"down\.(\d+)\.", k))})
    n_blocks = len({m[1] for k in sd if (m := re.match(r"up_blocks\.0\.(\d+)\.body\.", k))})
    return {"scale": 2**phases, "n_feats": sd["head.weight"].shape[0], "n_blocks": n_blocks}


def _is_variant(sd: StateDict, variant: str) -> bool:
    """DRN-S and DRN-L differ in width: F equal to the published DRN-S width means DRN-S."""
    scale = hparams_from(sd)["scale"]
    small = PUBLISHED.get(("s", scale), (None,))[0]
    return (sd["head.weight"].shape[0] == small) == (variant == "s")


def _spec(variant: str, title: str, params: dict[int, int]) -> ModelSpec:
    return ModelSpec(
        name=f"drn-{variant}",
        build=f"upscale.models.nets.drn:build_drn_{variant}",
        scales=(4, 8),
        title=title,
        colour="rgb",
        input_kind="lr",
        value_range=255.0,
        # The RCABs' channel attention pools over the whole image, so tiles only approximate the
        # whole-image result. Convolutions alone reach far at LR scale (B RCABs at LR/2 size), so the
        # margin is generous.
        margin_px=32,
        exact_tiling=False,
        # The stride-2 convs halve s·H exactly and PixelShuffle doubles it back, so any size works.
        min_size_px=1,
        size_multiple=1,
        prefer_official=True,
        detect=lambda sd: detect(sd) and _is_variant(sd, variant),
        hparams_from=hparams_from,
        params=params,
    )


DRN_S_SPEC = _spec("s", "Dual Regression Networks, DRN-S (CVPR 2020)", {4: 4_804_065, 8: 5_403_000})
DRN_L_SPEC = _spec("l", "Dual Regression Networks, DRN-L (CVPR 2020)", {4: 9_825_893, 8: 10_004_018})
