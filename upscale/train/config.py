"""Settings of a training run from a config file (TOML or YAML) and the command line.

A config file uses the command's option names (``batch_size`` or ``batch-size``) at the top level,
and may hold a ``recipe`` table that overrides any recipe field. The command line wins over the file,
and both over the recipe's defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import UpscaleError
from .loop import TrainConfig
from .recipes import Recipe, recipe_for

RECIPE_OPTIONS = ("iters", "batch_size", "patch", "lr")
"""Command-line options that override a recipe field of the same name."""

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h`` or ``1h30m``."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _DURATION.match(text)
    if not text.strip() or m is None or not any(m.groups()):
        raise UpscaleError(f"'{text}' is not a duration (examples: 90s, 15m, 2h, 1h30m)")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A flat dict of settings (keys with ``_``) from a TOML or YAML (or JSON) file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UpscaleError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except ImportError as exc:
        raise UpscaleError(f"{path}: reading it needs {exc.name} (pip install 'upscale[train]')") from None
    except Exception as exc:  # noqa: BLE001 - any parse error is a bad file
        raise UpscaleError(f"{path}: not a valid config file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, Mapping):
        raise UpscaleError(f"{path}: a config file holds a table of settings")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_config(file_values: Mapping[str, Any], cli_values: Mapping[str, Any]) -> TrainConfig:
    """Merge recipe defaults < config file < command line (None on the command line means not given)."""
    merged: dict[str, Any] = dict(file_values)
    merged.update({k: v for k, v in cli_values.items() if v is not None and v != () and v is not False})
    if isinstance(file_values.get("recipe"), Mapping) and isinstance(merged.get("recipe"), str):
        merged["recipe"] = {**file_values["recipe"], "name": merged["recipe"]}  # --recipe NAME keeps the file's fields
    known = {f.name for f in fields(TrainConfig)} | set(RECIPE_OPTIONS) | {"time_limit", "config"}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise UpscaleError(f"unknown setting(s): {', '.join(unknown)}")
    for key in ("model", "data", "scale", "out"):
        if merged.get(key) in (None, [], ()):
            raise UpscaleError(f"missing setting '{key}' (give --{key.replace('_', '-')} or put it in --config)")
    model = str(merged["model"]).lower()
    recipe_value = merged.get("recipe")
    recipe_fields = dict(recipe_value) if isinstance(recipe_value, Mapping) else {}
    name = recipe_fields.pop("name", None) if isinstance(recipe_value, Mapping) else recipe_value
    recipe: Recipe = recipe_for(model, name, None if merged.get("stage") is None else str(merged["stage"]))
    for key in RECIPE_OPTIONS:
        if merged.get(key) is not None:
            recipe_fields[key] = merged.pop(key)
    for key in ("betas", "milestones"):
        if key in recipe_fields:
            recipe_fields[key] = tuple(recipe_fields[key])
    recipe = recipe.override(**recipe_fields)
    _check_recipe(recipe)
    merged.pop("config", None)
    time_limit = merged.pop("time_limit", None)
    if time_limit is not None:
        merged["time_limit_s"] = parse_duration(time_limit)
    as_list = lambda v: [str(x) for x in (v if isinstance(v, (list, tuple)) else [v])]  # noqa: E731
    merged["data"] = as_list(merged["data"])
    merged["val"] = as_list(merged.get("val") or [])
    for key in ("out", "lr_data", "init", "unpaired", "vgg_weights"):
        if merged.get(key) is not None:
            merged[key] = str(merged[key])
    merged.update(model=model, scale=int(merged["scale"]), recipe=recipe)
    return TrainConfig(**merged)


def _check_recipe(r: Recipe) -> None:
    for key in ("iters", "batch_size", "patch"):
        if int(getattr(r, key)) < 1:
            raise UpscaleError(f"{key.replace('_', '-')} must be at least 1, not {getattr(r, key)}")
    if r.lr <= 0:
        raise UpscaleError(f"the learning rate must be positive, not {r.lr}")
