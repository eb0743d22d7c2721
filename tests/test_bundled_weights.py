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
REAL_WORLD = [e for e in MANIFEST if e.get("degradation") == "real"]
"""Files trained on real-world degradations: their bar is on real-world inputs, not on bicubic downscales."""
BENCH = ("Set5", "Set14")


def eval_json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["eval", *args, "--json", "-q"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


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
    for bench in BENCH:  # the bar every shipped file meets
        if entry in REAL_WORLD:  # 1 dB over the baseline file on the real-world degraded benchmark
            real = entry["real_world"]
            assert real["scores"][bench]["psnr"] >= real["baseline"]["scores"][bench]["psnr"] + 1.0, bench
        else:
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
    for name in BENCH:
        got = means[name]
        assert got["psnr"] == pytest.approx(entry["scores"][name]["psnr"], abs=0.01), name
        assert got["bicubic_psnr"] == pytest.approx(entry["bicubic"][name]["psnr"], abs=0.01), name
        if entry not in REAL_WORLD:
            assert got["psnr"] >= got["bicubic_psnr"] + 1.0, name


@pytest.mark.parametrize("entry", REAL_WORLD, ids=[e["file"] for e in REAL_WORLD])
def test_real_world_files_beat_their_baseline_by_1_db_on_real_world_inputs(entry: dict, shared_data: Path) -> None:
    """Set5 and Set14 degraded by the real-world pipeline at the manifest's seed, recomputed for the file and
    for the bundled file it is compared with: the manifest's numbers to 0.01 dB, and 1 dB over the baseline."""
    real = entry["real_world"]
    baseline = next(e for e in MANIFEST if e["file"] == real["baseline"]["file"])
    data = [arg for name in BENCH for arg in ("--data", str(shared_data / "bench" / name))]
    degraded = ("--degradation", "real", "--seed", str(real["seed"]), "--scale", str(entry["scale"]), *data)
    ours = eval_json(entry["model"], "--weights", str(WEIGHTS / entry["file"]), *degraded)
    theirs = eval_json(baseline["model"], "--weights", str(WEIGHTS / baseline["file"]), *degraded)
    assert ours["protocol"]["degradation"].startswith("real-world")
    for got, base in zip(ours["datasets"], theirs["datasets"], strict=True):
        name = got["name"]
        assert got["mean"]["psnr"] == pytest.approx(real["scores"][name]["psnr"], abs=0.01), name
        assert got["mean"]["bicubic_psnr"] == pytest.approx(real["bicubic"][name]["psnr"], abs=0.01), name
        assert base["mean"]["psnr"] == pytest.approx(real["baseline"]["scores"][name]["psnr"], abs=0.01), name
        assert got["mean"]["psnr"] >= base["mean"]["psnr"] + 1.0, name
