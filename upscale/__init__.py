"""Image and video super-resolution: classic SR models, a tiled half-precision engine, evaluation.

from upscale import EngineOptions, Upscaler, load_model

up = Upscaler(load_model("rlfn", weights="rlfn_x4.pth"), EngineOptions(tile=256))
hr = up.upscale(lr)   # H×W×C numpy array in, same layout and bit depth out
"""

from importlib.metadata import PackageNotFoundError, version

from .engine import EngineOptions, Upscaler
from .errors import UpscaleError
from .models import REGISTRY, LoadedModel, ModelSpec, build_model, load_model

try:
    __version__ = version("upscale")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

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
