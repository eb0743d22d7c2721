"""How ``upscale images`` (and ``video`` where the options are shared) behaves at its edges: stdout as
``-o -``, one-line errors for bad outputs, devices and models, weights that do not say their scale,
outputs that would share a name, Ctrl-C, and what a folder run ignored. All through the real CLI."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner, Result
from safetensors.torch import save_file

from tests.conftest import photo, read_rgb, write_rgb
from tests.media import make_video
from tests.test_interrupts import default_sigint
from upscale.cli import main
from upscale.models import REGISTRY, build_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
MODEL = ["-m", "bicubic", "-s", "2"]


def run(*args: str | Path, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def cli(*args: str | Path, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """``python -m upscale ARGS`` in a real process, with real pipes."""
    cmd = [sys.executable, "-m", "upscale", *map(str, args)]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=ENV, cwd=cwd, timeout=300)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def decoded(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr is not None, data[:16]
    return arr


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


def video_width(path: Path) -> int:
    with av.open(str(path)) as f:
        return f.streams.video[0].codec_context.width


# ------------------------------------------------------------------------------------------- -o - is stdout
def test_file_to_stdout_in_its_own_format_or_the_one_asked(tmp_path: Path) -> None:
    write_rgb(tmp_path / "a.jpg", photo("coffee", (40, 32)))
    same = cli("images", "a.jpg", "-o", "-", *MODEL, cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert same.stdout[:3] == b"\xff\xd8\xff" and decoded(same.stdout).shape == (64, 80, 3)
    png = cli("images", "a.jpg", "-o", "-", "--format", "png", *MODEL, cwd=tmp_path)
    assert png.returncode == 0, png.stderr
    assert png.stdout.startswith(b"\x89PNG") and decoded(png.stdout).shape == (64, 80, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]  # no folder named '-', no a_x2.jpg


def test_stdin_to_stdout_keeps_the_format_of_its_bytes(tmp_path: Path) -> None:
    ok, webp = cv2.imencode(".webp", photo("chelsea", (30, 20)), [cv2.IMWRITE_WEBP_QUALITY, 90])
    assert ok
    piped = cli("images", "-", "-o", "-", *MODEL, stdin=webp.tobytes(), cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout[:4] == b"RIFF" and piped.stdout[8:12] == b"WEBP"
    assert decoded(piped.stdout).shape[:2] == (40, 60)
    ok, jpg = cv2.imencode(".jpg", photo("chelsea", (30, 20)))
    plain = cli("images", "-", *MODEL, stdin=jpg.tobytes(), cwd=tmp_path)  # no -o: stdout too
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout[:3] == b"\xff\xd8\xff" and decoded(plain.stdout).shape == (40, 60, 3)
    assert list(tmp_path.iterdir()) == []


def test_stdout_that_is_a_terminal_gets_no_image(tmp_path: Path) -> None:
    src = write_rgb(tmp_path / "a.png", photo("astronaut", (32, 32)))
    for args, stdin in ((["images", src, "-o", "-"], subprocess.DEVNULL), (["images", "-"], src.open("rb"))):
        primary, replica = pty.openpty()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "upscale", *map(str, args), *MODEL],
                stdin=stdin,
                stdout=replica,
                stderr=subprocess.PIPE,
                env=ENV,
                timeout=300,
            )
            os.close(replica)
            shown = b""
            while select.select([primary], [], [], 0.2)[0]:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the other end is closed
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(primary)
        stderr = proc.stderr.decode()
        assert proc.returncode == 1, stderr
        assert error_lines(stderr) == [
            "Error: -o -: standard output is a terminal; redirect it to a file (> out.png) or give -o FILE"
        ]
        assert shown == b"" and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_stdout_with_several_inputs_is_a_usage_error(photos_dir: Path) -> None:
    r = run("images", photos_dir, "-o", "-", *MODEL)
    assert r.exit_code == 2 and r.stdout == ""
    assert "-o - writes one image to standard output, but there are 3 inputs" in r.stderr


# ------------------------------------------------------------------------------- one-line errors, exit codes
@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", n=3, size=(32, 24), audio=None)


def _image_and_video_inputs(tmp_path: Path, clip: Path) -> dict[str, list[Path]]:
    a = write_rgb(tmp_path / "a.png", photo("astronaut", (32, 32)))
    b = write_rgb(tmp_path / "b.png", photo("chelsea", (32, 24)))
    second = make_video(tmp_path / "clip2.mp4", n=3, size=(32, 24), audio=None)
    return {"images": [a, b], "video": [clip, second]}


def test_an_output_that_cannot_be_made_is_one_line_before_any_work(tmp_path: Path, clip: Path) -> None:
    inputs = _image_and_video_inputs(tmp_path, clip)
    (tmp_path / "notes.txt").write_text("not a folder")
    (tmp_path / "afile").write_text("a file")
    for command, sources in inputs.items():
        r = run(command, *sources, "-o", tmp_path / "notes.txt", *MODEL)
        assert r.exit_code == 1, r.output
        noun = {"images": "images", "video": "videos"}[command]
        assert error_lines(r.stderr) == [
            f"Error: {tmp_path / 'notes.txt'}: is a file, not a folder; 2 {noun} need a folder"
        ]
        r = run(command, *sources, "-o", f"{tmp_path / 'afile'}/sub/", *MODEL)
        assert r.exit_code == 1, r.output
        assert error_lines(r.stderr) == [
            f"Error: {tmp_path / 'afile' / 'sub'}: {tmp_path / 'afile'} is a file, not a folder; choose another output"
        ]
        assert "Traceback" not in r.output and "Error" not in r.stdout
    assert (tmp_path / "notes.txt").read_text() == "not a folder" and not leftovers(tmp_path)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:"])
def test_a_device_that_is_no_device_is_a_usage_error(tmp_path: Path, clip: Path, device: str) -> None:
    img = write_rgb(tmp_path / "a.png", photo("astronaut", (32, 32)))
    for command, src in (("images", img), ("video", clip)):
        r = run(command, src, *MODEL, "--device", device)
        assert r.exit_code == 2, r.output
        (line,) = error_lines(r.stderr)
        assert line == (
            f"Error: Invalid value for '--device': '{device}' is not a device; use auto, cpu, cuda, cuda:N or mps, "
            "or several joined by commas"
        )
        assert "mkldnn" not in r.output  # not torch's list of every device type
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "clip.mp4"]


def test_an_unknown_model_is_a_usage_error_listing_the_known_ones(tmp_path: Path, clip: Path) -> None:
    img = write_rgb(tmp_path / "a.png", photo("astronaut", (32, 32)))
    y4m = b"YUV4MPEG2 W8 H8 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(96)
    for args, stdin in ((["images", img], None), (["video", clip], None), (["pipe"], y4m)):
        r = run(*args, "-m", "nosuchnet", input=stdin)
        assert r.exit_code == 2, r.output
        (line,) = error_lines(r.stderr)
        assert "unknown model 'nosuchnet'; known models: " in line
        assert all(spec.name in line for spec in REGISTRY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "clip.mp4"]


def test_output_suffix_and_format_that_disagree_are_a_usage_error(tmp_path: Path) -> None:
    img = write_rgb(tmp_path / "a.png", photo("astronaut", (32, 32)))
    r = run("images", img, "-o", tmp_path / "out.jpg", "--format", "png", *MODEL)
    assert r.exit_code == 2, r.output
    assert "-o " + str(tmp_path / "out.jpg") + " is a JPG file but --format is png" in r.stderr
    assert not (tmp_path / "out.jpg").exists()
    r = run("images", img, "-o", tmp_path / "out.jpeg", "--format", "jpg", *MODEL, "-q")  # the same format
    assert r.exit_code == 0, r.output
    assert read_rgb(tmp_path / "out.jpeg").shape == (64, 64, 3)


# ------------------------------------------------------------------------------ weights and the scale they say
def test_weights_alone_run_at_the_scale_the_file_records(tmp_path: Path) -> None:
    img = write_rgb(tmp_path / "a.png", photo("chelsea", (24, 16)))
    net = build_model(REGISTRY.get("srcnn"), 2).module.state_dict()
    weights = tmp_path / "srcnn.safetensors"
    save_file({k: v.contiguous() for k, v in net.items()}, str(weights), metadata={"model": "srcnn", "scale": "2"})
    r = run("images", img, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines()[0] == f"model srcnn x2, weights: {weights}"
    assert read_rgb(tmp_path / "a_x2.png").shape == (32, 48, 3)


def _srcnn_mat(path: Path) -> Path:
    """A .mat file in the authors' SRCNN 9-1-5 layout (which says nothing about its scale)."""
    rng = np.random.default_rng(0)
    scipy.io.savemat(
        str(path),
        {
            "weights_conv1": rng.normal(0, 1e-3, (81, 64)),
            "biases_conv1": np.zeros((64, 1)),
            "weights_conv2": rng.normal(0, 1e-3, (64, 32)),
            "biases_conv2": np.zeros((32, 1)),
            "weights_conv3": rng.normal(0, 1e-3, (32, 25)),
            "biases_conv3": np.zeros((1, 1)),
        },
    )
    return path


