"""``upscale train`` through the real CLI on real photos: every recipe, resume, interruption, bad input."""

from __future__ import annotations

import csv
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.conftest import photo, read_rgb, write_rgb
from tests.test_interrupts import default_sigint
from upscale.cli import main


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five real photos, PNG and JPEG, one of them grey."""
    d = tmp_path_factory.mktemp("train")
    write_rgb(d / "astronaut.png", photo("astronaut", (96, 96)))
    write_rgb(d / "coffee.jpg", photo("coffee", (120, 80)))
    write_rgb(d / "chelsea.png", photo("chelsea", (110, 90)))
    write_rgb(d / "rocket.png", photo("rocket", (100, 84)))
    write_rgb(d / "camera.png", photo("camera", (88, 88))[..., 0])
    return d


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("val")
    write_rgb(d / "immunohistochemistry.png", photo("immunohistochemistry", (64, 64)))
    return d


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, ["train", *args])


def run(args: list[str], code: int = 0) -> str:
    result = invoke(args)
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == code, out + repr(result.exception)
    return out


def metric(run_dir: Path, name: str) -> list[float]:
    with (run_dir / "metrics.csv").open() as fh:
        return [float(r["value"]) for r in csv.DictReader(fh) if r["metric"] == name]


def base(model: str, data: Path, out: Path, *extra: str, quiet: bool = True) -> list[str]:
    return [model, "--data", str(data), "--out", str(out), "--log-every", "1", *(["-q"] if quiet else []), *extra]


# model, recipe, scale, options, logged loss part that must fall, init from (recipe of an earlier case)
CASES = [
    ("srcnn", "srcnn", 3, ["--patch", "33", "--batch-size", "8", "--lr", "0.05", "--iters", "12"], "loss", None),
    (
        "drcn",
        "drcn",
        2,
        [
            "--arch",
            "num_filters=16",
            "--arch",
            "num_recursions=3",
            "--patch",
            "16",
            "--batch-size",
            "4",
            "--lr",
            "0.01",
            "--iters",
            "12",
        ],
        "loss",
        None,
    ),
    (
        "perceptual",
        "perceptual",
        4,
        ["--random-vgg", "--patch", "32", "--batch-size", "2", "--iters", "12"],
        "feature",
        None,
    ),
    ("perceptual", "perceptual-pixel", 4, ["--patch", "32", "--batch-size", "2", "--iters", "12"], "loss", None),
    (
        "srresnet",
        "srresnet",
        4,
        ["--arch", "num_blocks=2", "--patch", "32", "--batch-size", "4", "--lr", "1e-3", "--iters", "12"],
        "loss",
        None,
    ),
    (
        "srgan",
        "srgan",
        4,
        [
            "--arch",
            "num_blocks=2",
            "--random-vgg",
            "--patch",
            "32",
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--iters",
            "12",
        ],
        "d_loss",
        "srresnet",
    ),
    (
        "esrgan",
        "esrgan-psnr",
        4,
        ["--arch", "num_block=1", "--patch", "32", "--batch-size", "4", "--lr", "1e-3", "--iters", "12"],
        "loss",
        None,
    ),
    (
        "esrgan",
        "esrgan-gan",
        4,
        [
            "--arch",
            "num_block=1",
            "--random-vgg",
            "--patch",
            "128",
            "--batch-size",
            "1",
            "--lr",
            "1e-3",
            "--iters",
            "8",
        ],
        "percep",
        "esrgan-psnr",
    ),
    (
        "drn-s",
        "drn",
        4,
        ["--arch", "n_blocks=1", "--patch", "32", "--batch-size", "4", "--lr", "1e-3", "--iters", "12"],
        "primal",
        None,
    ),
    ("rlfn", "rlfn", 2, ["--patch", "32", "--batch-size", "4", "--lr", "2e-3", "--iters", "12"], "loss", None),
    (
        "rlfn",
        "rlfn-contrastive",
        2,
        ["--patch", "32", "--batch-size", "4", "--lr", "2e-3", "--iters", "12"],
        "loss",
        "rlfn",
    ),
    ("rlfn", "rlfn-l2", 2, ["--patch", "32", "--batch-size", "4", "--lr", "2e-3", "--iters", "12"], "loss", "rlfn"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders by recipe name, so later stages start from earlier ones' weights."""
    return {}


