"""A write that fails part-way (a full disk, simulated with a file size limit) leaves no file behind:
neither the output's final name nor its temporary name, and the rest of the batch still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np

from tests.conftest import photo, write_rgb
from tests.media import make_video

REPO = Path(__file__).resolve().parents[1]
# The child ignores SIGXFSZ, so a write past the limit fails with EFBIG ("File too large") as on a full disk.
_LIMITED = (
    "import resource, runpy, signal, sys\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "sys.argv[0] = 'upscale'\n"
    "runpy.run_module('upscale', run_name='__main__')\n"
)


def _run_limited(limit_bytes: int, *args: str | Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-c", _LIMITED, str(limit_bytes), *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def _noise(h: int, w: int, seed: int) -> np.ndarray:
    """Incompressible pixels: their upscaled image cannot fit under the limit."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


def test_image_write_that_fails_part_way_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_rgb(src / "a.png", photo("astronaut", (32, 32)))
    write_rgb(src / "b_noise.png", _noise(96, 96, 1))  # x2: 192×192 noise, > 100 kB as PNG
    write_rgb(src / "c.jpg", photo("coffee", (40, 32)))
    out = tmp_path / "out"
    code, stdout, err = _run_limited(40_000, "images", src, "-o", out, "-m", "bicubic", "-s", "2")
    assert code == 1 and stdout == "", err
    errors = _error_lines(err)
    assert len(errors) == 1 and errors[0].startswith(f"Error: {src / 'b_noise.png'}: "), err
    assert "File too large" in errors[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a_x2.png", "c_x2.jpg"]
    assert not [p for p in out.rglob("*") if ".part" in p.name]  # nothing of b, not even a .part
    for name in ("a_x2.png", "c_x2.jpg"):
        assert av.open(str(out / name)).streams.video[0].codec_context.width > 0


def test_video_write_that_fails_part_way_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "a.mp4", n=6, size=(64, 48), audio=None)
    make_video(src / "b_noise.mkv", [_noise(64, 96, i) for i in range(12)], audio=None)  # ~100 kB upscaled
    make_video(src / "c.mp4", n=6, size=(64, 48), audio=None)
    out = tmp_path / "out"
    code, stdout, err = _run_limited(
        40_000, "video", src, "-o", out, "-m", "bicubic", "-s", "2", "--progress", "none", "--container", "mkv"
    )
    assert code == 1 and stdout == "", err
    errors = _error_lines(err)
    assert len(errors) == 1 and errors[0].startswith(f"Error: {src / 'b_noise.mkv'}: "), err
    assert "not written (temporary file removed)" in errors[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a_x2.mkv", "c_x2.mkv"]
    assert not [p for p in out.rglob("*") if ".part" in p.name]
    for name in ("a_x2.mkv", "c_x2.mkv"):
        with av.open(str(out / name)) as c:
            assert len(list(c.decode(video=0))) == 6
