"""Hostile and huge inputs: decompression bombs, scans too large for memory and chatty decoders cost one
line each and never the rest of the batch. Run through the real CLI in child processes, whose peak
memory is measured."""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import photo, write_rgb
from tests.media import make_video

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
GIB = 2**30
_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print('peak-rss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
"""Runs a command and reports its peak RSS on stderr; a fresh process, so no earlier child counts."""


def upscale(*args: str | Path, address_space: int | None = None) -> tuple[int, list[str], int]:
    """``upscale ARGS`` in a child process: exit code, stderr lines (progress bars left out), peak RSS in bytes.

    ``address_space`` limits the child as ``ulimit -v`` does."""

    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    cmd = [sys.executable, "-c", _PEAK, sys.executable, "-m", "upscale", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, env=ENV, timeout=300, preexec_fn=limit)
    lines = [line.strip() for line in proc.stderr.decode().replace("\r", "\n").splitlines()]
    peak = next(int(line.split()[1]) * 1024 for line in lines if line.startswith("peak-rss-kib"))
    shown = [line for line in lines if line and not line.startswith("peak-rss-kib") and "img/s" not in line]
    return proc.returncode, shown, peak


def gif_bomb(path: Path) -> Path:
    """A 100x100 two-frame GIF of 28 KB whose second frame declares 65535x65535 pixels: Pillow grows the
    canvas to that (17 GB as RGBA) when the frame is decoded."""
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (100, 100, 3), np.uint8)).convert("P") for _ in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    data = bytearray(buf.getvalue())
    descriptor = struct.pack("<HHHH", 0, 0, 100, 100)
    second = data.index(b"\x2c" + descriptor, data.index(b"\x2c" + descriptor) + 1)
    data[second + 5 : second + 9] = struct.pack("<HH", 0xFFFF, 0xFFFF)
    path.write_bytes(bytes(data))
    return path


def test_a_decompression_bomb_costs_one_line_and_the_batch_goes_on(tmp_path: Path) -> None:
    bomb = gif_bomb(tmp_path / "bomb.gif")
    assert Image.open(bomb).size == (100, 100)  # the header alone looks harmless
    good = [write_rgb(tmp_path / f"{name}.png", photo(name, (40, 32))) for name in ("astronaut", "coffee")]
    out = tmp_path / "out"
    code, lines, peak = upscale("images", good[0], bomb, good[1], "-o", out, "-m", "bicubic", "-s", "2")
    assert code == 1
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, lines
    assert errors[0].startswith(f"Error: {bomb}: frame 2: declares 65535x65535 pixels")
    assert "--max-pixels" in errors[0]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["astronaut_x2.png", "coffee_x2.png"]
    assert peak < 2 * GIB, f"peak RSS {peak / GIB:.2f} GiB"


def test_max_pixels_is_the_users_to_set(tmp_path: Path) -> None:
    src = write_rgb(tmp_path / "a.png", photo("astronaut", (40, 32)))
    out = tmp_path / "out.png"
    code, lines, _ = upscale("images", src, "-o", out, "-m", "bicubic", "-s", "2", "--max-pixels", 1000)
    assert code == 1
    assert lines[-2:] == [
        f"Error: {src}: declares 40x32 pixels (0 MP), more than --max-pixels 1,000; raise --max-pixels if the file is "
        "genuine",
        "0 upscaled, 0 skipped, 1 failed",
    ]
    assert not out.exists()


