"""The model registry. Adding a model is one description module here (its ``ModelSpec`` and state-dict
functions), its network in ``nets/``, and one line in ``_SPECS``.

Describing the models imports no torch, so ``upscale models`` starts quickly; the loading functions,
which do, are imported on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WeightsError
from .bicubic import BICUBIC_SPEC
from .bundled import bundled_weights
from .compact import COMPACT_SPEC
from .defaults import WeightsChoice, default_weights
from .drcn import DRCN_SPEC
from .drn import DRN_L_SPEC, DRN_S_SPEC
from .esrgan import ESRGAN_SPEC
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
    COMPACT_SPEC,
    DRN_S_SPEC,
    DRN_L_SPEC,
]

REGISTRY = Registry(_SPECS)

# Names of upscale.models.loading (which imports torch), imported on first use.
_LAZY = ("LoadedModel", "build_model", "model_from_state_dict", "read_state_dict")

if TYPE_CHECKING:
    from .loading import LoadedModel, build_model, model_from_state_dict, read_state_dict


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(".loading", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REGISTRY",
    "LoadedModel",
    "ModelSpec",
    "Registry",
    "WeightsChoice",
    "build_model",
    "default_model_name",
    "default_weights",
    "load_model",
    "model_from_state_dict",
    "model_of_weights",
    "read_state_dict",
]


REAL_WORLD = "real-world photos and video"
"""``ModelSpec.fits`` of the models made for real inputs (blur, noise, compression)."""


def default_model_name(registry: Registry = REGISTRY, *, real_world: bool = False) -> str:
    """The best-scoring model with bundled weights, or ``bicubic`` while there is none. ``real_world``
    (videos and pipes, which carry compression and noise) prefers a bundled model made for them."""
    candidates = [b for b in bundled_weights() if b.model in registry]
    if real_world:
        candidates = [b for b in candidates if registry.get(b.model).fits == REAL_WORLD] or candidates
    if not candidates:
        return "bicubic"
    return max(candidates, key=lambda b: (b.scale == 4, b.set5_psnr)).model


def model_of_weights(weights: str | Path, registry: Registry = REGISTRY) -> str:
    """The architecture a weights file holds: as its metadata records, else detected from its tensors;
    ``spandrel`` where none of the zoo's layouts matches (:func:`load_model` then tries spandrel)."""
    from .loading import read_state_dict, recorded_model

    path = Path(weights).expanduser()
    if not path.is_file():
        from ..hub import find  # a catalogue name such as ``esrgan-official``

        return find(str(weights)).model
    recorded = recorded_model(path)
    if recorded in registry:
        return recorded  # type: ignore[return-value]
    spec = registry.identify(read_state_dict(path))
    if spec is None:
        from .foreign import SPANDREL

        return SPANDREL  # none of the zoo's layouts: load_model hands the file to spandrel, or says why not
    return spec.name


def resolve_weights(
    spec: ModelSpec, scale: int | None, weights: str | Path | None, *, offline: bool | None = None
) -> Path | None:
    """A weights path from ``--weights`` (a file, or a known name), else the model's default weights
    (bundled, else official: :func:`default_weights`). ``offline`` (None: ``UPSCALE_OFFLINE``) forbids
    downloading a named or official checkpoint that is not cached."""
    if weights is not None:
        path = Path(weights).expanduser()
        if path.exists() or path.suffix or "/" in str(weights):
            return path
        from ..hub import resolve  # a name such as ``esrgan-official``

        return resolve(str(weights), offline=offline)
    if not spec.needs_weights:
        return None
    return _default_choice(spec, scale, offline).fetch(offline=offline)


def _default_choice(spec: ModelSpec, scale: int | None, offline: bool | None = None) -> WeightsChoice:
    choice = default_weights(spec, scale, offline=offline)
    if choice is None:
        at = f" for x{scale}" if scale else ""
        train = f"upscale train {spec.name}" + (f" --scale {scale}" if scale else "") + " --data DIR"
        raise WeightsError(
            f"model '{spec.name}' has no bundled weights and no official checkpoint{at}; pass --weights FILE"
            f" (an official checkpoint or your own), a name from 'upscale weights list', or train them: '{train}'"
        )
    return choice


def load_model(
    name: str,
    *,
    scale: int | None = None,
    weights: str | Path | None = None,
    registry: Registry = REGISTRY,
    offline: bool | None = None,
) -> LoadedModel:
    """Look up ``name``, find its weights (given, named, bundled or official) and return the ready network.

    Without ``weights`` the model's default weights are used (:func:`default_weights`), at their scale
    when none is given; an official checkpoint is downloaded on first use unless ``offline`` (None: read
    ``UPSCALE_OFFLINE``). ``name`` ``spandrel`` loads ``weights`` with spandrel (:mod:`.foreign`).
    """
    from .foreign import is_foreign, load_foreign_file
    from .loading import build_model, model_from_state_dict, read_state_dict, recorded_scale

    if is_foreign(name):  # ``spandrel``: a file of an architecture outside the zoo (upscale[models])
        return load_foreign_file(weights, scale=scale)
    spec = registry.get(name)
    if scale is not None:
        spec.check_scale(scale)
    if weights is None and spec.needs_weights:
        choice = _default_choice(spec, scale, offline)
        path, scale = choice.fetch(offline=offline), choice.scale  # .mat files do not record their scale
    else:
        path = resolve_weights(spec, scale, weights, offline=offline)
    if path is None:
        return build_model(spec, scale or spec.default_scale)
    sd = read_state_dict(path)
    return model_from_state_dict(
        spec, sd, scale=scale, registry=registry, origin=str(path), recorded_scale=recorded_scale(path)
    )
