"""Reading weight files safely and turning them into ready networks.

Only safetensors, MATLAB ``.mat`` files and pickles that ``torch.load(weights_only=True)`` accepts
are read: a checkpoint that needs arbitrary code to unpickle is refused.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError
from .registry import ModelSpec, Registry, StateDict

log = logging.getLogger("upscale.models")

_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net", "generator", "netG")


@dataclass
class LoadedModel:
    """A network with its spec, scale and where its weights came from."""

    spec: ModelSpec
    module: nn.Module
    scale: int
    weights: str | None
    """The weights file or name, or None for a parameter-free model."""

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def _metadata(path: str | Path) -> dict[str, str]:
    if Path(path).suffix.lower() != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - unreadable files are reported by read_state_dict
        return {}


def recorded_scale(path: str | Path) -> int | None:
    """The ``scale`` a safetensors file records in its metadata (``upscale weights convert`` and
    ``upscale train`` write it)."""
    value = _metadata(path).get("scale")
    return int(value) if value and value.isdigit() else None


def recorded_model(path: str | Path) -> str | None:
    """The model name a safetensors file records in its metadata (``upscale train`` writes it)."""
    return _metadata(path).get("model") or None


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Read a weights file into a flat ``name -> tensor`` dict, unwrapping common wrappers.

    ``.safetensors`` via safetensors, ``.mat`` via SciPy (values become tensors), anything else via
    ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path), device="cpu")
        elif suffix == ".mat":
            try:
                from scipy.io import loadmat
            except ImportError:  # pragma: no cover - scipy ships with the test extras
                raise WeightsError(f"{path}: reading MATLAB files needs SciPy (pip install scipy)") from None
            sd = {
                k: torch.from_numpy(v.astype("float64"))
                for k, v in loadmat(str(path)).items()
                if not k.startswith("__")
            }
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path}: refused to load: the checkpoint needs arbitrary code to unpickle ({first}); "
            "use a safetensors file or a plain state dict"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise WeightsError(
            f"{path}: not a readable weights file ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from None
    return canonicalize(sd, path)


def canonicalize(sd: Any, origin: str | Path = "weights") -> dict[str, Any]:
    """Unwrap ``{'params_ema': ...}``-style wrappers and ``module.`` prefixes (DataParallel)."""
    for _ in range(3):
        if isinstance(sd, Mapping) and not any(isinstance(v, torch.Tensor) for v in sd.values()):
            inner = next((sd[k] for k in _WRAPPERS if isinstance(sd.get(k), Mapping)), None)
            if inner is None:
                break
            sd = inner
    if isinstance(sd, (list, tuple)):
        # DRN's ``*_dual_model.pt`` files are lists holding only the dual (HR -> LR) networks.
        raise WeightsError(f"{origin}: holds a list of state dicts (DRN dual networks?), not a model's weights")
    if not isinstance(sd, Mapping) or not sd:
        raise WeightsError(f"{origin}: holds no state dict")
    out = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if out and all(k.startswith("module.") for k in out):
        out = {k[len("module.") :]: v for k, v in out.items()}
    if not out:
        raise WeightsError(f"{origin}: holds no tensors")
    return out


def build_model(spec: ModelSpec, scale: int, **hparams: Any) -> LoadedModel:
    """An untrained network (random weights), for training and tests."""
    scale = spec.check_scale(scale)
    kwargs = {**spec.default_hparams, **hparams}
    return LoadedModel(spec, spec.network(scale=scale, **kwargs).eval(), scale, None)


def model_from_state_dict(
    spec: ModelSpec,
    sd: StateDict,
    *,
    scale: int | None,
    registry: Registry | None,
    origin: str,
    recorded_scale: int | None = None,
) -> LoadedModel:
    """Convert ``sd`` to ``spec``'s layout, check it is that architecture, build and load it."""
    try:
        converted = spec.convert(sd) if spec.convert else dict(sd)
        ok = spec.detect(converted) if spec.detect else True
    except Exception:  # noqa: BLE001 - a foreign layout may trip the converter
        converted, ok = dict(sd), False
    if not ok:
        found = registry.identify(sd) if registry is not None else None
        what = f"weights of '{found.name}'" if found else "an unknown architecture"
        raise WeightsError(f"{origin}: holds {what}, not '{spec.name}'")
    hp = spec.hparams_from(converted) if spec.hparams_from else {}
    file_scale = hp.pop("scale", None) or recorded_scale
    if scale is not None and file_scale is not None and file_scale != scale and not spec.any_scale:
        raise WeightsError(f"{origin}: holds '{spec.name}' weights for x{file_scale}, not x{scale}")
    if scale is None and file_scale is None:
        log.warning("%s: the weights do not record a scale; using x%d (pass --scale)", origin, spec.default_scale)
    final_scale = scale if scale is not None else (file_scale or spec.default_scale)
    module = spec.network(scale=final_scale, **{**spec.default_hparams, **hp})
    try:
        result = module.load_state_dict(converted, strict=False)
    except RuntimeError as exc:  # shape mismatch
        detail = str(exc).strip().splitlines()[-1].strip()
        raise WeightsError(f"{origin}: does not fit '{spec.name}' ({detail})") from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"missing {', '.join(result.missing_keys[:3])}")
        if result.unexpected_keys:
            parts.append(f"unexpected {', '.join(result.unexpected_keys[:3])}")
        raise WeightsError(f"{origin}: does not fit '{spec.name}' ({'; '.join(parts)})")
    return LoadedModel(spec, module.eval(), final_scale, origin)
