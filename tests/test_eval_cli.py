"""``upscale eval`` through the real CLI on folders of real photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.conftest import photo, read_rgb, write_rgb
from upscale.cli import main
from upscale.eval.metrics import psnr, ssim
from upscale.eval.protocol import make_lr, modcrop
from upscale.models import REGISTRY, build_model
from upscale.resize import imresize_np

GREY_GAIN_DB = 20 * math.log10(255 / 219)
"""A grey image scored as RGB has Y = 16 + 219/255·g, so every error shrinks by 219/255."""


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def eval_json(*args: str) -> dict:
    result = run("eval", *args, "--json", "-q")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def hr_dir(tmp_path: Path) -> Path:
    """Three real photos, two with sides that are not multiples of 2 or 4, and one grey image."""
    d = tmp_path / "hr"
    d.mkdir()
    write_rgb(d / "astronaut.png", photo("astronaut", (64, 56)))
    write_rgb(d / "chelsea.png", photo("chelsea", (61, 47)))
    write_rgb(d / "coffee.png", photo("coffee", (50, 42)))
    return d


@pytest.fixture
def grey_dir(tmp_path: Path) -> Path:
    d = tmp_path / "grey"
    d.mkdir()
    write_rgb(d / "camera.png", photo("camera", (58, 50))[..., 0])
    return d


def rlfn_weights(path: Path, scale: int) -> Path:
    model = build_model(REGISTRY.get("rlfn"), scale, channels=8, num_blocks=1)
    save_file({k: v.contiguous() for k, v in model.module.state_dict().items()}, str(path))
    return path


def test_table_lists_every_image_and_the_mean_beside_bicubic(hr_dir: Path) -> None:
    result = run("eval", "bicubic", "--data", str(hr_dir), "--scale", "2", "-q")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "mean"):
        assert name in out
    assert "PSNR" in out and "SSIM" in out and "bicubic" in out
    assert "60x46" in out  # chelsea modcropped from 61x47 to x2
    mean_row = next(line for line in out.splitlines() if line.startswith("mean")).split()
    # The bicubic model through the engine is the bicubic baseline: the same numbers.
    assert mean_row[-4] == mean_row[-2] and mean_row[-3] == mean_row[-1]


def test_json_matches_independently_scored_saved_images(hr_dir: Path, tmp_path: Path) -> None:
    weights = rlfn_weights(tmp_path / "rlfn_x2.safetensors", 2)
    save = tmp_path / "sr"
    data = eval_json("rlfn", "--weights", str(weights), "--data", str(hr_dir), "--save", str(save))
    assert data["model"] == "rlfn" and data["scale"] == 2
    assert data["protocol"]["crop_border"] == 2 and data["protocol"]["round_y"] is False
    (ds,) = data["datasets"]
    assert ds["name"] == "hr" and ds["count"] == 3 and ds["errors"] == []
    for item in ds["images"]:
        hr = modcrop(read_rgb(hr_dir / item["name"]), 2)
        sr = read_rgb(save / "hr" / item["name"])
        assert sr.shape == hr.shape == (item["height"], item["width"], 3)
        assert item["psnr"] == pytest.approx(psnr(sr, hr, crop_border=2, y_only=True), abs=1e-9)
        assert item["ssim"] == pytest.approx(ssim(sr, hr, crop_border=2, y_only=True), abs=1e-9)
        bic = imresize_np(make_lr(hr, 2), 2)
        assert item["bicubic_psnr"] == pytest.approx(psnr(bic, hr, crop_border=2, y_only=True), abs=1e-9)
    assert ds["mean"]["psnr"] == pytest.approx(np.mean([i["psnr"] for i in ds["images"]]), abs=1e-9)
    assert not [p for p in save.rglob("*") if ".part" in p.name]


def test_several_data_folders_give_one_row_each(hr_dir: Path, grey_dir: Path) -> None:
    result = run("eval", "bicubic", "-d", str(hr_dir), "-d", str(grey_dir), "-s", "3", "-q")
    assert result.exit_code == 0, result.output
    summary = result.stdout.split("dataset")[-1].splitlines()
    rows = [line.split() for line in summary if line.startswith(("hr ", "grey "))]
    assert [r[0] for r in rows] == ["hr", "grey"]
    assert [r[1] for r in rows] == ["3", "1"]
    data = eval_json("bicubic", "-d", str(hr_dir), "-d", str(grey_dir), "-s", "3")
    assert [d["count"] for d in data["datasets"]] == [3, 1]


def test_grey_images_work_and_the_gray_convention_shifts_psnr_by_the_luma_gain(grey_dir: Path) -> None:
    luma = eval_json("bicubic", "-d", str(grey_dir), "-s", "2", "--gray", "luma")["datasets"][0]["images"][0]
    rgb = eval_json("bicubic", "-d", str(grey_dir), "-s", "2", "--gray", "rgb")["datasets"][0]["images"][0]
    assert luma["width"] == 58 and luma["height"] == 50
    assert rgb["psnr"] - luma["psnr"] == pytest.approx(GREY_GAIN_DB, abs=0.01)
    # auto: RGB models score grey images as RGB
    auto = eval_json("bicubic", "-d", str(grey_dir), "-s", "2")
    assert auto["protocol"]["gray"] == "rgb"
    assert auto["datasets"][0]["images"][0]["psnr"] == pytest.approx(rgb["psnr"], abs=1e-9)


def test_lr_dir_evaluates_given_lr_images(hr_dir: Path, tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for p in hr_dir.iterdir():
        hr = modcrop(read_rgb(p), 2)
        # A different degradation (box filter), named DIV2K-style with an x2 suffix.
        lr = hr.reshape(hr.shape[0] // 2, 2, hr.shape[1] // 2, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        write_rgb(lr_dir / f"{p.stem}x2.png", lr)
    made = eval_json("bicubic", "-d", str(hr_dir), "-s", "2")["datasets"][0]["images"]
    given = eval_json("bicubic", "-d", str(hr_dir), "-s", "2", "--lr-dir", str(lr_dir))["datasets"][0]["images"]
    for a, b in zip(made, given, strict=True):
        assert a["name"] == b["name"]
        hr = modcrop(read_rgb(hr_dir / b["name"]), 2)
        lr = read_rgb(lr_dir / f"{Path(b['name']).stem}x2.png")
        expected = psnr(imresize_np(lr, 2), hr, crop_border=2, y_only=True)
        assert b["bicubic_psnr"] == pytest.approx(expected, abs=1e-9)
        assert b["bicubic_psnr"] != pytest.approx(a["bicubic_psnr"], abs=1e-3)


def test_lr_image_of_the_wrong_size_is_a_one_line_error(hr_dir: Path, tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for p in hr_dir.iterdir():
        hr = modcrop(read_rgb(p), 2)
        write_rgb(lr_dir / p.name, make_lr(hr, 2))
    write_rgb(lr_dir / "coffee.png", photo("coffee", (20, 20)))
    result = run("eval", "bicubic", "-d", str(hr_dir), "-s", "2", "--lr-dir", str(lr_dir), "-q")
    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.splitlines() if "coffee.png" in line]
    assert "20x20" in line and "25x21" in line
    assert "astronaut.png" in result.stdout and "chelsea.png" in result.stdout  # the others still ran


def test_folder_without_images_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    result = run("eval", "bicubic", "-d", str(empty), "-s", "2")
    assert result.exit_code == 1
    assert f"{empty}: no images" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run("eval", "bicubic", "-d", str(tmp_path / "nope"), "-s", "2")
    assert missing.exit_code == 1 and "not a folder" in missing.stderr


def test_image_smaller_than_the_scale_fails_alone(hr_dir: Path) -> None:
    write_rgb(hr_dir / "tiny.png", photo("astronaut", (3, 3)))
    result = run("eval", "bicubic", "-d", str(hr_dir), "-s", "4", "-q")
    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.splitlines() if "tiny.png" in line]
    assert "3x3 is too small for x4" in line
    assert "3 images" in result.stdout  # the mean covers the images that worked


def test_model_scale_mismatch_is_a_one_line_error(hr_dir: Path, tmp_path: Path) -> None:
    weights = rlfn_weights(tmp_path / "rlfn_x2.safetensors", 2)
    result = run("eval", "rlfn", "--weights", str(weights), "-d", str(hr_dir), "--scale", "4")
    assert result.exit_code == 1
    assert "x2, not x4" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    unknown = run("eval", "nosuchnet", "-d", str(hr_dir))
    assert unknown.exit_code == 2 and "unknown model 'nosuchnet'" in unknown.stderr


def test_save_refuses_the_input_folder(hr_dir: Path) -> None:
    before = {p.name: p.read_bytes() for p in hr_dir.iterdir()}
    result = run("eval", "bicubic", "-d", str(hr_dir), "-s", "2", "--save", str(hr_dir.parent), "-q")
    assert result.exit_code == 1 and "input folder" in result.stderr
    assert {p.name: p.read_bytes() for p in hr_dir.iterdir()} == before


def test_lr_dir_count_must_match_data(hr_dir: Path, grey_dir: Path) -> None:
    result = run("eval", "bicubic", "-d", str(hr_dir), "-d", str(grey_dir), "--lr-dir", str(hr_dir))
    assert result.exit_code == 2 and "one --lr-dir per --data" in result.stderr


def test_real_world_degradation_gives_each_image_its_own_fixed_lr(hr_dir: Path, tmp_path: Path) -> None:
    """``--degradation real``: each image's LR depends on the seed and its name only (not on the other
    images), the bicubic baseline upscales that LR, and the JSON says which degradation ran."""
    from upscale.eval.protocol import make_real_lr

    weights = rlfn_weights(tmp_path / "rlfn_x4.safetensors", 4)
    args = ("rlfn", "--weights", str(weights), "--degradation", "real")
    first = eval_json(*args, "--data", str(hr_dir))
    assert first["protocol"]["degradation"] == "real-world (Real-ESRGAN second order), seed 0, uint8"
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "coffee.png").write_bytes((hr_dir / "coffee.png").read_bytes())
    single = eval_json(*args, "--data", str(alone))["datasets"][0]["images"][0]
    by_name = {i["name"]: i for i in first["datasets"][0]["images"]}
    assert single == {**by_name["coffee.png"], "seconds": single["seconds"]}
    other_seed = {i["name"]: i for i in eval_json(*args, "--seed", "1", "--data", str(hr_dir))["datasets"][0]["images"]}
    assert all(other_seed[n]["bicubic_psnr"] != by_name[n]["bicubic_psnr"] for n in by_name)

    hr = modcrop(read_rgb(hr_dir / "coffee.png"), 4)
    lr = make_real_lr(hr, 4, 0, "coffee.png")
    assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3) and lr.dtype == np.uint8
    assert np.array_equal(lr, make_real_lr(hr, 4, 0, "coffee.png"))
    bic = imresize_np(lr, 4)
    assert by_name["coffee.png"]["bicubic_psnr"] == pytest.approx(psnr(bic, hr, crop_border=4, y_only=True), abs=1e-9)
    clean = eval_json("rlfn", "--weights", str(weights), "--data", str(alone))["datasets"][0]["images"][0]
    assert clean["bicubic_psnr"] > single["bicubic_psnr"] + 1  # blur, noise and JPEG cost the baseline
    assert run("eval", *args, "--data", str(hr_dir), "--lr-dir", str(hr_dir)).exit_code == 2
