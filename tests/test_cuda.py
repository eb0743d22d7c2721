"""The CUDA paths: half precision through the CLI, recovery from a real out-of-memory error, fp16 training
with its loss scaler. They skip on machines without CUDA."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import photo, read_rgb, small_model, write_rgb
from upscale.cli import main
from upscale.engine import EngineOptions, Upscaler

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_images_on_cuda_in_half_precision_match_the_cpu(tmp_path: Path) -> None:  # pragma: no cover
    src = write_rgb(tmp_path / "coffee.png", photo("coffee", (200, 150)))
    runner = CliRunner()
    for device, precision in (("cuda", "auto"), ("cpu", "fp32")):
        out = tmp_path / device
        r = runner.invoke(
            main, ["images", str(src), "-o", str(out), "-m", "rlfn", "--device", device, "--precision", precision]
        )
        assert r.exit_code == 0, r.output
    gpu, cpu = read_rgb(tmp_path / "cuda" / "coffee_x4.png"), read_rgb(tmp_path / "cpu" / "coffee_x4.png")
    assert gpu.shape == cpu.shape == (600, 800, 3)
    assert np.abs(gpu.astype(int) - cpu).mean() < 0.5


def test_out_of_memory_lowers_the_tile_and_keeps_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:  # pragma: no cover
    """A real CUDA OOM (the process is allowed 1 GiB): the engine halves the tile until it fits, and the
    result is the tiled one."""
    model = small_model("rlfn")
    img = photo("astronaut", (1600, 1200))
    want = Upscaler(model, EngineOptions(device="cuda", precision="fp32", tile=256)).upscale(img)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((1 << 30) / total)
    try:
        with caplog.at_level(logging.WARNING, logger="upscale"):
            got = Upscaler(model, EngineOptions(device="cuda", precision="fp32", tile=1600)).upscale(img)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert "out of memory: tile size lowered" in caplog.text
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1


def test_fp16_training_scales_its_loss_and_resumes(tmp_path: Path) -> None:  # pragma: no cover
    data = tmp_path / "hr"
    data.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        write_rgb(data / f"{name}.png", photo(name, (128, 128)))
    common = ["train", "rlfn", "--data", str(data), "--scale", "2", "--patch", "64", "--batch-size", "8"]
    common += ["--device", "cuda", "--precision", "fp16", "--log-every", "1", "-q", "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(main, [*common, "--iters", "30"])
    assert r.exit_code == 0, r.output
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 30 and state["scaler"]["scale"] > 0
    r = CliRunner().invoke(main, ["train", "--resume", "--out", str(tmp_path / "run"), "--iters", "40", "-q"])
    assert r.exit_code == 0, r.output
    resumed = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert resumed["iteration"] == 40 and "scaler" in resumed
    with (tmp_path / "run" / "metrics.csv").open() as fh:
        losses = [float(r["value"]) for r in csv.DictReader(fh) if r["metric"] == "loss"]
    assert len(losses) == 40 and all(np.isfinite(losses)) and np.mean(losses[-10:]) < np.mean(losses[:10])
