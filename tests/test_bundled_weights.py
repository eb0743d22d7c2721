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


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_each_bundled_file_scores_what_the_manifest_says(entry: dict, shared_data: Path) -> None:
    """Set5 and Set14 recomputed from the file itself, under the protocol and precision of ``upscale eval``:
    the manifest's scores and bicubic baselines to 0.01 dB, and the bar (1 dB over bicubic) on each."""
    bench = shared_data / "bench"
    path = WEIGHTS / entry["file"]
    args = ["eval", entry["model"], "--scale", str(entry["scale"]), "--weights", str(path), "--json", "-q"]
    result = CliRunner().invoke(main, [*args, "--data", str(bench / "Set5"), "--data", str(bench / "Set14")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert Path(payload["weights"]) == path and payload["protocol"]["precision"] == "float32", payload
    means = {d["name"]: d["mean"] for d in payload["datasets"]}
    for name in ("Set5", "Set14"):
        got = means[name]
        assert got["psnr"] == pytest.approx(entry["scores"][name]["psnr"], abs=0.01), name
        assert got["bicubic_psnr"] == pytest.approx(entry["bicubic"][name]["psnr"], abs=0.01), name
        assert got["psnr"] >= got["bicubic_psnr"] + 1.0, name
