"""Resumable jobs: folders and videos killed part-way (``kill -9``) and rerun give what an uninterrupted run
gives, without redoing finished work; records that cannot be resumed are one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import photo, read_rgb, write_rgb
from tests.media import make_video, pan_frames
from tests.test_atomic_write import _noise, _run_limited
from upscale.cli import main
from upscale.jobs import PREFIX, JobRecord

REPO = Path(__file__).resolve().parents[1]
MODEL = ["-m", "rlfn", "-s", "2", "--precision", "fp32"]  # the bundled x2 weights: slow enough to stop mid-way


def cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.stdout == "", result.stdout
    return result.exit_code, result.stderr


def kill_when(args: list[str | Path], ready: Callable[[], bool], timeout_s: float = 240) -> None:
    """Run ``upscale ARGS`` in a child process and ``kill -9`` it as soon as ``ready()``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "upscale", *map(str, args), "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert proc.poll() is None, f"finished before it could be stopped: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def job_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{PREFIX}*"))


def decoded(path: Path) -> tuple[list[int], list[np.ndarray], list[tuple[int, bytes]]]:
    """Presentation times and pixels of every frame, and the audio packets, of a video file."""
    with av.open(str(path)) as c:
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return [t for t, _ in frames], [a for _, a in frames], audio


def assert_same_video(a: Path, b: Path) -> None:
    ta, fa, aa = decoded(a)
    tb, fb, ab = decoded(b)
    assert ta == tb
    assert len(fa) == len(fb) and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert aa == ab


# ------------------------------------------------------------------------------------------ folders of images
@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "astronaut", "coffee"]):
        write_rgb(folder / f"p{i}.png", np.ascontiguousarray(np.rot90(photo(name, (160, 120)), i % 4)))
    return folder


def test_folder_killed_part_way_resumes_without_redoing_finished_files(photos: Path, tmp_path: Path) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    code, err = cli("images", photos, "-o", ref, *MODEL)
    assert code == 0, err
    assert job_folders(ref) == []  # a finished job leaves no record

    kill_when(["images", photos, "-o", out, *MODEL], lambda: len(list(out.glob("*.png"))) >= 2)
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 2 <= len(finished) < 6 and len(job_folders(out)) == 1

    code, err = cli("images", photos, "-o", out, *MODEL, "-v")
    assert code == 0, err
    assert "resuming the unfinished job" in err
    assert f"{6 - len(finished)} upscaled, {len(finished)} done before, 0 skipped, 0 failed" in err
    assert "job record: " in err and "(resumed, " in err
    for name, mtime in finished.items():  # not redone
        assert (out / name).stat().st_mtime_ns == mtime
    for p in sorted(ref.iterdir()):  # the same bytes as a run that was never stopped
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    assert job_folders(out) == []


def test_inputs_edited_since_the_interruption_are_redone_and_the_others_are_not(photos: Path, tmp_path: Path) -> None:
    out, ref = tmp_path / "out", tmp_path / "ref"
    args = ["-m", "bicubic", "-s", "2"]
    stored = [cv2.IMWRITE_PNG_COMPRESSION, 0]  # stored, not deflated: the file's size depends only on its shape
    assert cv2.imwrite(str(photos / "p1.png"), cv2.cvtColor(photo("rocket", (160, 120)), cv2.COLOR_RGB2BGR), stored)
    (photos / "p5.png").write_text("not an image\n")  # fails, so the job stays unfinished
    code, err = cli("images", photos, "-o", out, *args)
    assert code == 1 and "5 upscaled, 0 skipped, 1 failed" in err
    assert len(job_folders(out)) == 1
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(before) == 5

    # p0: other pixels and another size, its modification time put back as it was (cp -p, rsync -t)
    p0 = photos / "p0.png"
    mtime = p0.stat().st_mtime_ns
    old_size = p0.stat().st_size
    write_rgb(p0, photo("chelsea", (150, 100)))
    os.utime(p0, ns=(mtime, mtime))
    assert p0.stat().st_size != old_size and p0.stat().st_mtime_ns == mtime
    # p1: other pixels in a file of the same size, modified later
    p1 = photos / "p1.png"
    size, mtime = p1.stat().st_size, p1.stat().st_mtime_ns
    assert cv2.imwrite(str(p1), cv2.cvtColor(photo("coffee", (160, 120)), cv2.COLOR_RGB2BGR), stored)
    os.utime(p1, ns=(mtime + 2_000_000_000, mtime + 2_000_000_000))
    assert p1.stat().st_size == size
    write_rgb(photos / "p5.png", photo("rocket", (160, 120)))

    code, err = cli("images", photos, "-o", out, *args)
    assert code == 0, err
    assert "resuming the unfinished job" in err
    assert "3 upscaled, 3 done before, 0 skipped, 0 failed" in err, err  # p0, p1 and p5
    for name in ("p2_x2.png", "p3_x2.png", "p4_x2.png"):  # unchanged inputs: not redone
        assert (out / name).stat().st_mtime_ns == before[name], name
    for name in ("p0_x2.png", "p1_x2.png"):
        assert (out / name).stat().st_mtime_ns != before[name], name
    code, err = cli("images", photos, "-o", ref, *args)
    assert code == 0, err
    for p in sorted(ref.iterdir()):  # every output is what a fresh run makes of the inputs as they are now
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    assert read_rgb(out / "p0_x2.png").shape == (200, 300, 3)
    assert job_folders(out) == []


