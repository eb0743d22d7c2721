"""A training crop too small for the network or the recipe's losses is one clear error that names the smallest
crop that works, for every model and every recipe that ``upscale train`` trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import photo, write_rgb
from tests.train.test_train_cli import init_weights, invoke
from upscale.models import REGISTRY
from upscale.train import probe
from upscale.train.recipes import RECIPES, recipe_for

SMALL_ARCH = {
    "drcn": {"num_filters": 8, "num_recursions": 2},
    "srresnet": {"num_blocks": 1},
    "msrresnet": {"num_blocks": 1},
    "srgan": {"num_blocks": 1},
    "esrgan": {"num_block": 1},
    "drn-s": {"n_blocks": 1},
    "drn-l": {"n_blocks": 1},
}
"""Smaller networks than the default (the bounds on the crop do not depend on depth); other models train as built."""


def _cases() -> list[tuple[str, str]]:
    """Every trainable model with its default recipe, then every other recipe with its first model."""
    models = dict.fromkeys(m for r in RECIPES for m in r.models)
    cases = [(m, recipe_for(m).name) for m in models]
    covered = {r for _, r in cases}
    return cases + [(r.models[0], r.name) for r in RECIPES if r.name not in covered]


CASES = _cases()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("patch_data")
    write_rgb(d / "chelsea.png", photo("chelsea", (144, 144)))  # 144: a multiple of every scale, above any bound
    return d


def _args(model: str, recipe: str, scale: int, data: Path, out: Path, patch: int, tmp_path: Path) -> list[str]:
    arch = SMALL_ARCH.get(model, {})
    args = [model, "--recipe", recipe, "--data", str(data), "--scale", str(scale), "--out", str(out), "-q"]
    args += ["--patch", str(patch), "--batch-size", "1", "--iters", "1", "--precision", "fp32", "--random-vgg"]
    for key, value in arch.items():
        args += ["--arch", f"{key}={value}"]
    if next(r for r in RECIPES if r.name == recipe).needs_init:
        args += ["--init", str(init_weights(tmp_path / "init.safetensors", model, scale, arch))]
    return args


@pytest.mark.parametrize(("model", "recipe"), CASES, ids=[f"{m}-{r}" for m, r in CASES])
def test_a_too_small_patch_names_the_smallest_that_trains(
    model: str, recipe: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scale = REGISTRY.get(model).default_scale
    first = 32 if (model, scale) == ("rlfn", 4) else scale  # rlfn x4 --patch 32: the crash the issue reported
    result = invoke(_args(model, recipe, scale, data, tmp_path / "first", first, tmp_path))
    if result.exit_code == 0:
        smallest = first  # nothing smaller than one LR pixel: any crop trains
        assert first == scale, f"{model} trains on {first}-px crops; the test expected it not to"
    else:
        out = result.output  # stdout and stderr
        assert result.exit_code == 1 and not isinstance(result.exception, (RuntimeError, ValueError)), out
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), out
        found = re.fullmatch(
            rf"Error: --patch {first} is too small to train {model} at x{scale} with recipe {recipe}: "
            r"the smallest patch it accepts is (\d+)",
            lines[0],
        )
        assert found, out
        smallest = int(found.group(1))
        assert smallest > first and smallest % scale == 0, out
        assert not (tmp_path / "first" / "checkpoint.pt").exists()
    # The named crop trains ...
    result = invoke(_args(model, recipe, scale, data, tmp_path / "smallest", smallest, tmp_path))
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (tmp_path / "smallest" / "final.safetensors").is_file()
    # ... and the next smaller one really does not: without the check, training it fails.
    if smallest > scale:
        monkeypatch.setattr(probe, "probe", lambda *a, **k: None)
        result = invoke(_args(model, recipe, scale, data, tmp_path / "below", smallest - scale, tmp_path))
        assert result.exit_code != 0, f"{model} x{scale} trains on {smallest - scale}-px crops"
