"""SRVGGNetCompact, the compact network of Real-ESRGAN (Wang et al., ICCVW 2021), released with its
video models: realesr-animevideov3 (16 convolutions, "XS") and realesr-general-x4v3 (32, "S").

A plain stack of 3×3 convolutions with per-channel PReLU on the LR image, a sub-pixel output and the
nearest-upsampled input added; RGB in [0, 1]. Key names are the authors' (``body.N.weight``: even N a
convolution, odd N a PReLU of ``num_feat`` slopes), so their ``.pth`` files load as published (the
``params`` wrapper is unwrapped by :func:`~upscale.models.loading.canonicalize`).

realesr-general-x4v3 comes with a twin trained to denoise less, realesr-general-wdn-x4v3. Real-ESRGAN's
``--denoise_strength`` (``-dn``) blends the two tensor by tensor ("deep network interpolation"):
``denoise·general + (1 − denoise)·wdn``, so 1 is the general file alone and 0 the weak-denoise one;
:func:`denoised_general` does the same.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .registry import ModelSpec, StateDict

if TYPE_CHECKING:
    from .loading import LoadedModel
    from .registry import Registry

GENERAL = "realesr-general-x4v3"
"""The catalogue name of the general model, the one ``--denoise`` blends."""
GENERAL_WDN = "realesr-general-wdn-x4v3"
"""Its weak-denoise twin (same shapes)."""

_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


def detect(sd: StateDict) -> bool:
    """``body.0`` .. ``body.L`` and nothing else: 3×3 convolutions (weight and bias) at even indices, PReLUs
    of their convolution's width (weight only) at odd ones, L even and at least 2."""
    found: dict[int, set[str]] = {}
    for key in sd:
        m = _KEY.fullmatch(key)
        if m is None:
            return False
        found.setdefault(int(m[1]), set()).add(m[2])
    last = max(found, default=-1)
    if last < 2 or last % 2 or sorted(found) != list(range(last + 1)):
        return False
    for i, names in found.items():
        w = sd[f"body.{i}.weight"]
        if i % 2 == 0:
            if names != {"weight", "bias"} or tuple(w.shape[2:]) != (3, 3) or len(w.shape) != 4:
                return False
        elif names != {"weight"} or tuple(w.shape) != (sd[f"body.{i - 1}.weight"].shape[0],):
            return False
    return True


def hparams_from(sd: StateDict) -> dict[str, Any]:
    last = max(int(m[1]) for k in sd if (m := _KEY.fullmatch(k)))
    num_feat, in_ch = (int(n) for n in sd["body.0.weight"].shape[:2])
    out = int(sd[f"body.{last}.weight"].shape[0])
    scale = round((out / in_ch) ** 0.5)
    if scale < 1 or scale * scale * in_ch != out:
        raise ValueError(f"SRVGGNetCompact with {in_ch} input channels cannot end in {out} channels")
    return {"scale": scale, "num_in_ch": in_ch, "num_out_ch": in_ch, "num_feat": num_feat, "num_conv": (last - 2) // 2}


def receptive_radius(num_conv: int) -> int:
    """Input pixels an output pixel depends on, each side: one per 3×3 convolution (``num_conv + 2``)."""
    return num_conv + 2


COMPACT_SPEC = ModelSpec(
    name="compact",
    build="upscale.models.nets.compact:SRVGGNetCompact",
    # The authors released x4 files; community files exist at x1 and x2, and the network builds at any scale.
    scales=(1, 2, 3, 4),
    title="SRVGGNetCompact of Real-ESRGAN (Wang et al., ICCVW 2021): realesr-general-x4v3, realesr-animevideov3",
    fits="real-world photos and video",  # REAL_WORLD of upscale.models: the official files are trained on them
    colour="rgb",
    input_kind="lr",
    value_range=1.0,
    # Exact: the receptive-field radius of realesr-general-x4v3 (32 convolutions; animevideov3's is 18).
    margin_px=receptive_radius(32),
    exact_tiling=True,
    # auto_bf16 stays False: with no official file here, bf16 was measured on random weights only
    # (tests/models/test_compact.py's variance-keeping init). Set5 PSNR-Y moved by -0.006..+0.003 dB with a
    # residual of std 0.05, but by -0.022 dB for 32 convolutions with a 0.15 residual: past the 0.02 dB that
    # rlfn's declaration was held to on its official file. Checking realesr-general-x4v3 itself decides it.
    default_hparams={"num_conv": 32},
    detect=detect,
    hparams_from=hparams_from,
    params={1: 1_187_331, 2: 1_192_524, 3: 1_201_179, 4: 1_213_296},
)


def denoised_general(
    denoise: float, *, scale: int | None = None, offline: bool | None = None, registry: Registry | None = None
) -> LoadedModel:
    """realesr-general-x4v3 at Real-ESRGAN's denoise strength ``denoise`` in [0, 1]: per tensor
    ``denoise·general + (1 − denoise)·wdn`` (blended in float64, stored in float32).

    The two official files are taken from the cache, downloaded on first use unless ``offline`` (None:
    ``UPSCALE_OFFLINE`` decides); at 1 or 0 only the one file used is fetched.
    """
    from .. import hub
    from ..errors import UpscaleError
    from .interpolate import interpolate_weights
    from .loading import model_from_state_dict, read_state_dict

    if not 0.0 <= denoise <= 1.0:
        raise UpscaleError(f"the denoise strength must be in [0, 1], not {denoise:g}")
    if scale is not None:
        COMPACT_SPEC.check_scale(scale)
    origin = f"{GENERAL} + {GENERAL_WDN} (denoise {denoise:g})"
    if denoise in (0.0, 1.0):  # one file alone: as Real-ESRGAN, blend nothing
        name = GENERAL if denoise == 1.0 else GENERAL_WDN
        tensors = read_state_dict(hub.resolve(name, offline=offline))
    else:
        general = hub.resolve(GENERAL, offline=offline)
        wdn = hub.resolve(GENERAL_WDN, offline=offline)
        tensors = interpolate_weights(wdn, general, denoise, model=COMPACT_SPEC.name).tensors
    return model_from_state_dict(COMPACT_SPEC, tensors, scale=scale, registry=registry, origin=origin)