def test_a_changed_setting_refuses_to_resume_and_restart_starts_over(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (photos / "p5.png").write_text("not an image\n")  # fails, so the job stays unfinished
    code, err = cli("images", photos, "-o", out, "-m", "bicubic", "-s", "2")
    assert code == 1 and "5 upscaled, 0 skipped, 1 failed" in err
    (record,) = job_folders(out)

    code, err = cli("images", photos, "-o", out, "-m", "bicubic", "-s", "2", "--precision", "bf16")
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    assert line == (
        f"Error: {record / 'job.json'}: the job was started with precision fp32, this run has bf16; "
        "rerun with the same settings, or --restart to start over"
    )
    code, err = cli("images", photos, "-o", out, "-m", "bicubic", "-s", "3")
    assert code == 1 and "the job was started with scale 2, this run has 3" in err

    write_rgb(photos / "p5.png", photo("rocket", (160, 120)))
    before = (out / "p0_x2.png").stat().st_mtime_ns
    code, err = cli("images", photos, "-o", out, "-m", "bicubic", "-s", "2", "--precision", "bf16", "--restart")
    assert code == 0, err
    assert "6 upscaled, 0 skipped, 0 failed" in err  # everything redone, without --overwrite
    assert (out / "p0_x2.png").stat().st_mtime_ns != before
    assert job_folders(out) == []


def test_corrupt_or_foreign_records_are_refused_with_restart_offered(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (photos / "p5.png").write_text("not an image\n")
    args = ["images", photos, "-o", out, "-m", "bicubic", "-s", "2"]
    assert cli(*args)[0] == 1
    (record,) = job_folders(out)
    meta = json.loads((record / "job.json").read_text())

    (record / "job.json").write_text(json.dumps({**meta, "upscale": "0.0.1"}))
    code, err = cli(*args)
    assert code == 1
    assert f"{record / 'job.json'}: the job was started by upscale 0.0.1" in err and "--restart" in err

    (record / "job.json").write_text('{"format": 1, "settin')
    code, err = cli(*args)
    assert code == 1
    assert f"Error: {record / 'job.json'}: the job record is unreadable (" in err and "--restart starts over" in err
    assert len([x for x in err.splitlines() if x.startswith("Error:")]) == 1

    # Started over; an unreadable record cannot say which outputs were its own, so they are left alone...
    code, err = cli(*args, "--restart")
    assert code == 1 and "0 upscaled, 0 skipped, 6 failed" in err and "exists (use --overwrite" in err
    # ...unless --overwrite says so.
    code, err = cli(*args, "--restart", "--overwrite")
    assert code == 1 and "5 upscaled, 0 skipped, 1 failed" in err  # p5 is still broken


def test_job_folder_option_and_a_folder_that_is_not_writable(photos: Path, tmp_path: Path) -> None:
    (photos / "p5.png").write_text("not an image\n")
    jobs = tmp_path / "my-job"
    code, err = cli("images", photos, "-o", tmp_path / "out", "-m", "bicubic", "-s", "2", "--job", jobs, "-v")
    assert code == 1 and f"job record: {jobs / 'job.json'} (new)" in err
    assert (jobs / "job.json").exists() and (jobs / "done.jsonl").read_text().count("\n") == 5
    assert job_folders(tmp_path / "out") == []

    readonly = Path("/proc/upscale-test")  # no process may create anything under /proc
    code, err = cli("images", photos, "-o", tmp_path / "out2", "-m", "bicubic", "-s", "2", "--job", readonly)
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    assert line.startswith(f"Error: {readonly}: cannot keep a job record here (")


# ------------------------------------------------------------------------------------------------------ videos
VFR_MS = [round(i * 1000 / 24) + (7 if i % 5 == 2 else 0) for i in range(48)]


def _video_kill_resume(src: Path, tmp_path: Path, suffix: str = ".mp4") -> tuple[Path, Path]:
    """An uninterrupted run, and a run killed after its second segment, then resumed."""
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"out{suffix}"
    args = ["video", src, *MODEL, "--segment", "0.25", "--progress", "none"]
    code, err = cli(*args, "-o", ref)
    assert code == 0, err

    def two_segments() -> bool:
        return len(list(tmp_path.glob(f"{PREFIX}*/video/*/[0-9]*.nut"))) >= 2

    kill_when([*args, "-o", out], two_segments)
    (record,) = job_folders(tmp_path)
    kept = list(record.glob("video/*/[0-9]*.nut"))
    segments = json.loads(next(record.glob("video/*/plan.json")).read_text())["segments"]
    assert 2 <= len(kept) < len(segments), (kept, segments)
    assert not out.exists()

    code, err = cli(*args, "-o", out, "-v", "--progress", "json")
    assert code == 0, err
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    # taken up after the finished segments (their frames counted at once), not from the start
    assert lines[0]["segments"] == len(kept) and lines[0]["frame"] > 0
    assert lines[-1]["segments"] == lines[-1]["segments_total"] == len(segments)
    assert job_folders(tmp_path) == []
    return ref, out


def test_vfr_video_with_audio_killed_and_resumed_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    src = make_video(tmp_path / "vfr.mp4", n=48, size=(96, 64), pts_ms=VFR_MS, audio="aac", options={"g": "5"})
    ref, out = _video_kill_resume(src, tmp_path)
    assert_same_video(ref, out)
    times, _, audio = decoded(out)
    source_times, _, source_audio = decoded(src)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        scale = a.streams.video[0].time_base / b.streams.video[0].time_base
    assert times == [round(t * scale) for t in source_times]  # every frame once, at its own time: VFR kept
    assert audio == source_audio  # copied, in sync


def test_open_gop_video_killed_and_resumed_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    frames = pan_frames(40, (96, 64))
    options = {"crf": "10", "g": "8", "bf": "3", "x264-params": "open-gop=1:scenecut=0"}
    src = make_video(tmp_path / "gop.mkv", frames, rate=25, audio=None, options=options)
    with av.open(str(src)) as c:  # check the clip is open-GOP: frames decoded after a keyframe shown before it
        packets = [(p.pts, p.is_keyframe) for p in c.demux(video=0) if p.size]
    later_keys = [i for i, (_, key) in enumerate(packets) if key and i > 0]
    assert any(packets[i + 1][0] < packets[i][0] for i in later_keys if i + 1 < len(packets))

    ref, out = _video_kill_resume(src, tmp_path, ".mkv")
    assert_same_video(ref, out)
    _, pixels, _ = decoded(out)
    assert len(pixels) == 40  # no frame dropped or doubled at a join
    # and each output frame is the upscaled source frame, leading frames of each keyframe included
    _, source, _ = decoded(src)
    for a, b in zip(source, pixels, strict=True):
        small = b.reshape(64, 2, 96, 2, 3).mean(axis=(1, 3))
        assert np.abs(small - a.astype(float)).mean() < 6


def test_a_segment_that_cannot_be_encoded_stops_the_job_and_keeps_the_finished_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calm = pan_frames(12, (64, 48))
    noisy = [_noise(48, 64, i) for i in range(12)]
    src = make_video(tmp_path / "a.mp4", calm + noisy, rate=24, audio=None, options={"crf": "10", "g": "6"})
    out = tmp_path / "a_x2.mp4"
    args = ["video", src, "-m", "bicubic", "-s", "2", "--segment", "0.25", "--progress", "none"]
    code, _, err = _run_limited(40_000, *args)
    assert code == 1, err
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    # the noise starts at 0.50 s, where x264 put a keyframe; the segment ends at the next one
    assert re.match(rf"Error: {re.escape(str(src))}: segment 3 of \d \(0\.50 s to \d\.\d\d s\): ", line), line
    assert "File too large" in line and "the 2 finished segments are kept" in line and "Traceback" not in err
    assert not out.exists()
    (record,) = job_folders(tmp_path)
    kept = {p: p.stat().st_mtime_ns for p in record.glob("video/*/[0-9]*.nut")}
    assert len(kept) == 2

    # the kept segments as the resumed run leaves them, just before it removes its work folder
    at_the_end: dict[Path, int | None] = {}
    done = JobRecord.mark_done

    def mark_done(self: JobRecord, src: Path, dst: Path) -> None:
        at_the_end.update({p: p.stat().st_mtime_ns if p.exists() else None for p in kept})
        done(self, src, dst)

    monkeypatch.setattr(JobRecord, "mark_done", mark_done)
    code, err = cli(*args[:-1], "json")
    assert code == 0, err
    assert at_the_end == kept  # used as they were, not made again
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert (lines[0]["frame"], lines[0]["segments"]) == (12, 2)  # taken up after the finished ones
    assert len(decoded(out)[0]) == 24
