"""``upscale bench`` through the real CLI with tiny frames; no timing assertions, only the fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

from upscale import engine
from upscale.cli import main
from upscale.eval import speed
from upscale.eval.flops import count_macs
from upscale.models import REGISTRY, build_model


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("native", [frozenset({"bf16"}), frozenset()], ids=["native-bf16-cpu", "cpu-without-bf16"])
def test_report_prints_every_field_with_random_weights(native: frozenset[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (engine, speed):  # what the CPU says of itself, for the command that asks it
        monkeypatch.setattr(module, "native_cpu_halves", lambda: native)
    result = run("bench", "rlfn", "--random-weights", "--size", "40x32", "--frames", "2", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for field in ("frames/s", "output MP/s", "ms/frame", "latency", "GMAC/frame", "GFLOP/s", "peak memory"):
        assert field in out
    auto = "bfloat16" if native else "float32"  # RLFN is declared bf16-safe
    assert "random weights" in out and "40x32 -> 160x128" in out and f"cpu, {auto}," in out


def test_missing_weights_fall_back_to_random_with_a_note() -> None:
    result = run("bench", "srgan", "--size", "24x16", "--frames", "1", "--device", "cpu")  # no weights anywhere
    assert result.exit_code == 0, result.output
    assert "random weights" in result.stdout
    assert "timing random weights instead" in result.stderr


def test_json_fields_are_consistent(tmp_path: Path) -> None:
    model = build_model(REGISTRY.get("rlfn"), 2, channels=8, num_blocks=1)
    weights = tmp_path / "rlfn_x2.safetensors"
    save_file({k: v.contiguous() for k, v in model.module.state_dict().items()}, str(weights))
    result = run(
        "bench", "rlfn", "--weights", str(weights), "--size", "36x20", "--frames", "3", "--tile", "0", "--json", "-q"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["random_weights"] is False
    (r,) = data["results"]
    assert (r["model"], r["scale"], r["frames"], r["width"], r["height"], r["tile"]) == ("rlfn", 2, 3, 36, 20, 0)
    assert r["fps"] == pytest.approx(r["frames"] / r["seconds"])
    assert r["output_mpix_per_s"] == pytest.approx(r["fps"] * 72 * 40 / 1e6)
    assert r["gflops"] == pytest.approx(2 * r["gmacs_per_frame"] * r["fps"])
    assert r["gmacs_per_frame"] * 1e9 == count_macs(model.module, (1, 3, 20, 36))
    assert r["latency_ms"] > 0
    assert r["memory_kind"] == "process peak RSS" and r["peak_memory_bytes"] > 0


def test_compare_lists_each_precision_and_tile() -> None:
    result = run(
        "bench",
        "srcnn",
        "--random-weights",
        "-s",
        "2",
        "--size",
        "48x40",
        "--frames",
        "1",
        "--device",
        "cpu",
        "--compare",
        "--tiles",
        "0,32",
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    precisions = {r["precision"] for r in rows}
    assert "float32" in precisions
    assert len(rows) == 2 * len(precisions)
    assert sorted({r["tile"] for r in rows}) == [0, 32]
    text = run(
        "bench",
        "srcnn",
        "--random-weights",
        "-s",
        "2",
        "--size",
        "48x40",
        "--frames",
        "1",
        "--device",
        "cpu",
        "--compare",
        "--tiles",
        "0,32",
        "-q",
    )
    assert text.exit_code == 0 and "vs first" in text.stdout and "1.00x" in text.stdout


def test_bad_options_are_usage_errors() -> None:
    bad_size = run("bench", "bicubic", "--size", "640by360")
    assert bad_size.exit_code == 2 and "WIDTHxHEIGHT" in bad_size.stderr
    both = run("bench", "rlfn", "--random-weights", "--weights", "x.pth", "--size", "16x16")
    assert both.exit_code == 2 and "exclude each other" in both.stderr
    unknown = run("bench", "nosuchnet", "--size", "16x16")
    assert unknown.exit_code == 2 and "unknown model" in unknown.stderr


@pytest.mark.parametrize("name", ["srcnn", "rlfn", "srresnet", "perceptual"])
def test_mac_count_matches_torch_flop_counter(name: str) -> None:
    """Independent check: PyTorch's FlopCounterMode counts 2 FLOPs per conv/linear MAC."""
    spec = REGISTRY.get(name)
    model = build_model(spec, spec.default_scale).module
    shape = (1, 1 if spec.colour == "y" else 3, 24, 32)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(shape))
    assert 2 * count_macs(model, shape) == counter.get_total_flops()
    assert count_macs(model, shape) == count_macs(model, shape, on_meta=False)