def test_a_mat_file_without_scale_asks_for_it(tmp_path: Path) -> None:
    img = write_rgb(tmp_path / "a.png", photo("chelsea", (24, 16)))
    mat = _srcnn_mat(tmp_path / "x3.mat")
    for model in ([], ["-m", "srcnn"]):
        r = run("images", img, *model, "--weights", mat, "--device", "cpu")
        assert r.exit_code == 2, r.output
        assert error_lines(r.stderr) == [
            f"Error: --weights {mat}: the file does not record the scale it was trained for; "
            "pass it with --scale (2, 3, 4)"
        ]
        assert not list(tmp_path.glob("a_x*"))
    r = run("images", img, "--weights", mat, "--scale", "3", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.output
    assert read_rgb(tmp_path / "a_x3.png").shape == (48, 72, 3)


# --------------------------------------------------------------------------- outputs that would share a name
def test_same_stem_in_one_folder_takes_the_source_extension(tmp_path: Path) -> None:
    write_rgb(tmp_path / "a.jpg", photo("coffee", (32, 24)))
    write_rgb(tmp_path / "a.png", photo("chelsea", (30, 20)))
    r = run("images", tmp_path, "--format", "png", *MODEL)
    assert r.exit_code == 0, r.output
    assert "some outputs would share a name: a_jpg_x2.png and a_png_x2.png carry their source's extension" in r.stderr
    assert "2 upscaled, 0 skipped, 0 failed" in r.stderr
    assert read_rgb(tmp_path / "a_jpg_x2.png").shape == (48, 64, 3)
    assert read_rgb(tmp_path / "a_png_x2.png").shape == (40, 60, 3)
    assert not (tmp_path / "a_x2.png").exists()
    help_text = " ".join(run("images", "-h").output.split())
    assert "a_jpg_x2.png, a_png_x2.png" in help_text and "common parent" in help_text


def test_listed_files_of_one_name_keep_their_folders_in_the_output(tmp_path: Path) -> None:
    for sub in ("x/day", "y"):
        (tmp_path / "in" / sub).mkdir(parents=True)
    write_rgb(tmp_path / "in" / "x" / "day" / "p.png", photo("coffee", (32, 24)))
    write_rgb(tmp_path / "in" / "y" / "p.png", photo("chelsea", (30, 20)))
    write_rgb(tmp_path / "in" / "y" / "q.png", photo("astronaut", (16, 16)))
    listing = "".join(f"{tmp_path / 'in' / rel}\n" for rel in ("x/day/p.png", "y/p.png", "y/q.png"))
    out = tmp_path / "out"
    r = run("images", "--from-file", "-", "-o", out, *MODEL, input=listing.encode())
    assert r.exit_code == 0, r.output
    assert f"2 files named directly keep their folders relative to {tmp_path / 'in'}" in r.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "q_x2.png",  # no clash: flattened as before
        "x/day/p_x2.png",
        "y/p_x2.png",
    ]
    assert read_rgb(out / "x" / "day" / "p_x2.png").shape == (48, 64, 3)


