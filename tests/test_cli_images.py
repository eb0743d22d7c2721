"""``upscale images`` and ``upscale models`` through the real CLI, on real image files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.conftest import photo, read_rgb, write_rgb
from upscale.cli import main
from upscale.models import REGISTRY, build_model


def run(*args: str, input: bytes | None = None):
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result


def no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".part" in p.name]


def test_folder_is_upscaled_beside_inputs(photos_dir: Path) -> None:
    result = run("images", str(photos_dir), "-m", "bicubic", "-q")
    assert result.exit_code == 0, result.output
    out = read_rgb(photos_dir / "astronaut_x4.png")
    assert out.shape == (256, 256, 3)
    assert (photos_dir / "coffee_x4.jpg").is_file() and (photos_dir / "chelsea_x4.png").is_file()
    assert not (photos_dir / "sub" / "rocket_x4.png").exists()  # not recursive


def test_recursive_into_output_folder_mirrors_structure(photos_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("images", str(photos_dir), "-r", "-o", str(out), "-m", "bicubic", "-s", "2", "--format", "png")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "astronaut_x2.png",
        "chelsea_x2.png",
        "coffee_x2.png",
        "sub/rocket_x2.png",
    ]
    assert read_rgb(out / "sub" / "rocket_x2.png").shape == (80, 96, 3)
    assert "4 upscaled, 0 skipped, 0 failed" in result.output


def test_glob_and_output_scale_label(photos_dir: Path, tmp_path: Path) -> None:
    result = run("images", str(photos_dir / "*.png"), "-o", str(tmp_path / "o"), "-m", "bicubic", "--outscale", "2.5")
    assert result.exit_code == 0, result.output
    assert read_rgb(tmp_path / "o" / "astronaut_x2.5.png").shape == (160, 160, 3)


def test_bad_inputs_fail_alone_with_one_line_each(photos_dir: Path, tmp_path: Path) -> None:
    (photos_dir / "notes.png").write_text("this is not an image")
    good = (photos_dir / "astronaut.png").read_bytes()
    (photos_dir / "truncated.png").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out"
    result = run("images", str(photos_dir), str(tmp_path / "missing.png"), "-o", str(out), "-m", "bicubic", "-q")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 3, result.output
    assert any("missing.png: no such file" in e for e in errors)
    assert any("notes.png: not a readable image" in e for e in errors)
    assert any("truncated.png: not a readable image" in e for e in errors)
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # a job record stays
    assert written == ["astronaut_x4.png", "chelsea_x4.png", "coffee_x4.jpg"]
    assert no_partial_files(tmp_path)


def test_existing_outputs_need_overwrite_or_skip(photos_dir: Path) -> None:
    target = photos_dir / "chelsea_x4.png"
    target.write_bytes(b"old")
    result = run("images", str(photos_dir / "chelsea.png"), "-m", "bicubic", "-q")
    assert result.exit_code == 1 and "exists (use --overwrite or --skip-existing)" in result.output
    assert target.read_bytes() == b"old"
    assert run("images", str(photos_dir / "chelsea.png"), "-m", "bicubic", "--skip-existing").exit_code == 0
    assert target.read_bytes() == b"old"
    assert run("images", str(photos_dir / "chelsea.png"), "-m", "bicubic", "--overwrite", "-q").exit_code == 0
    assert read_rgb(target).shape == (160, 240, 3)


def test_input_is_never_overwritten(photos_dir: Path) -> None:
    src = photos_dir / "astronaut.png"
    before = src.read_bytes()
    result = run("images", str(src), "-o", str(src), "-m", "bicubic", "--overwrite", "-q")
    assert result.exit_code == 1 and "is an input" in result.output
    assert src.read_bytes() == before


def test_model_errors(photos_dir: Path, tmp_path: Path) -> None:
    img = str(photos_dir / "astronaut.png")
    r = run("images", img, "-m", "nosuchmodel")
    assert r.exit_code == 2 and "unknown model 'nosuchmodel'" in r.output  # a usage error
    r = run("images", img, "-m", "rlfn", "-s", "5")
    assert r.exit_code == 1 and "has no x5" in r.output
    r = run("images", img, "-m", "srgan")  # no weights of its own and no official checkpoint
    assert r.exit_code == 1 and "no bundled weights" in r.output and "--weights" in r.output
    assert "'upscale train srgan --data DIR'" in r.output and len(r.output.strip().splitlines()) == 1
    other = tmp_path / "srcnn.safetensors"
    save_file(build_model(REGISTRY.get("srcnn"), 2).module.state_dict(), str(other))
    r = run("images", img, "-m", "rlfn", "--weights", str(other))
    assert r.exit_code == 1 and "srcnn.safetensors" in r.output and "'srcnn'" in r.output and "'rlfn'" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (photos_dir / "astronaut_x4.png").exists()


def test_given_weights_run_through_images(photos_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(REGISTRY.get("rlfn"), 2)
    weights = tmp_path / "rlfn_x2.safetensors"
    save_file(model.module.state_dict(), str(weights))
    r = run("images", str(photos_dir / "chelsea.png"), "-m", "rlfn", "--weights", str(weights), "--tile", "32", "-q")
    assert r.exit_code == 0, r.output
    assert read_rgb(photos_dir / "chelsea_x2.png").shape == (80, 120, 3)


def test_rlfn_official_weights_beat_bicubic_through_cli(shared_data: Path, tmp_path: Path) -> None:
    hr = photo("astronaut", (192, 192))
    from upscale.resize import imresize_np

    lr = imresize_np(hr, 0.5)
    write_rgb(tmp_path / "lr.png", lr)
    weights = shared_data / "official-weights/rlfn/rlfn_x2.pth"
    assert run("images", str(tmp_path / "lr.png"), "-m", "rlfn", "--weights", str(weights), "-q").exit_code == 0
    assert (
        run("images", str(tmp_path / "lr.png"), "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "b"), "-q").exit_code
        == 0
    )

    def psnr(a: np.ndarray) -> float:
        return 10 * np.log10(255**2 / np.mean((a.astype(float)[4:-4, 4:-4] - hr[4:-4, 4:-4]) ** 2))

    assert psnr(read_rgb(tmp_path / "lr_x2.png")) > psnr(read_rgb(tmp_path / "b" / "lr_x2.png")) + 1.0


def test_alpha_grey_and_16bit_files_keep_their_layout(tmp_path: Path) -> None:
    import cv2

    rgb = photo("chelsea", (40, 30))
    rgba = np.dstack([rgb, np.full((30, 40), 128, np.uint8)])
    write_rgb(tmp_path / "rgba.png", rgba)
    write_rgb(tmp_path / "grey.png", rgb[..., 0])
    cv2.imwrite(str(tmp_path / "deep.png"), (rgb.astype(np.uint16) * 257)[..., ::-1])
    assert run("images", str(tmp_path), "-m", "bicubic", "-s", "2", "-q").exit_code == 0
    assert read_rgb(tmp_path / "rgba_x2.png").shape == (60, 80, 4)
    assert read_rgb(tmp_path / "grey_x2.png").shape == (60, 80)
    deep = read_rgb(tmp_path / "deep_x2.png")
    assert deep.dtype == np.uint16 and deep.shape == (60, 80, 3)


def test_stdin_to_stdout_in_a_real_pipe(photos_dir: Path) -> None:
    data = (photos_dir / "chelsea.png").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "upscale", "images", "-", "-m", "bicubic", "-s", "2"],
        input=data,
        capture_output=True,
        check=True,
    )
    import cv2

    out = cv2.imdecode(np.frombuffer(proc.stdout, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (80, 120, 3)
    bad = subprocess.run(
        [sys.executable, "-m", "upscale", "images", "-", "-m", "bicubic"], input=b"xx", capture_output=True
    )
    assert bad.returncode == 1 and bad.stdout == b"" and b"<stdin>: not a readable image" in bad.stderr


def test_paths_from_file_list(photos_dir: Path, tmp_path: Path) -> None:
    listing = f"{photos_dir / 'chelsea.png'}\n\n{photos_dir / 'sub' / 'rocket.png'}\n"
    r = run(
        "images",
        "--from-file",
        "-",
        "-o",
        str(tmp_path / "o"),
        "-m",
        "bicubic",
        "-s",
        "2",
        "-q",
        input=listing.encode(),
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["chelsea_x2.png", "rocket_x2.png"]


def test_models_table_lists_every_model() -> None:
    r = run("models")
    assert r.exit_code == 0
    for spec in REGISTRY:
        assert spec.name in r.output
    assert "1,549,462" in r.output and "543,740" in r.output
    # The default is the bundled model that scores best on Set5 (x4 first), as weights/manifest.json says.
    manifest = json.loads((Path(__file__).resolve().parents[1] / "weights" / "manifest.json").read_text())["weights"]
    if manifest:
        best = max(manifest, key=lambda e: (e["scale"] == 4, e["scores"]["Set5"]["psnr"]))
        assert f"default model: {best['model']}" in r.output
        assert f"bundled x{best['scale']} (Set5 {best['scores']['Set5']['psnr']:.2f} dB)" in r.output
    else:
        assert "default model: bicubic" in r.output


@pytest.mark.parametrize("name", [s.name for s in REGISTRY])
def test_every_model_runs_through_images_on_a_real_photo(name: str, tmp_path: Path) -> None:
    """Each registered model, with weights saved as a user would pass them, through the CLI."""
    spec = REGISTRY.get(name)
    src = write_rgb(tmp_path / "photo.png", photo("coffee", (24, 20)))
    args = ["images", str(src), "-m", name, "-q"]
    if spec.needs_weights:
        small = {"drcn": {"num_filters": 16}}.get(name, {})
        model = build_model(spec, spec.default_scale, **small)
        save_file(model.module.state_dict(), str(tmp_path / "w.safetensors"))
        args += ["--weights", str(tmp_path / "w.safetensors"), "-s", str(spec.default_scale)]
    r = run(*args)
    assert r.exit_code == 0, r.output
    out = read_rgb(tmp_path / f"photo_x{spec.default_scale}.png")
    assert out.shape == (20 * spec.default_scale, 24 * spec.default_scale, 3)


def test_several_devices_and_compile_give_the_plain_images(photos_dir: Path, tmp_path: Path) -> None:
    """``--device cpu,cpu`` deals the folder's images to two engines as ``cuda:0,cuda:1`` does; the
    files equal one device's byte for byte. ``--compile`` gives them within one level."""
    torch.manual_seed(0)
    weights = tmp_path / "srcnn_x2.safetensors"
    save_file(build_model(REGISTRY.get("srcnn"), 2).module.state_dict(), str(weights))
    base = ["images", str(photos_dir), "-r", "-m", "srcnn", "-s", "2", "--weights", str(weights)]
    base += ["--format", "png", "-q"]
    outs = {}
    for name, extra in (("one", ["--device", "cpu"]), ("two", ["--device", "cpu,cpu"]), ("compiled", ["--compile"])):
        r = run(*base, "-o", str(tmp_path / name), *extra)
        assert r.exit_code == 0, r.output
        outs[name] = sorted((tmp_path / name).rglob("*.png"))
        assert len(outs[name]) == 4 and no_partial_files(tmp_path / name)
    for a, b, c in zip(outs["one"], outs["two"], outs["compiled"], strict=True):
        assert a.relative_to(tmp_path / "one") == b.relative_to(tmp_path / "two")
        assert a.read_bytes() == b.read_bytes()
        assert np.abs(read_rgb(c).astype(int) - read_rgb(a)).max() <= 1


def test_a_list_of_devices_checks_each(photos_dir: Path) -> None:
    r = run("images", str(photos_dir / "chelsea.png"), "-m", "bicubic", "--device", "cpu,gpu")
    assert r.exit_code == 2
    assert "'cpu,gpu' is not a device; use auto, cpu, cuda, cuda:N or mps, or several joined by commas" in r.output
    if not torch.cuda.is_available():
        r = run("images", str(photos_dir / "chelsea.png"), "-m", "bicubic", "--device", "cpu,cuda:1")
        assert r.exit_code == 1 and "Error: device 'cuda:1' asked for, but CUDA is not available" in r.output
    assert not (photos_dir / "chelsea_x4.png").exists()