@pytest.mark.parametrize(("model", "recipe", "scale", "options", "part", "init"), CASES, ids=[c[1] for c in CASES])
def test_every_recipe_lowers_its_loss(
    model: str,
    recipe: str,
    scale: int,
    options: list[str],
    part: str,
    init: str | None,
    tmp_path: Path,
    runs: dict[str, Path],
) -> None:
    # One photo the size of the crop: every batch holds the same picture (flipped and rotated), so the
    # loss follows training rather than which crops were drawn.
    patch = int(options[options.index("--patch") + 1])
    data = tmp_path / "data"
    data.mkdir()
    write_rgb(data / "chelsea.png", photo("chelsea", (patch, patch)))
    out = tmp_path / recipe
    args = base(model, data, out, "--recipe", recipe, "--scale", str(scale), *options)
    if init is not None:
        if init not in runs:
            pytest.skip(f"needs the {init} run")
        args += ["--init", str(runs[init] / "final.safetensors")]
    run(args)
    values = metric(out, part)
    assert len(values) == int(options[options.index("--iters") + 1])
    assert np.mean(values[-3:]) < np.mean(values[:3]), values
    with safe_open(str(out / "final.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["model"] == model and meta["scale"] == str(scale) and meta["recipe"] == recipe
    assert meta["iterations"] == str(len(values))
    assert meta["machine"].endswith(f"torch {torch.__version__}")  # where it trained, for the manifest
    runs[recipe] = out


def test_drn_unpaired_images_add_the_dual_loss(train_dir: Path, tmp_path: Path) -> None:
    lr_only = tmp_path / "lr_only"
    lr_only.mkdir()
    write_rgb(lr_only / "coins.png", photo("coins", (40, 30)))
    out = tmp_path / "r"
    run(
        base(
            "drn-s",
            train_dir,
            out,
            "--scale",
            "4",
            "--arch",
            "n_blocks=1",
            "--patch",
            "32",
            "--batch-size",
            "2",
            "--iters",
            "3",
            "--unpaired",
            str(lr_only),
        )
    )
    unpaired = metric(out, "unpaired")
    assert len(unpaired) == 3 and all(np.isfinite(unpaired)) and min(unpaired) > 0
    assert not any(k.startswith("dual") for k in _weights(out))


def test_real_world_degradation_trains_and_records_it(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(
        base(
            "rlfn",
            train_dir,
            out,
            "--scale",
            "4",
            "--patch",
            "64",
            "--batch-size",
            "2",
            "--iters",
            "2",
            "--degradation",
            "real",
        )
    )
    with safe_open(str(out / "final.safetensors"), framework="pt") as f:
        assert f.metadata()["degradation"] == "real"
    msg = run(
        base("rlfn", train_dir, tmp_path / "p", "--scale", "4", "--degradation", "real", "--lr-data", str(train_dir)),
        code=1,
    )
    assert "cannot be used with --lr-data" in msg


def test_perceptual_losses_never_fall_back_to_a_random_vgg(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSCALE_HOME", str(tmp_path / "empty_cache"))
    msg = run(base("perceptual", train_dir, tmp_path / "r", "--scale", "4", "--patch", "32"), code=1)
    assert "run 'upscale weights download vgg16' first" in msg
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
    msg = run(
        base("perceptual", train_dir, tmp_path / "s", "--scale", "4", "--vgg-weights", str(tmp_path / "no.pth")), code=1
    )
    assert "no.pth: no such weights file" in msg


def test_recipes_that_continue_a_stage_need_init(train_dir: Path, tmp_path: Path) -> None:
    out = run(base("esrgan", train_dir, tmp_path / "r", "--stage", "gan", "--scale", "4", "--random-vgg"), code=1)
    assert "continues a previous stage: pass --init" in out


def test_final_weights_upscale_a_real_photo_and_validation_is_logged(
    train_dir: Path, val_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    log = run(
        base(
            "rlfn",
            train_dir,
            out,
            "--scale",
            "2",
            "--patch",
            "32",
            "--batch-size",
            "4",
            "--iters",
            "4",
            "--val",
            str(val_dir),
            "--val-every",
            "2",
        )
    )
    assert "done at iteration 4" in log and "immunohistochemistry" not in log
    assert len(metric(out, f"{val_dir.name}/psnr")) == 2
    assert metric(out, f"{val_dir.name}/bicubic_psnr")[0] > 20
    assert (out / "metrics.png").stat().st_size > 1000
    saved = json.loads((out / "config.json").read_text())
    assert saved["recipe"]["name"] == "rlfn" and saved["recipe"]["batch_size"] == 4 and saved["scale"] == 2
    src = write_rgb(tmp_path / "in.png", photo("coffee", (40, 30)))
    result = CliRunner().invoke(
        main, ["images", str(src), "--weights", str(out / "final.safetensors"), "-o", str(tmp_path / "o"), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert read_rgb(tmp_path / "o" / "in_x2.png").shape == (60, 80, 3)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "final.safetensors"))


def test_resume_gives_the_weights_of_an_uninterrupted_run(train_dir: Path, tmp_path: Path) -> None:
    common = ["--scale", "2", "--patch", "32", "--batch-size", "4", "--checkpoint-every", "100"]
    config = tmp_path / "constant.toml"
    config.write_text('[recipe]\nname = "rlfn"\nschedule = "constant"\nema = 0.9\n')
    run(base("rlfn", train_dir, tmp_path / "straight", "--config", str(config), "--iters", "6", *common))
    run(base("rlfn", train_dir, tmp_path / "split", "--config", str(config), "--iters", "3", *common))
    run(["--resume", "--out", str(tmp_path / "split"), "--iters", "6", "-q"])
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert metric(tmp_path / "split", "loss") == metric(tmp_path / "straight", "loss")


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes_exactly(train_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "constant.yaml"
    config.write_text("recipe:\n  name: rlfn\n  schedule: constant\n")
    args = [
        "rlfn",
        "--data",
        str(train_dir),
        "--scale",
        "2",
        "--patch",
        "32",
        "--batch-size",
        "4",
        "--config",
        str(config),
        "--iters",
        "400",
        "--log-every",
        "1",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "upscale", "train", *args, "--out", str(tmp_path / "a"), "-q"],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # a suite started in the background would pass on an ignored SIGINT
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(metric_or_empty(tmp_path / "a", "loss")) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at iteration" in err
    stopped = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["iteration"]
    assert 3 <= stopped < 400
    run(["--resume", "--out", str(tmp_path / "a"), "--iters", str(stopped + 2), "-q"])
    run([*args, "--out", str(tmp_path / "b"), "--iters", str(stopped + 2), "-q"])
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_data_workers_draw_the_batches_one_process_would(train_dir: Path, tmp_path: Path) -> None:
    """--workers only moves the drawing of batches (real-world degradation included) to other processes."""
    common = ["--scale", "2", "--patch", "32", "--batch-size", "4", "--iters", "5", "--degradation", "real"]
    run(base("rlfn", train_dir, tmp_path / "here", *common, "--workers", "0"))
    out = run(base("rlfn", train_dir, tmp_path / "ahead", *common, "--workers", "2", quiet=False))
    assert "2 data workers" in out
    a, b = _weights(tmp_path / "here"), _weights(tmp_path / "ahead")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric(tmp_path / "here", "loss") == metric(tmp_path / "ahead", "loss")


def test_ctrl_c_with_data_workers_saves_a_checkpoint(train_dir: Path, tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group, workers included: the run still stops cleanly."""
    args = base("rlfn", train_dir, tmp_path / "a", "--scale", "2", "--patch", "32", "--batch-size", "4")
    proc = subprocess.Popen(
        [sys.executable, "-m", "upscale", "train", *args, "--iters", "2000", "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(metric_or_empty(tmp_path / "a", "loss")) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at iteration" in err and "Traceback" not in err
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["iteration"] >= 3


def metric_or_empty(run_dir: Path, name: str) -> list[float]:
    return metric(run_dir, name) if (run_dir / "metrics.csv").exists() else []


def test_resume_refuses_another_model_scale_or_recipe(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    run(base("rlfn", train_dir, out, "--scale", "2", "--patch", "32", "--batch-size", "2", "--iters", "1"))
    msg = run(base("rlfn", train_dir, out, "--scale", "4", "--patch", "32", "--resume"), code=1)
    assert "made with scale 2, not 4" in msg
    msg = run(base("rlfn", train_dir, out, "--scale", "2", "--recipe", "rlfn-l2", "--resume"), code=1)
    assert "made with recipe 'rlfn', not 'rlfn-l2'" in msg
    msg = run(base("rlfn", train_dir, out, "--scale", "2", "--patch", "32", "--iters", "2"), code=1)
    assert "holds a run already" in msg
    msg = run(["--resume", "--out", str(tmp_path / "nothing")], code=1)
    assert "no run to resume" in msg


def test_nan_loss_stops_with_the_iteration_and_keeps_the_last_checkpoint(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    msg = run(
        base(
            "rlfn",
            train_dir,
            out,
            "--scale",
            "2",
            "--patch",
            "32",
            "--batch-size",
            "2",
            "--iters",
            "50",
            "--lr",
            "1e30",
            "--checkpoint-every",
            "1",
        ),
        code=1,
    )
    assert "the loss became" in msg and "at iteration" in msg and "is kept" in msg
    bad_at = int(msg.split("at iteration ")[1].split(";")[0])
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == bad_at - 1


def test_a_full_disk_keeps_the_previous_checkpoint(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = [
        sys.executable,
        "-m",
        "upscale",
        "train",
        "rlfn",
        "--data",
        str(train_dir),
        "--scale",
        "2",
        "--patch",
        "32",
        "--batch-size",
        "2",
        "-q",
        "--out",
        str(out),
    ]
    subprocess.run([*args, "--iters", "2"], check=True, capture_output=True)
    size = (out / "checkpoint.pt").stat().st_size
    before = (out / "checkpoint.pt").read_bytes()

    def limit_file_size() -> None:  # writes beyond the limit fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    res = subprocess.run(
        [*args, "--iters", "4", "--resume"], capture_output=True, text=True, preexec_fn=limit_file_size
    )
    assert res.returncode == 1, res.stderr
    assert "checkpoint.pt: could not be written" in res.stderr and "previous file" in res.stderr
    assert (out / "checkpoint.pt").read_bytes() == before
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_bad_data_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = run(["rlfn", "--data", str(empty), "--scale", "2", "--out", str(tmp_path / "a")], code=1)
    assert f"{empty}: no images" in msg
    small = tmp_path / "small"
    small.mkdir()
    write_rgb(small / "tiny.png", photo("astronaut", (20, 20)))
    (small / "broken.png").write_bytes(b"not a png")
    msg = run(["rlfn", "--data", str(small), "--scale", "2", "--patch", "32", "--out", str(tmp_path / "b")], code=1)
    assert "no readable image of at least 32x32 px" in msg
    msg = run(["rlfn", "--data", str(tmp_path / "missing"), "--scale", "2", "--out", str(tmp_path / "c")], code=1)
    assert "missing: not a folder" in msg


def test_small_images_are_skipped_with_a_warning(train_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "mixed"
    data.mkdir()
    write_rgb(data / "big.png", photo("astronaut", (64, 64)))
    write_rgb(data / "tiny.png", photo("coffee", (20, 20)))
    args = base(
        "rlfn", data, tmp_path / "r", "--scale", "2", "--patch", "32", "--batch-size", "2", "--iters", "1", quiet=False
    )
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "tiny.png: 20x20 is smaller than the 32-px training crop" in result.stderr


def test_config_file_and_command_line_override(train_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f'model = "rlfn"\nscale = 2\ndata = ["{train_dir}"]\niters = 5\nbatch-size = 2\npatch = 32\n'
        "[recipe]\nlr = 0.001\n"
    )
    log = run(["--config", str(config), "--iters", "2", "--out", str(tmp_path / "r"), "-q"])
    assert "done at iteration 2" in log
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["recipe"]["iters"] == 2 and saved["recipe"]["lr"] == 0.001 and saved["recipe"]["batch_size"] == 2
    # --recipe NAME on the command line picks the recipe; the file's [recipe] fields still apply to it
    config.write_text(
        f'model = "srcnn"\nscale = 2\ndata = ["{train_dir}"]\nbatch-size = 2\npatch = 33\n'
        '[recipe]\noptimizer = "adam"\nschedule = "cosine"\nlr_min = 1e-6\n'
    )
    run(["--config", str(config), "--recipe", "srcnn", "--iters", "2", "--out", str(tmp_path / "t"), "-q"])
    saved = json.loads((tmp_path / "t" / "config.json").read_text())["recipe"]
    assert (saved["name"], saved["optimizer"], saved["schedule"], saved["lr_min"]) == ("srcnn", "adam", "cosine", 1e-6)
    yaml_config = tmp_path / "run.yaml"
    yaml_config.write_text(f"model: rlfn\nscale: 2\ndata: [{train_dir}]\ntypo_setting: 1\n")
    msg = run(["--config", str(yaml_config), "--out", str(tmp_path / "s")], code=1)
    assert "unknown setting(s): typo_setting" in msg


def test_list_recipes_names_every_recipe_and_paper() -> None:
    from upscale.train.recipes import RECIPES

    out = run(["--list-recipes"])
    for r in RECIPES:
        assert r.name in out and r.paper in out


@pytest.fixture(params=[True, False], ids=["bf16-cpu", "no-bf16-cpu"])
def native(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """A CPU whose oneDNN reports native bf16 kernels, or none (faked), the cached answer cleared around it."""
    from upscale import engine, fusion

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: request.param)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", lambda: False)
    engine.native_cpu_halves.cache_clear()
    fusion._native_bf16.cache_clear()
    yield request.param
    engine.native_cpu_halves.cache_clear()
    fusion._native_bf16.cache_clear()


def test_precision_is_chosen_from_the_machine_and_logged(native: bool, train_dir: Path, tmp_path: Path) -> None:
    """What the CPU reports decides auto's precision, and the run says which it took."""
    from upscale.train.loop import pick_precision

    cpu = pick_precision("auto", torch.device("cpu"))
    assert cpu is (torch.bfloat16 if native else torch.float32)
    args = base(
        "rlfn",
        train_dir,
        tmp_path / "r",
        "--scale",
        "2",
        "--patch",
        "32",
        "--batch-size",
        "2",
        "--iters",
        "1",
        quiet=False,
    )
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert ("bf16 autocast" if native else "fp32") in result.stderr
    msg = run(base("rlfn", train_dir, tmp_path / "f", "--scale", "2", "--precision", "fp16"), code=1)
    assert "fp16 training needs a CUDA device" in msg


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_two_processes_match_one(train_dir: Path, tmp_path: Path) -> None:
    common = [
        "-m",
        "upscale",
        "train",
        "rlfn",
        "--data",
        str(train_dir),
        "--scale",
        "2",
        "--patch",
        "32",
        "--batch-size",
        "4",
        "--iters",
        "4",
        "--lr",
        "1e-3",
        "--precision",
        "fp32",  # sharding is what is compared; bf16 autocast (auto on native-bf16 CPUs) rounds each shard apart
        "-v",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            *common,
            "--out",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "all 2 processes hold identical weights" in res.stderr
    subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], check=True, capture_output=True, env=env)
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    # Same global batches; only the order of floating-point reductions differs.
    diffs = [float((a[k] - b[k]).abs().max()) for k in a]
    assert max(diffs) < 1e-4, max(diffs)


def test_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "nosuchnet", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "unknown model 'nosuchnet'; known models: " in result.output


# ------------------------------------------------------------------ resume with every part of the state


def init_weights(path: Path, model: str, scale: int, arch: dict[str, Any]) -> Path:
    """Weights of a freshly built ``model`` (a stand-in for the earlier stage that ``--init`` continues)."""
    from upscale.models import REGISTRY
    from upscale.models.loading import build_model
    from upscale.train.checkpoint import plain_state_dict

    if not path.exists():
        save_file(plain_state_dict(build_model(REGISTRY.get(model), scale, **arch).module), str(path))
    return path


def _checkpoint(run_dir: Path) -> dict[str, Any]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Nested checkpoint contents equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
        assert same, f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _assert_resume_is_exact(split: Path, straight: Path) -> dict[str, Any]:
    """The run resumed in ``split`` ends exactly as the uninterrupted ``straight``: weights, extra networks,
    optimisers, EMA, loss scaler, random state, and the logged losses and learning rates."""
    for name in ("lr", "loss"):
        assert metric(split, name) == metric(straight, name), name
    a, b = _checkpoint(split), _checkpoint(straight)
    assert a.keys() == b.keys()
    for key in ("iteration", "model", "extra", "opt_g", "opt_d", "ema", "scaler", "rng"):
        if key in b:
            _assert_same(a[key], b[key], key)
    wa, wb = _weights(split), _weights(straight)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return b


def _resume_pair(
    model: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, iters: int, *options: str
) -> tuple[Path, Path, dict[str, Any]]:
    """An uninterrupted run of ``iters`` iterations, and the same run stopped by Ctrl-C at half and resumed
    (``--iters`` stays, so the learning-rate schedule is the same); with the state it stopped with."""
    from upscale.train import loop

    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ["--iters", str(iters), "--checkpoint-every", "1000", *options]
    run(base(model, data, straight, *args))
    logged = loop.Metrics.add

    def add(self: loop.Metrics, iteration: int, seconds: float, values: dict[str, float]) -> None:
        logged(self, iteration, seconds, values)
        if iteration == iters // 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the loop stops after this iteration

    with monkeypatch.context() as m:
        m.setattr(loop.Metrics, "add", add)
        run(base(model, data, split, *args), code=130)
    half = _checkpoint(split)
    assert half["iteration"] == iters // 2
    run(["--resume", "--out", str(split), "-q"])
    return split, straight, half


@pytest.mark.parametrize(
    ("schedule", "factors"),
    [
        ("cosine", [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / 4)) for i in range(4)]),
        ("step", [1.0, 0.5, 0.25, 0.125]),
    ],
)
def test_resume_continues_the_learning_rate_schedule(
    schedule: str, factors: list[float], train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "schedule.toml"
    config.write_text(
        f'[recipe]\nname = "rlfn"\nschedule = "{schedule}"\nlr = 0.001\nlr_min = 0.0001\n'
        "milestones = [0.25, 0.5, 0.75]\ngamma = 0.5\n"
    )
    options = ("--config", str(config), "--scale", "2", "--patch", "32", "--batch-size", "2")
    split, straight, _ = _resume_pair("rlfn", train_dir, tmp_path, monkeypatch, 4, *options)
    assert metric(straight, "lr") == pytest.approx([1e-3 * f for f in factors], rel=1e-5)
    _assert_resume_is_exact(split, straight)


def test_drn_trains_its_dual_networks_and_resumes_them_exactly(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DRN's own recipe: cosine schedule, the duals in the generator's optimiser
    options = ("--scale", "4", "--arch", "n_blocks=1", "--patch", "16", "--batch-size", "2", "--lr", "1e-3")
    split, straight, half = _resume_pair("drn-s", train_dir, tmp_path, monkeypatch, 4, *options)
    end = _assert_resume_is_exact(split, straight)
    duals, before = end["extra"]["duals"], half["extra"]["duals"]
    assert duals and half["iteration"] == 2
    still = [k for k in duals if torch.equal(duals[k], before[k])]
    assert not still, f"the dual networks did not learn: {still}"


def _gan_options(model: str, tmp_path: Path) -> list[str]:
    arch = {"srgan": {"num_blocks": 1}, "esrgan": {"num_block": 1}}[model]
    init = init_weights(tmp_path / "init.safetensors", model, 4, arch)
    patch, batch = ("32", "2") if model == "srgan" else ("128", "1")  # ESRGAN's discriminator takes 128 px
    options = ["--scale", "4", "--random-vgg", "--init", str(init), "--precision", "fp32"]
    options += ["--patch", patch, "--batch-size", batch, "--lr", "1e-3"]
    return options + [a for k, v in arch.items() for a in ("--arch", f"{k}={v}")]


@pytest.mark.parametrize(("model", "recipe"), [("srgan", "srgan"), ("esrgan", "esrgan-gan")])
def test_the_adversarial_term_trains_the_generator(model: str, recipe: str, tmp_path: Path) -> None:
    from upscale.train.recipes import get_recipe

    weights = dict(get_recipe(recipe).loss_weights)
    options = [*_gan_options(model, tmp_path), "--recipe", recipe, "--iters", "1"]
    data = tmp_path / "data"
    data.mkdir()
    write_rgb(data / "chelsea.png", photo("chelsea", (136, 136)))  # ESRGAN's discriminator takes 128-px crops
    run(base(model, data, tmp_path / "gan", *options))
    # The logged generator loss is the weighted sum of its logged terms, the adversarial one included.
    terms = {k: metric(tmp_path / "gan", k) for k in weights}
    expected = [sum(w * terms[k][i] for k, w in weights.items()) for i in range(len(terms["adv"]))]
    assert metric(tmp_path / "gan", "loss") == pytest.approx(expected, rel=1e-4)
    assert min(abs(weights["adv"] * v) for v in terms["adv"]) > 1e-3 * max(expected)  # large enough to be seen
    # Without the adversarial term (weight 0) the generator learns something else.
    config = tmp_path / "no_adv.toml"
    config.write_text(
        f'[recipe]\nname = "{recipe}"\nloss_weights = {{ '
        + ", ".join(f"{k} = {0.0 if k == 'adv' else w}" for k, w in weights.items())
        + " }\n"
    )
    run(base(model, data, tmp_path / "no_adv", *options, "--config", str(config)))
    a, b = _weights(tmp_path / "gan"), _weights(tmp_path / "no_adv")
    assert any(not torch.equal(a[k], b[k]) for k in a), "the adversarial term does not reach the generator"


def test_gan_resume_restores_the_discriminator_its_optimiser_and_the_loss_scaler(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from upscale.train import loop

    # fp16 (which scales the loss) needs CUDA; a CPU scaler whose scale doubles every iteration stands in for it.
    monkeypatch.setattr(loop, "_grad_scaler", lambda dtype, device: torch.amp.GradScaler("cpu", growth_interval=1))
    options = ("--recipe", "srgan", *_gan_options("srgan", tmp_path))  # step schedule: lr x0.1 from iteration 2
    split, straight, half = _resume_pair("srgan", train_dir, tmp_path, monkeypatch, 4, *options)
    end = _assert_resume_is_exact(split, straight)
    assert half["scaler"]["scale"] == 2.0**18 and end["scaler"]["scale"] == 2.0**20
    assert end["opt_d"]["state"] and not torch.equal(
        end["extra"]["discriminator"]["linear2.weight"], half["extra"]["discriminator"]["linear2.weight"]
    )
    assert metric(straight, "lr") == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])


# ------------------------------------------------------------------ torchrun with the extra networks


def _torchrun(args: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    return subprocess.run(
        [*launch, "-m", "upscale", "train", *args, "--out", str(out), "-v"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_averages_the_drn_dual_networks(train_dir: Path, tmp_path: Path) -> None:
    args = ["drn-s", "--data", str(train_dir), "--scale", "4", "--arch", "n_blocks=1", "--patch", "16"]
    args += ["--batch-size", "4", "--iters", "3", "--lr", "1e-3", "--precision", "fp32"]
    res = _torchrun(args, tmp_path / "ddp")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "all 2 processes hold identical weights" in res.stderr
    run([*args, "--out", str(tmp_path / "one"), "-q"])
    a, b = _checkpoint(tmp_path / "ddp"), _checkpoint(tmp_path / "one")
    # Same global batches; only the order of floating-point reductions differs.
    for part, ddp, one in (("duals", a["extra"]["duals"], b["extra"]["duals"]), ("model", a["model"], b["model"])):
        diffs = [float((ddp[k].float() - one[k].float()).abs().max()) for k in one]
        assert max(diffs) < 1e-4, (part, max(diffs))  # not averaged, the duals differ by ~1e-3


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_averages_the_discriminator(train_dir: Path, tmp_path: Path) -> None:
    # Batch norm (in SRGAN's generator and discriminator) normalises each process's shard, so a sharded GAN run
    # does not reproduce a single process; what must hold is that every process ends with the same networks.
    args = ["srgan", "--data", str(train_dir), "--recipe", "srgan", *_gan_options("srgan", tmp_path)]
    res = _torchrun([*args, "--batch-size", "4", "--iters", "1"], tmp_path / "ddp")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "all 2 processes hold identical weights" in res.stderr
    assert _checkpoint(tmp_path / "ddp")["opt_d"]["state"]
