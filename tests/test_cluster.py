"""``--cluster``: the same commands on a real local Ray cluster, started in this test process, give
byte-identical images and frame-identical video; a job whose driver is killed resumes; paths the workers
cannot see and clusters that cannot be reached are one-line errors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import photo, write_rgb
from tests.media import make_video
from tests.test_jobs import MODEL, VFR_MS, assert_same_video, cli, job_folders, kill_when
from upscale.jobs import PREFIX

ray = pytest.importorskip("ray", reason="the cluster extra (pip install 'upscale[cluster]') is not installed")
pytest.importorskip("ray.data")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def local_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "coffee"]):
        where = folder / "sub" if i == 4 else folder
        write_rgb(where / f"p{i}.png", np.ascontiguousarray(np.rot90(photo(name, (96, 72)), i % 4)))
    return folder


def test_a_folder_on_the_cluster_gives_the_same_bytes_as_one_process(photos: Path, tmp_path: Path) -> None:
    code, err = cli("images", photos, "-r", "-o", tmp_path / "ref", *MODEL)
    assert code == 0, err
    code, err = cli("images", photos, "-r", "-o", tmp_path / "out", *MODEL, "--cluster", "local:2", "-v")
    assert code == 0, err
    assert "5 upscaled, 0 skipped, 0 failed" in err and "cluster: 2 workers" in err
    assert len(re.findall(r"INFO: worker \S+: \d done in [\d.]+ s", err)) == 2  # throughput of each
    ref = sorted(p.relative_to(tmp_path / "ref") for p in (tmp_path / "ref").rglob("*.png"))
    assert len(ref) == 5
    for rel in ref:
        assert (tmp_path / "out" / rel).read_bytes() == (tmp_path / "ref" / rel).read_bytes(), rel
    assert job_folders(tmp_path / "out") == []


def test_a_video_on_the_cluster_gives_the_same_frames_as_one_process(tmp_path: Path) -> None:
    src = make_video(tmp_path / "vfr.mp4", n=48, size=(96, 64), pts_ms=VFR_MS, audio="aac", options={"g": "5"})
    args = ["video", src, *MODEL, "--segment", "0.25", "--progress", "none"]
    code, err = cli(*args, "-o", tmp_path / "ref.mp4")
    assert code == 0, err
    code, err = cli(*args[:-1], "json", "-o", tmp_path / "out.mp4", "--cluster", "local:2", "-v")
    assert code == 0, err
    assert_same_video(tmp_path / "ref.mp4", tmp_path / "out.mp4")
    # the segments were made by the cluster's workers, each reporting its own process, none of them this one
    total = [json.loads(x) for x in err.splitlines() if x.startswith("{")][-1]["segments_total"]
    done = re.findall(r"INFO: worker [^:\s]+:(\d+): (\d+) done in ", err)
    assert "cluster: 2 workers" in err and done, err
    assert all(int(pid) != os.getpid() for pid, _ in done), (os.getpid(), done)
    assert sum(int(n) for _, n in done) == total > 2


def test_a_cluster_job_whose_driver_is_killed_resumes(tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", n=48, size=(96, 64), audio="aac", options={"g": "4"})
    args = ["video", src, *MODEL, "--segment", "0.15", "--progress", "none"]
    code, err = cli(*args, "-o", tmp_path / "ref.mp4")
    assert code == 0, err

    def some_segments() -> bool:
        return len(list(tmp_path.glob(f"{PREFIX}*/video/*/[0-9]*.nut"))) >= 2

    # the driver is a separate process that joins this cluster, and is killed part-way
    kill_when([*args, "-o", tmp_path / "out.mp4", "--cluster", "auto"], some_segments)
    (record,) = job_folders(tmp_path)
    kept = list(record.glob("video/*/[0-9]*.nut"))
    assert kept and not (tmp_path / "out.mp4").exists()

    code, err = cli(*args, "-o", tmp_path / "out.mp4", "--cluster", "local:2")
    assert code == 0, err
    assert "resuming the unfinished job" in err
    assert_same_video(tmp_path / "ref.mp4", tmp_path / "out.mp4")


def test_a_path_the_workers_cannot_see_stops_the_job_with_one_line(photos: Path, tmp_path: Path) -> None:
    # /proc/self/fd/N names the folder only in this process: a path the driver sees and the workers do not
    fd = os.open(photos, os.O_RDONLY)
    private = 987
    os.dup2(fd, private)
    os.close(fd)
    try:
        inputs = Path(f"/proc/self/fd/{private}")
        code, err = cli("images", inputs, "-o", tmp_path / "out", *MODEL, "--cluster", "local:2")
    finally:
        os.close(private)
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("Error:")]
    assert line.startswith(f"Error: {inputs}: not visible from worker ") and "every node mounts" in line, line
    assert not list((tmp_path / "out").glob("*.png"))


def test_an_unreachable_cluster_is_one_line_in_seconds(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "upscale", "images", str(tmp_path), "-m", "bicubic", "-s", "2"]
    done = subprocess.run(
        [*cmd, "--cluster", f"ray://127.0.0.1:{port}"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: --cluster ray://127.0.0.1:{port}: cannot join the Ray cluster after ")
    ), done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_lost_mid_job_costs_only_its_segment(tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", n=72, size=(96, 64), audio="aac", options={"g": "4"})
    args = ["video", src, *MODEL, "--segment", "0.15", "--progress", "none"]
    code, err = cli(*args, "-o", tmp_path / "ref.mp4")
    assert code == 0, err
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "upscale", *map(str, args), "-o", str(tmp_path / "out.mp4"), "--cluster", "auto"]
    driver = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        while not list(tmp_path.glob(f"{PREFIX}*/video/*/[0-9]*.nut")):  # the workers are at it
            assert driver.poll() is None, driver.stderr.read()
            time.sleep(0.01)
        worker = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()[0]
        os.kill(int(worker), 9)
        _, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert "72 frames" in err
    assert_same_video(tmp_path / "ref.mp4", tmp_path / "out.mp4")