def test_videos_of_one_stem_take_the_source_extension(tmp_path: Path) -> None:
    make_video(tmp_path / "clip.mp4", n=2, size=(32, 24), audio=None)
    make_video(tmp_path / "clip.mkv", n=2, size=(16, 16), audio=None)
    args = ["-o", tmp_path / "out", "--container", "mp4", "--progress", "none", *MODEL]
    r = run("video", tmp_path / "clip.mp4", tmp_path / "clip.mkv", *args)  # both would be out/clip_x2.mp4
    assert r.exit_code == 0, r.output
    assert "clip_mp4_x2.mp4 and clip_mkv_x2.mp4 carry their source's extension" in r.stderr
    assert video_width(tmp_path / "out" / "clip_mp4_x2.mp4") == 64
    assert video_width(tmp_path / "out" / "clip_mkv_x2.mp4") == 32


# --------------------------------------------------------------------------------------- Ctrl-C and summary
def test_ctrl_c_stops_the_batch_with_its_summary_and_130(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    base = photo("astronaut", (256, 256))
    for i in range(40):
        write_rgb(src / f"p{i:02d}.png", np.roll(base, i, axis=1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "upscale", "images", str(src), "-o", str(out), "-m", "bicubic", "-s", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        preexec_fn=default_sigint,  # SIGINT as a shell gives it, even to a suite run in the background
    )
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    text = stderr.decode()
    assert proc.returncode == 130, text
    last = text.strip().splitlines()[-1]
    m = re.fullmatch(r"(\d+) upscaled, 0 skipped, 0 failed, interrupted", last)
    assert m is not None, text
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert 1 <= int(m.group(1)) == len(written) < 40, written
    assert len(list(out.glob(".upscale-job-*/job.json"))) == 1  # kept, for a rerun to resume
    assert "Aborted!" not in text and "Traceback" not in text and stdout == b""
    assert not leftovers(out)


def test_a_folder_run_says_what_it_ignored(tmp_path: Path) -> None:
    write_rgb(tmp_path / "a.png", photo("astronaut", (16, 16)))
    write_rgb(tmp_path / "b.jpg", photo("coffee", (16, 12)))
    (tmp_path / "notes.txt").write_text("hello")
    make_video(tmp_path / "clip.mp4", n=2, size=(16, 16), audio=None)
    (tmp_path / "README").write_text("no extension")
    (tmp_path / ".hidden").write_text("quietly left alone")
    r = run("images", tmp_path, "-o", tmp_path / "out", *MODEL)
    assert r.exit_code == 0, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        "2 upscaled, 0 skipped, 0 failed; ignored 3 files that are not images (.mp4, .txt, no extension)"
    )
    (tmp_path / "README").unlink()
    (tmp_path / "clip.mp4").unlink()
    r = run("images", tmp_path, "-o", tmp_path / "out2", *MODEL)
    assert (
        r.stderr.strip().splitlines()[-1]
        == "2 upscaled, 0 skipped, 0 failed; ignored 1 file that is not an image (.txt)"
    )
