"""Network interpolation (ESRGAN, Wang et al. 2018, section 3.4): θ = (1 − α)·θ_A + α·θ_B per tensor.

Blending a PSNR-oriented and a GAN-trained network of one architecture gives a smooth trade-off between
fidelity and texture without retraining. Both files must hold the same architecture at the same scale
with the same tensor names and shapes; the result is in this project's key layout and loads like any
other weights file.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from ..errors import OutputExistsError, UpscaleError, WeightsError
from ..io.files import atomic_output, same_file
from . import REGISTRY
from .loading import model_from_state_dict, read_state_dict, recorded_scale
from .registry import ModelSpec, Registry

__all__ = ["Interpolated", "interpolate_weights", "write_interpolated"]


class Interpolated(NamedTuple):
    """The blended tensors and what they are."""

    tensors: dict[str, torch.Tensor]
    """This project's key names; floating-point tensors blended (float32), others copied from A."""

    spec: ModelSpec
    scale: int


def _load(path: Path, model: str | None, registry: Registry) -> tuple[dict[str, torch.Tensor], ModelSpec, int]:
    """Read ``path`` safely, identify it and return its tensors as the built network names them."""
    sd = read_state_dict(path)
    spec = registry.get(model) if model else registry.identify(sd)
    if spec is None:
        raise WeightsError(
            f"{path}: holds no architecture this version knows; pass --model NAME ({', '.join(registry.names())})"
        )
    # Building and loading the network strictly checks the file and maps official layouts to ours.
    loaded = model_from_state_dict(
        spec, sd, scale=None, registry=registry, origin=str(path), recorded_scale=recorded_scale(path)
    )
    tensors = {k: v.detach() for k, v in loaded.module.state_dict().items()}
    return tensors, spec, loaded.scale


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(n) for n in t.shape) or "scalar"


def _check_same(a: Path, b: Path, ta: dict[str, torch.Tensor], tb: dict[str, torch.Tensor]) -> None:
    only_a, only_b = sorted(ta.keys() - tb.keys()), sorted(tb.keys() - ta.keys())
    if only_a or only_b:
        parts = [
            f"{len(keys)} only in {p.name} ({', '.join(keys[:2])})" for keys, p in ((only_a, a), (only_b, b)) if keys
        ]
        raise WeightsError(f"{a} and {b} hold different tensors: {'; '.join(parts)}")
    for key, x in ta.items():
        y = tb[key]
        if x.shape != y.shape:
            raise WeightsError(
                f"{a} and {b} differ in shape: '{key}' is {_shape(x)} in {a.name}, {_shape(y)} in {b.name}"
            )


def interpolate_weights(
    a: Path | str,
    b: Path | str,
    alpha: float,
    *,
    model: str | None = None,
    registry: Registry = REGISTRY,
) -> Interpolated:
    """Blend two weight files of one architecture: ``(1 - alpha)·A + alpha·B`` for every tensor.

    ``a`` and ``b`` are any files the loader reads (safetensors, ``.pth``/``.pt`` with
    ``weights_only=True``, ``.mat``), in any layout it converts; ``model`` names the architecture where
    detection from the tensors is not wanted. ``alpha`` is in [0, 1]: 0 gives A exactly, 1 gives B
    exactly. Floating-point tensors are blended in float64 and stored as float32; integer tensors (such
    as BatchNorm's ``num_batches_tracked``) are copied from A. Raises :class:`WeightsError` naming both
    files when they differ in architecture, scale, tensor names or shapes.
    """
    if not 0.0 <= alpha <= 1.0:
        raise UpscaleError(f"alpha must be in [0, 1], not {alpha:g}")
    a, b = Path(a), Path(b)
    ta, spec_a, scale_a = _load(a, model, registry)
    tb, spec_b, scale_b = _load(b, model, registry)
    if spec_a.name != spec_b.name or scale_a != scale_b:
        raise WeightsError(
            f"{a} holds '{spec_a.name}' x{scale_a}, {b} holds '{spec_b.name}' x{scale_b}; "
            "only weights of one architecture and scale can be interpolated"
        )
    _check_same(a, b, ta, tb)
    out: dict[str, torch.Tensor] = {}
    for key, x in ta.items():
        if not x.is_floating_point():
            out[key] = x.clone().contiguous()
            continue
        y = tb[key]
        mixed = x.double() * (1.0 - alpha) + y.double() * alpha
        out[key] = mixed.to(x.dtype).contiguous()
    return Interpolated(out, spec_a, scale_a)


def write_interpolated(
    a: Path | str,
    b: Path | str,
    alpha: float,
    output: Path | str,
    *,
    model: str | None = None,
    overwrite: bool = False,
    registry: Registry = REGISTRY,
) -> Interpolated:
    """:func:`interpolate_weights`, written to ``output`` (``.safetensors``) only once complete.

    The metadata records ``model``, ``scale`` (so the file loads at its scale), ``alpha`` and
    ``interpolated`` (``"A.pth@0.2 + B.pth@0.8"``). An existing output is replaced only with
    ``overwrite``, and never when it is one of the inputs.
    """
    from safetensors.torch import save_file

    a, b, output = Path(a), Path(b), Path(output)
    if output.suffix.lower() != ".safetensors":
        raise WeightsError(f"{output}: the output must be a .safetensors file")
    for src in (a, b):
        if same_file(src, output) or output.resolve() == src.resolve():
            raise OutputExistsError(f"{output}: is an input file; choose another output")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output}: exists; pass --overwrite to replace it")
    result = interpolate_weights(a, b, alpha, model=model, registry=registry)
    metadata = {
        "format": "pt",
        "model": result.spec.name,
        "scale": str(result.scale),
        "alpha": repr(float(alpha)),
        "interpolated": f"{a.name}@{1.0 - alpha:g} + {b.name}@{alpha:g}",
    }
    with atomic_output(output) as tmp:
        save_file(result.tensors, str(tmp), metadata=metadata)
    return result
