"""The model registry. Adding a model is one module here and one line in ``_SPECS``."""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError
from .bicubic import BICUBIC_SPEC
from .bundled import bundled_weights, find_bundled
from .drcn import DRCN_SPEC
from .drn import DRN_L_SPEC, DRN_S_SPEC
from .esrgan import ESRGAN_SPEC
from .loading import LoadedModel, build_model, model_from_state_dict, read_state_dict, recorded_scale
from .perceptual import PERCEPTUAL_SPEC
from .registry import ModelSpec, Registry
from .rlfn import RLFN_S_SPEC, RLFN_SPEC
from .srcnn import SRCNN_SPEC
from .srresnet import MSRRESNET_SPEC, SRGAN_SPEC, SRRESNET_SPEC

_SPECS = [
    BICUBIC_SPEC,
    SRCNN_SPEC,
    DRCN_SPEC,
    PERCEPTUAL_SPEC,
    SRRESNET_SPEC,
    SRGAN_SPEC,
    MSRRESNET_SPEC,
    RLFN_SPEC,
    RLFN_S_SPEC,
    ESRGAN_SPEC,
    DRN_S_SPEC,
    DRN_L_SPEC,
]

REGISTRY = Registry(_SPECS)

__all__ = [
    "REGISTRY",
    "LoadedModel",
    "ModelSpec",
    "Registry",
    "build_model",
    "default_model_name",
    "load_model",
    "read_state_dict",
]


def default_model_name(registry: Registry = REGISTRY) -> str:
    """The best-scoring model with bundled weights, or ``bicubic`` while there is none."""
    candidates = [b for b in bundled_weights() if b.model in registry]
    if not candidates:
        return "bicubic"
    return max(candidates, key=lambda b: (b.scale == 4, b.set5_psnr)).model


def resolve_weights(spec: ModelSpec, scale: int | None, weights: str | Path | None) -> Path | None:
    """A weights path from ``--weights`` (a file, or a known name) or the bundled set."""
    if weights is not None:
        path = Path(weights).expanduser()
        if path.exists() or path.suffix or "/" in str(weights):
            return path
        from ..hub import resolve  # a name such as ``esrgan-official``

        return resolve(str(weights))
    if not spec.needs_weights:
        return None
    bundled = find_bundled(spec.name, scale)
    if bundled is None:
        raise WeightsError(
            f"model '{spec.name}' has no bundled weights"
            + (f" for x{scale}" if scale else "")
            + "; pass --weights FILE (an official checkpoint or your own),"
            " or a name from 'upscale weights list'"
        )
    return bundled.path


def load_model(
    name: str,
    *,
    scale: int | None = None,
    weights: str | Path | None = None,
    registry: Registry = REGISTRY,
) -> LoadedModel:
    """Look up ``name``, find its weights (given, named or bundled) and return the ready network."""
    spec = registry.get(name)
    if scale is not None:
        spec.check_scale(scale)
    path = resolve_weights(spec, scale, weights)
    if path is None:
        return build_model(spec, scale or spec.default_scale)
    sd = read_state_dict(path)
    return model_from_state_dict(
        spec, sd, scale=scale, registry=registry, origin=str(path), recorded_scale=recorded_scale(path)
    )
