"""Ctrl-C in ``upscale video``: a real SIGINT to a real process, at different moments of a folder run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from tests.media import make_video

REPO = Path(__file__).resolve().parents[1]
CLIPS = ("a", "b", "c", "d")
FRAMES = 60


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for name in CLIPS:
        make_video(folder / f"{name}.mp4", n=FRAMES, size=(96, 64))
    return folder


def default_sigint() -> None:
    """``preexec_fn`` of a child the test sends SIGINT: Ctrl-C as a shell gives it, whatever this process
    was given. A suite started in the background (``pytest ... &``) ignores SIGINT, and so would its
    children, which would then run to the end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(clips: Path, out: Path, *, after_done: int, delay_s: float, device: str = "cpu") -> tuple[int, str]:
    """Start ``upscale video`` on the folder; once ``after_done`` videos are finished (0: once the model
    line is out) wait ``delay_s`` and send SIGINT. Returns the exit code and all of stderr."""
    cmd = [sys.executable, "-m", "upscale", "video", str(clips), "-o", str(out), "-m", "bicubic", "-s", "2"]
    cmd += ["--device", device]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*cmd, "--progress", "none"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    seen = []
    try:
        while True:
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
            done = sum(" -> " in s for s in seen)
            if (after_done == 0 and line.startswith("model ")) or (after_done and done == after_done):
                break
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        seen.append(proc.stderr.read())
        return proc.wait(timeout=60), "".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("after_done", "delay_s", "device"),
    [(0, 0.0, "cpu"), (0, 0.15, "cpu"), (1, 0.0, "cpu"), (1, 0.08, "cpu"), (2, 0.03, "cpu"), (1, 0.08, "cpu,cpu")],
    ids=["at-start", "in-first-video", "between-videos", "in-second-video", "in-third-video", "two-devices"],
)
def test_sigint_stops_a_folder_run_cleanly(
    clips: Path, tmp_path: Path, after_done: int, delay_s: float, device: str
) -> None:
    out = tmp_path / "out"
    code, err = _interrupt(clips, out, after_done=after_done, delay_s=delay_s, device=device)
    assert code == 130, err
    assert "terminate called" not in err and "Traceback" not in err and "Aborted" not in err, err
    assert re.fullmatch(r"\d videos: \d upscaled, 0 skipped, 0 failed, interrupted", err.splitlines()[-1]), err
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []
    finished = [f"{name}_x2.mp4" for name in CLIPS if f"{out / name}_x2.mp4: {FRAMES} frames" in err]
    assert written == finished, (written, err)  # no partial output
    assert not [p for p in tmp_path.rglob("*") if ".part" in p.name], err  # no temporary file, segments included
    assert len(finished) >= after_done
    for name in finished:  # what was reported done is whole
        with av.open(str(out / name)) as c:
            frames = list(c.decode(video=0))
        assert len(frames) == FRAMES and (frames[0].width, frames[0].height) == (192, 128)
