"""Image and video super-resolution: classic SR models, a tiled half-precision engine, evaluation.

from upscale import EngineOptions, Upscaler, load_model

up = Upscaler(load_model("rlfn", weights="rlfn_x4.pth"), EngineOptions(tile=256))
hr = up.upscale(lr)   # H×W×C numpy array in, same layout and bit depth out
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import UpscaleError

# Imported on first use, so that ``import upscale`` (and the CLI's help and listings) do not load torch.
_LAZY = {
    "EngineOptions": "upscale.engine",
    "Upscaler": "upscale.engine",
    "REGISTRY": "upscale.models",
    "LoadedModel": "upscale.models",
    "ModelSpec": "upscale.models",
    "build_model": "upscale.models",
    "load_model": "upscale.models",
}

if TYPE_CHECKING:
    from .engine import EngineOptions, Upscaler
    from .models import REGISTRY, LoadedModel, ModelSpec, build_model, load_model


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("upscale")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0"
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'upscale' has no attribute {name!r}")


__all__ = [
    "REGISTRY",
    "EngineOptions",
    "LoadedModel",
    "ModelSpec",
    "UpscaleError",
    "Upscaler",
    "__version__",
    "build_model",
    "load_model",
]
