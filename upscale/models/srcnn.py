"""SRCNN: Super-Resolution Convolutional Neural Network (Dong et al., ECCV 2014 / TPAMI 2016).

Three convolutions on the Y channel of a bicubic-upsampled image: patch extraction (f1×f1, n1
filters, ReLU), non-linear mapping (f2×f2, n2 filters, ReLU) and reconstruction (f3×f3, linear).
The ECCV network is 9-1-5, the TPAMI default 9-5-5. Training used valid convolutions, but the
authors' test code filters with ``imfilter(..., 'same', 'replicate')``, so every convolution here
pads by ``k // 2`` with replicated borders and the output has the input's size.

The authors released MATLAB ``.mat`` files (``weights_conv1``, ``biases_conv1``, ...);
:func:`convert` turns them into this module's ``conv1``/``conv2``/``conv3`` layout. A ``.mat`` file
says nothing about its scale, so the scale is whatever the caller asks for.
"""

from __future__ import annotations

import math
from typing import Any

from .registry import ModelSpec, StateDict

_KEYS = frozenset(f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))
_MAT_KEYS = ("weights_conv1", "biases_conv1", "weights_conv2", "biases_conv2", "weights_conv3", "biases_conv3")


def _side(taps: int, what: str) -> int:
    side = math.isqrt(taps)
    if side * side != taps:
        raise ValueError(f"{what}: {taps} taps is not a square kernel")
    return side


def _from_mat(sd: StateDict) -> dict[str, Any]:
    """The authors' MATLAB layout -> ``conv1``/``conv2``/``conv3`` float32 tensors.

    MATLAB rebuilds each kernel with column-major ``reshape(w, f, f)`` and filters by correlation
    (``imfilter``), so a C-order reshape followed by a transpose of the two spatial axes gives the
    PyTorch kernel with no flip.
    """
    import torch  # the only step that makes tensors; importing it here keeps this module light

    w1 = torch.as_tensor(sd["weights_conv1"], dtype=torch.float64)  # (f1², n1)
    w2 = torch.as_tensor(sd["weights_conv2"], dtype=torch.float64)  # (n1, f2², n2), or (n1, n2) for f2 = 1
    w3 = torch.as_tensor(sd["weights_conv3"], dtype=torch.float64)  # (n2, f3²)
    if w2.ndim == 2:
        w2 = w2.unsqueeze(1)
    f1 = _side(w1.shape[0], "weights_conv1")
    n1, f2sq, n2 = w2.shape
    f2 = _side(f2sq, "weights_conv2")
    f3 = _side(w3.shape[1], "weights_conv3")
    if w1.shape[1] != n1 or w3.shape[0] != n2:
        raise ValueError("SRCNN .mat layers do not chain")
    out: dict[str, Any] = {
        "conv1.weight": w1.T.reshape(n1, 1, f1, f1).transpose(-1, -2),
        "conv1.bias": torch.as_tensor(sd["biases_conv1"]).reshape(-1),
        "conv2.weight": w2.permute(2, 0, 1).reshape(n2, n1, f2, f2).transpose(-1, -2),
        "conv2.bias": torch.as_tensor(sd["biases_conv2"]).reshape(-1),
        "conv3.weight": w3.reshape(1, n2, f3, f3).transpose(-1, -2),
        "conv3.bias": torch.as_tensor(sd["biases_conv3"]).reshape(-1),
    }
    # Anything else in the file is passed on, so strict loading reports it instead of it being dropped.
    extra = {k: v for k, v in sd.items() if k not in _MAT_KEYS}
    return {**{k: v.to(torch.float32).contiguous() for k, v in out.items()}, **extra}


def convert(sd: StateDict) -> dict[str, Any]:
    """The authors' ``.mat`` layout (``weights_conv1``, ...) or this module's own (``conv1.weight``, ...)."""
    if "weights_conv1" in sd:
        return _from_mat(sd)
    return dict(sd)


def detect(sd: StateDict) -> bool:
    return (
        set(sd) == _KEYS
        and sd["conv1.weight"].ndim == 4
        and sd["conv1.weight"].shape[1] == 1
        and sd["conv3.weight"].shape[0] == 1
    )


def hparams_from(sd: StateDict) -> dict[str, Any]:
    """Kernel sizes and filter counts from the shapes; no scale (the weights do not say)."""
    return {
        "kernel_sizes": tuple(int(sd[f"conv{i}.weight"].shape[-1]) for i in (1, 2, 3)),
        "n1": int(sd["conv1.weight"].shape[0]),
        "n2": int(sd["conv2.weight"].shape[0]),
    }


SRCNN_SPEC = ModelSpec(
    name="srcnn",
    build="upscale.models.nets.srcnn:SRCNN",
    scales=(2, 3, 4),
    title="Image Super-Resolution Using Deep Convolutional Networks (ECCV 2014, TPAMI 2016)",
    colour="y",
    input_kind="bicubic",
    value_range=1.0,
    # Radius in high-resolution pixels is (f1 + f2 + f3 - 3) / 2: 6 for 9-1-5, 8 for 9-5-5, i.e.
    # at most 8 / scale LR pixels, plus 2 LR pixels of bicubic support. 12 covers even scale 1.
    margin_px=12,
    exact_tiling=True,
    any_scale=True,
    prefer_official=True,
    default_hparams={"kernel_sizes": (9, 1, 5), "n1": 64, "n2": 32},
    detect=detect,
    convert=convert,
    hparams_from=hparams_from,
    params={2: 8_129, 3: 8_129, 4: 8_129},
)
