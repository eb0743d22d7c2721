"""``upscale pipe``: YUV4MPEG2 and raw frames from stdin to stdout, nothing else on stdout."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.media import make_video, pan_frames, probe
from upscale.cli import main
from upscale.io.y4m import Y4MHeader, Y4MReader, Y4MWriter
from upscale.models import REGISTRY, build_model
from upscale.resize import imresize_np

REPO = Path(__file__).resolve().parents[1]


def y4m_stream(
    chroma: str = "420jpeg",
    n: int = 4,
    size: tuple[int, int] = (48, 32),
    extensions: tuple[str, ...] = ("COLORRANGE=LIMITED",),
) -> tuple[bytes, list[list[np.ndarray]]]:
    """Frames panning across a real photo as a YUV4MPEG2 stream (BT.601, limited range), and their planes."""
    header = Y4MHeader(size[0], size[1], Fraction(24), chroma=chroma, extensions=extensions)
    fmt = header.pix_fmt
    frames = []
    for rgb in pan_frames(n, size):
        frame = av.VideoFrame.from_ndarray(rgb, "rgb24").reformat(
            format=fmt, dst_colorspace="itu601", dst_color_range="MPEG"
        )
        frames.append([_plane(frame, i, header.dtype) for i in range(len(frame.planes))])
    buf = io.BytesIO()
    writer = Y4MWriter(buf, header)
    for planes in frames:
        writer.write(planes)
    writer.flush()
    return buf.getvalue(), frames


def _plane(frame: av.VideoFrame, index: int, dtype: np.dtype) -> np.ndarray:
    plane = frame.planes[index]
    per_line = plane.line_size // dtype.itemsize
    return np.frombuffer(plane, dtype, plane.height * per_line).reshape(plane.height, per_line)[:, : plane.width].copy()


def run_pipe(data: bytes, *args: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(main, ["pipe", *args], input=data, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def read_all(data: bytes) -> tuple[Y4MHeader, list[list[np.ndarray]]]:
    """Every frame of a stream, and a check that nothing follows the last frame."""
    buf = io.BytesIO(data)
    reader = Y4MReader(buf)
    frames = list(reader)
    assert buf.read() == b""
    return reader.header, frames


def test_y4m_through_a_real_shell_pipe() -> None:
    data, frames = y4m_stream("420jpeg", n=5)
    proc = subprocess.run(
        [sys.executable, "-m", "upscale", "pipe", "-m", "bicubic", "-s", "2"],
        input=data,
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    header, out = read_all(proc.stdout)  # stdout holds frames and nothing else
    assert (header.width, header.height, header.rate, header.chroma) == (96, 64, Fraction(24), "420jpeg")
    assert header.full_range is False
    assert len(out) == 5
    for got, want in zip(out, frames, strict=True):
        expected_y = imresize_np(want[0].astype(np.float64) / 255, 2) * 255
        assert np.abs(got[0] - expected_y).mean() < 1.5
    assert b"5 frames" in proc.stderr


@pytest.mark.parametrize("chroma", ["444", "422", "420p10", "mono"])
def test_samplings_and_depths_are_kept(chroma: str) -> None:
    data, frames = y4m_stream(chroma, n=2)
    code, out, err = run_pipe(data, "-m", "bicubic", "-s", "2")
    assert code == 0, err
    header, got = read_all(out)
    assert (header.width, header.height, header.chroma) == (96, 64, chroma)
    assert len(got) == 2
    scale = float(1 << (header.bit_depth - 8))
    expected_y = imresize_np(frames[1][0].astype(np.float64) / (255 * scale), 2) * 255 * scale
    assert np.abs(got[1][0] - expected_y).mean() < 1.5 * scale


def test_y_model_runs_on_the_luma_plane(tmp_path: Path) -> None:
    weights = tmp_path / "srcnn.safetensors"
    loaded = build_model(REGISTRY.get("srcnn"), 2)
    save_file({k: v.contiguous() for k, v in loaded.module.state_dict().items()}, str(weights))
    data, frames = y4m_stream("420jpeg", n=2)
    code, out, err = run_pipe(data, "-m", "srcnn", "--weights", str(weights), "-s", "2")
    assert code == 0, err
    _, got = read_all(out)
    for g, want in zip(got, frames, strict=True):
        for i in (1, 2):  # chroma is resized as a plane, not rebuilt from RGB
            np.testing.assert_array_equal(g[i], cv2.resize(want[i], (48, 32), interpolation=cv2.INTER_CUBIC))


@pytest.mark.parametrize(("pix_fmt", "channels"), [("rgb24", 3), ("gray", 1)])
def test_raw_frames(pix_fmt: str, channels: int) -> None:
    rgb = pan_frames(3, (40, 24))
    frames = [f if channels == 3 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]
    code, out, err = run_pipe(
        b"".join(f.tobytes() for f in frames), "-m", "bicubic", "-s", "2", "--raw", "40x24", "--pix-fmt", pix_fmt
    )
    assert code == 0, err
    assert len(out) == 3 * 80 * 48 * channels
    got = np.frombuffer(out, np.uint8).reshape(3, 48, 80, channels)
    expected = imresize_np(frames[2], 2)
    np.testing.assert_allclose(got[2].reshape(expected.shape), expected, atol=1)


def test_cut_off_stream_writes_complete_frames_then_fails() -> None:
    data, _ = y4m_stream("420jpeg", n=3)
    code, out, err = run_pipe(data[:-100], "-m", "bicubic", "-s", "2")
    assert code == 1
    assert "stdin: frame 2 is truncated" in err
    _, got = read_all(out)
    assert len(got) == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty input"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(100), "not a YUV4MPEG2 stream"),
        (b"YUV4MPEG2 W4 H4 C444alpha\n", "alpha"),
    ],
    ids=["empty", "mp4", "alpha"],
)
def test_bad_streams_give_one_line(data: bytes, message: str) -> None:
    code, out, err = run_pipe(data, "-q", "-m", "bicubic", "-s", "2")
    assert code == 1 and out == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: stdin: ") and message in lines[0]


def test_raw_size_is_checked() -> None:
    result = CliRunner().invoke(main, ["pipe", "-m", "bicubic", "--raw", "40by24"], input=b"")
    assert result.exit_code == 2 and "not a frame size" in result.stderr


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg program is not installed")
def test_ffmpeg_pipe_both_ways(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=6, audio=None)
    dst = tmp_path / "out.mkv"
    cmd = (
        f"ffmpeg -v error -i {src} -f yuv4mpegpipe - | {sys.executable} -m upscale pipe -q -m bicubic -s 2 "
        f"| ffmpeg -v error -i - -c:v ffv1 {dst}"
    )
    proc = subprocess.run(cmd, shell=True, cwd=REPO, capture_output=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    b = probe(dst)
    assert (b.width, b.height, len(b.times)) == (128, 96, 6)


@pytest.mark.parametrize("raw", [False, True], ids=["y4m", "raw"])
def test_reader_gone_while_the_producer_idles_exits_at_once(raw: bool) -> None:
    """The consumer closes its end (``| head -c 100``) while the producer keeps stdin open and sends
    nothing more: the command stops at once with its one-line error instead of waiting for input."""
    data, _ = y4m_stream(n=6)
    args = ["pipe", "-m", "bicubic", "-s", "2", "-q"]
    if raw:
        frame = np.zeros((32, 48, 3), np.uint8).tobytes()
        data, args = frame * 6, [*args, "--raw", "48x32", "--pix-fmt", "rgb24"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "upscale", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(data)
    proc.stdin.flush()  # and the producer stays silent, stdin open
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()
    closed = time.monotonic()
    try:
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stdin.close()
    assert code == 1
    assert time.monotonic() - closed < 5  # not held up by the read that never returns
    assert "closed the pipe" in proc.stderr.read().decode()
