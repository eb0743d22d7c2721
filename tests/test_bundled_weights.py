"""The weights in ``weights/``: what the manifest says of them is true."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file

from upscale.cli import main
from upscale.models import default_model_name
from upscale.models.bundled import bundled_weights

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = json.loads((WEIGHTS / "manifest.json").read_text())["weights"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_manifest_entry_describes_its_file(entry: dict) -> None:
    path = WEIGHTS / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    params = sum(t.numel() for t in load_file(str(path)).values() if t.is_floating_point())
    assert meta["model"] == entry["model"] and int(meta["scale"]) == entry["scale"]
    assert int(meta["iterations"]) == entry["iterations"]
    assert params == entry["params"]
    for field in ("recipe", "command", "data", "wall_time_s", "machine", "precision"):
        assert entry[field], field
    for bench in ("Set5", "Set14"):  # the bar every shipped file meets
        assert entry["scores"][bench]["psnr"] >= entry["bicubic"][bench]["psnr"] + 1.0, bench


def test_every_manifest_file_is_bundled() -> None:
    assert sorted(b.path.name for b in bundled_weights()) == sorted(e["file"] for e in MANIFEST)


def test_default_model_scores_what_the_manifest_says(shared_data: Path) -> None:
    if not MANIFEST:
        pytest.skip("no bundled weights")
    name = default_model_name()
    entry = max(
        (e for e in MANIFEST if e["model"] == name), key=lambda e: (e["scale"] == 4, e["scores"]["Set5"]["psnr"])
    )
    result = CliRunner().invoke(
        main,
        ["eval", name, "--scale", str(entry["scale"]), "--data", str(shared_data / "bench" / "Set5"), "--json", "-q"],
    )
    assert result.exit_code == 0, result.output
    mean = json.loads(result.stdout)["datasets"][0]["mean"]
    assert mean["psnr"] == pytest.approx(entry["scores"]["Set5"]["psnr"], abs=0.01)
    assert mean["bicubic_psnr"] == pytest.approx(entry["bicubic"]["Set5"]["psnr"], abs=0.01)