def test_a_scan_too_large_for_memory_is_refused_before_any_work(tmp_path: Path) -> None:
    """A 6000x6000 scan at x4 needs about 20 GiB as the engine works; under a 6 GiB address-space limit it
    is refused with the estimate and the way out, and the next file is upscaled."""
    scan = np.zeros((6000, 6000, 3), np.uint8)
    scan[::7, :, 1] = 200
    assert cv2.imwrite(str(tmp_path / "scan.png"), scan, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    small = write_rgb(tmp_path / "small.png", photo("coffee", (40, 32)))
    out = tmp_path / "out"
    code, lines, peak = upscale(
        "images", tmp_path / "scan.png", small, "-o", out, "-m", "bicubic", "-s", "4", address_space=6 * GIB
    )
    assert code == 1
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, lines
    assert errors[0].startswith(f"Error: {tmp_path / 'scan.png'}: 6000x6000 at x4 needs about ")
    assert "GiB available" in errors[0] and "--max-pixels" in errors[0]
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["small_x4.png"]
    assert peak < 2 * GIB, f"peak RSS {peak / GIB:.2f} GiB"  # refused from the header: nothing was decoded


def _broken_tiffs(folder: Path) -> list[Path]:
    """TIFFs that libtiff complains about: a strip byte count past the end of the file (``TIFFFillStrip``),
    and an ASCII tag without its terminating NUL (``TIFFFetchNormalTag``)."""
    folder.mkdir()
    made = []
    for name, patch in (("strip", 279), ("ascii", 305)):
        path = folder / f"{name}.tif"
        Image.fromarray(photo("astronaut", (60, 40))).save(
            path, compression="tiff_deflate", tiffinfo={305: "upscale test software"}
        )
        data = bytearray(path.read_bytes())
        ifd = struct.unpack("<I", data[4:8])[0]
        for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
            entry = ifd + 2 + 12 * i
            tag, _kind, count = struct.unpack("<HHI", data[entry : entry + 8])
            if tag == patch == 279:
                data[entry + 8 : entry + 12] = struct.pack("<I", 10_000_000)
            elif tag == patch == 305:
                at = data.index(b"upscale test software\x00")
                data[at + count - 1] = ord("!")
        path.write_bytes(bytes(data))
        made.append(path)
    return made


def test_quiet_prints_only_errors_over_a_folder_of_broken_tiffs(tmp_path: Path) -> None:
    folder = tmp_path / "tiffs"
    strip, _ = _broken_tiffs(folder)
    code, lines, _ = upscale("images", folder, "-o", tmp_path / "out", "-m", "bicubic", "-s", "2", "-q")
    assert code == 1
    assert lines and all(line.startswith("Error:") for line in lines), lines
    assert [line.split(":")[1].strip() for line in lines] == [str(strip)]
    code, lines, _ = upscale("images", folder, "-o", tmp_path / "out2", "-m", "bicubic", "-s", "2", "-v")
    said = [line for line in lines if "decoder warnings" in line]
    assert any(line.startswith(f"INFO: {strip}: decoder warnings: TIFFFillStrip") for line in said), lines
    assert not any(line.startswith("TIFF") for line in lines), lines  # only inside the file's own line


def test_a_video_over_max_pixels_is_refused_before_any_frame(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", n=4, size=(64, 48), audio=None)
    out = tmp_path / "clip_x2.mp4"
    code, lines, _ = upscale("video", clip, "-o", out, "-m", "bicubic", "-s", "2", "--max-pixels", 3000)
    assert code == 1
    assert any(
        line.startswith(f"Error: {clip}: declares 64x48 pixels") and "--max-pixels 3,000" in line for line in lines
    ), lines
    assert not out.exists()


def test_the_memory_estimate_names_a_tile_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Untiled, a 2000x2000 frame's activations exceed the memory; the tile the error proposes fits it."""
    from upscale import engine
    from upscale.engine import EngineOptions, Upscaler
    from upscale.io.limits import TooLargeError
    from upscale.models import REGISTRY, build_model

    up = Upscaler(build_model(REGISTRY.get("rlfn"), 4), EngineOptions(device="cpu", precision="fp32", tile=0))
    frame, work = up.memory_needed(2000, 2000)
    assert frame > 2000 * 2000 * 16 * 12  # at least the float output at x4
    budget = frame + work // 3
    monkeypatch.setattr(engine, "available_memory", lambda: budget)
    with pytest.raises(TooLargeError, match=r"^scan\.png: 2000x2000 at x4 needs about .* use --tile (\d+) ") as info:
        up.check_memory("scan.png", 2000, 2000)
    tile = int(info.value.args[0].split("--tile ")[1].split()[0])
    tiled = Upscaler(up.model, EngineOptions(device="cpu", precision="fp32", tile=tile))
    assert sum(tiled.memory_needed(2000, 2000)) <= budget
    up.check_memory("small.png", 200, 200)  # fits: no error


def test_a_pipe_whose_header_declares_a_bomb_is_refused_before_reading_a_frame(tmp_path: Path) -> None:
    header = b"YUV4MPEG2 W65535 H65535 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(1000)
    cmd = [sys.executable, "-m", "upscale", "pipe", "-m", "bicubic", "-s", "2"]
    proc = subprocess.run(cmd, input=header, capture_output=True, env=ENV, timeout=300)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.decode().strip().splitlines()[-1:] == [
        "Error: stdin: declares 65535x65535 pixels (4,295 MP), more than --max-pixels 300,000,000; raise --max-pixels "
        "if the file is genuine"
    ]
