"""ESRGAN's RRDBNet generator (Wang et al., ECCVW 2018), also the network of Real-ESRGAN (ICCVW 2021).

Key names are BasicSR's (``conv_first``, ``body.N.rdbK.convM``, ``conv_body``, ``conv_up1``, ``conv_hr``,
``conv_last``). :func:`convert` renames the two older layouts to them: the 2018 flattened ``model.*``
Sequential (most community models) and the 2019 ESRGAN repository names (``RRDB_trunk``, ``trunk_conv``,
``upconv1``, ``HRconv``). The network works on RGB in [0, 1].

Two ways to reach x2 exist and both load: the old one (one nearest-x2 + conv stage), and Real-ESRGAN's
x2plus/x1, which pixel-unshuffles the input by 2/4 in front of the x4 network.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .registry import ModelSpec, StateDict

# --- state-dict layouts --------------------------------------------------------------------------

_RDB_2019 = re.compile(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$")
_RDB_OLD = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_TRUNK_OLD = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)$")
_TOP_OLD = re.compile(r"model\.(\d+)\.(weight|bias)$")
_NAMES_2019 = {"trunk_conv": "conv_body", "HRconv": "conv_hr", "conv_first": "conv_first", "conv_last": "conv_last"}


def _convert_2019(sd: StateDict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sd.items():
        name, _, param = key.rpartition(".")
        if m := _RDB_2019.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif name in _NAMES_2019:
            out[f"{_NAMES_2019[name]}.{param}"] = value
        elif m := re.fullmatch(r"upconv(\d+)", name):
            out[f"conv_up{m[1]}.{param}"] = value
        else:
            out[key] = value  # left for the strict load to report
    return out


def _convert_old(sd: StateDict) -> dict[str, Any]:
    """The 2018 ``nn.Sequential``: 0 first conv, 1 trunk (``sub.{nb}`` its last conv), then for each
    nearest-x2 stage (Upsample, conv, LReLU) at 2..; HR conv and last conv are the two highest indices."""
    top = sorted({int(m[1]) for k in sd if (m := _TOP_OLD.match(k)) and int(m[1]) >= 2})
    if len(top) < 2:
        raise ValueError("old ESRGAN layout without HR and last convs")
    names = {0: "conv_first", top[-2]: "conv_hr", top[-1]: "conv_last"}
    names.update({idx: f"conv_up{k}" for k, idx in enumerate(top[:-2], start=1)})
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if m := _RDB_OLD.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := _TRUNK_OLD.match(key):
            out[f"conv_body.{m[2]}"] = value
        elif (m := _TOP_OLD.match(key)) and int(m[1]) in names:
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        else:
            out[key] = value
    return out


def convert(sd: StateDict) -> dict[str, Any]:
    """Rename the 2018 ``model.*`` or the 2019 ``RRDB_trunk`` layout to BasicSR names; others pass through."""
    if any(k.startswith("model.1.sub.") for k in sd):
        return _convert_old(sd)
    if any(k.startswith("RRDB_trunk.") for k in sd):
        return _convert_2019(sd)
    return dict(sd)


def detect(sd: StateDict) -> bool:
    keys = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_hr.weight", "conv_last.weight")
    return all(k in sd for k in keys)


def hparams_from(sd: StateDict) -> dict[str, Any]:
    num_feat, in_ch = sd["conv_first.weight"].shape[:2]
    num_out_ch = sd["conv_last.weight"].shape[0]
    num_up = len([k for k in sd if re.fullmatch(r"conv_up\d+\.weight", k)])
    # Real-ESRGAN x2plus/x1 fold the RGB input into 12/48 channels: conv_first sees in_ch = out_ch·r².
    unshuffle = next((r for r in (4, 2) if in_ch == num_out_ch * r * r), 1)
    if 2**num_up % unshuffle:
        raise ValueError(f"RRDBNet with {num_up} upsampling convs cannot follow a x{unshuffle} unshuffle")
    return {
        "scale": 2**num_up // unshuffle,
        "num_in_ch": in_ch // unshuffle**2,
        "num_out_ch": num_out_ch,
        "num_feat": num_feat,
        "num_block": len({m[1] for k in sd if (m := re.match(r"body\.(\d+)\.", k))}),
        "num_grow_ch": sd["body.0.rdb1.conv1.weight"].shape[0],
        "pixel_unshuffle": unshuffle,
    }


def receptive_radius(num_block: int = 23, num_up: int = 2, unshuffle: int = 1) -> int:
    """Theoretical receptive-field radius in input pixels: every 3×3 conv reaches one pixel further
    at its own resolution (2 + 15·num_block convs before the upsampling)."""
    lr_convs = 2 + 15 * num_block
    hr_reach = sum(0.5**k for k in range(1, num_up + 1)) + 2 * 0.5**num_up
    return math.ceil((lr_convs + hr_reach) * unshuffle)


ESRGAN_SPEC = ModelSpec(
    name="esrgan",
    build="upscale.models.nets.esrgan:RRDBNet",
    scales=(1, 2, 4, 8),
    title="ESRGAN: Enhanced Super-Resolution GANs (ECCVW 2018); Real-ESRGAN (ICCVW 2021)",
    fits="clean photos; real-world photos with --weights realesrgan-x4plus (slow)",
    colour="rgb",
    input_kind="lr",
    value_range=1.0,
    # The theoretical receptive field is receptive_radius() = 349 input px for x4 (x2plus/x1 reach
    # 2x/4x that), far more than any practical tile pad. The effective field is much smaller: with a
    # 20 px pad plus the feather, tiled and untiled outputs agree to well under 2/255 on photos
    # (tests/test_engine.py measures it), so tiling is approximate by declaration.
    margin_px=20,
    exact_tiling=False,
    detect=detect,
    convert=convert,
    hparams_from=hparams_from,
    params={1: 16_723_907, 2: 16_703_171, 4: 16_697_987, 8: 16_734_915},
)
