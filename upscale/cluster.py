"""``upscale images`` and ``upscale video`` on a Ray cluster (``pip install 'upscale[cluster]'``).

The driver (where the command runs) plans the job, keeps its record and assembles videos; the work is
spread with Ray Data: a folder's files, or a video's segments, become rows mapped by a pool of actors,
each holding one engine (one actor per GPU, or per group of CPU cores on CPU-only nodes). The model's
weights travel through Ray's object store, so workers need neither the network nor the weights cache.
Workers read inputs and write outputs and segments at the driver's paths: every node must see them
(a shared filesystem); a worker that cannot is reported in one line and stops the job.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UpscaleError, one_line

if TYPE_CHECKING:
    from .engine import Upscaler
    from .io.segments import Segment, SegmentPlan, SegmentResult
    from .io.streaming import VideoOptions

log = logging.getLogger("upscale.cluster")

CPUS_PER_WORKER = 4
"""On nodes without GPUs, one worker per this many cores (fewer, larger engines use cores best)."""
CONNECT_TIMEOUT_S = 5.0


class ClusterError(UpscaleError):
    """The cluster cannot be reached, or its workers cannot see the job's files."""


@dataclass(frozen=True)
class Workers:
    """How the work is spread: ``count`` actors with these resources each."""

    count: int
    cpus: float
    gpus: float


def connect(address: str) -> Workers:
    """Join (or for ``local[:N]`` start) the Ray cluster and size the worker pool.

    A Ray session already open in this process (a test, a notebook) is used as it is.
    """
    try:
        import ray
    except ImportError:
        raise ClusterError("--cluster needs Ray: pip install 'upscale[cluster]'") from None
    level = _quiet_ray()
    if not ray.is_initialized():
        t0 = time.monotonic()
        try:
            if address.startswith("local"):
                ray.init(include_dashboard=False, log_to_driver=False, logging_level=level)
            else:
                if address != "auto":
                    _reachable(address)
                ray.init(address=address, log_to_driver=False, logging_level=level)
        except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"--cluster {address}: cannot join the Ray cluster after {time.monotonic() - t0:.1f} s "
                f"({one_line(exc)})"
            ) from None
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 1.0), int(resources.get("GPU", 0))
    wanted = re.fullmatch(r"local:(\d+)", address)
    if gpus:
        return Workers(int(wanted.group(1)) if wanted else gpus, 1.0, 1.0)
    count = int(wanted.group(1)) if wanted else max(1, int(cpus) // CPUS_PER_WORKER)
    return Workers(count, max(1.0, float(int(cpus) // count)), 0.0)


def _quiet_ray() -> int:
    """Ray Data's own progress and plan go to its log files (the command shows its own progress), and
    Ray's warnings to stderr only with ``-v``; returns that logging level."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    level = logging.WARNING if log.isEnabledFor(logging.INFO) else logging.ERROR
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(level)
    return level


def _reachable(address: str) -> None:
    """Fail within seconds for an address nothing answers at (Ray's client would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(exc.strerror or str(exc)) from None


# ---------------------------------------------------------------------- workers
class _Worker:
    """One engine on a worker, built from the driver's model (from the object store) and options."""

    def __init__(self, model: Any, options: Any, threads: float, visible: list[str]) -> None:
        import ray
        import torch

        from .engine import Upscaler

        torch.set_num_threads(max(1, int(threads)))
        model = ray.get(model[0])  # a reference in a list: fetched here, not held as a constructor argument
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        missing = [p for p in visible if not os.path.exists(p)]
        self.blind = (
            f"{missing[0]}: not visible from worker {self.where}; inputs, outputs and the job folder must be "
            "on a filesystem every node mounts, at the same path"
            if missing
            else None
        )
        self.up = Upscaler(model, options)

    def _result(self, key: Any, work: Callable[[], Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        if self.blind is not None:
            return {"key": key, "error": self.blind, "fatal": True, "worker": self.where, "seconds": 0.0, "value": 0}
        try:
            value, error = work(), ""
        except Exception as exc:  # noqa: BLE001 - reported on the driver, with the file it concerns
            value, error = 0, one_line(exc)
        seconds = time.perf_counter() - t0
        return {"key": key, "error": error, "fatal": False, "worker": self.where, "seconds": seconds, "value": value}

    def _batch(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            for name, value in row.items():
                columns[name].append(value)
        return dict(columns)


class _ImageWorker(_Worker):
    def __init__(self, *, quality: int | None, strip_metadata: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quality, self.strip_metadata = quality, strip_metadata

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from .io.image import upscale_picture_file

        rows = [
            self._result(
                i,
                lambda s=src, d=dst: upscale_picture_file(
                    self.up, s, d, quality=self.quality, strip_metadata=self.strip_metadata
                ),
            )
            for i, src, dst in zip(batch["key"], batch["src"], batch["dst"], strict=True)
        ]
        return self._batch(rows)


class _SegmentWorker(_Worker):
    def __init__(self, *, src: str, opts: Any, folder: str, plan: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.src, self.opts, self.folder, self.plan = Path(src), opts, Path(folder), plan

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from .io.streaming import encode_segment

        rows = []
        for index in batch["key"]:
            seg = self.plan.segments[int(index)]
            rows.append(self._result(index, lambda s=seg: encode_segment(self.src, s, self.up, self.opts, self.folder)))
        out = self._batch(rows)
        out["value"] = [getattr(v, "frames", 0) for v in out["value"]]
        return out


def _map(
    address: str,
    up: Upscaler,
    worker: type[_Worker],
    keys: list[int],
    visible: list[str],
    rows: dict[str, list[Any]] | None = None,
    **kwargs: Any,
) -> Iterator[dict[str, Any]]:
    """Rows of results, as workers finish them; a worker that cannot see the job's paths stops it."""
    if not keys:
        return
    import ray
    import ray.data

    pool = connect(address)
    count = min(pool.count, len(keys))
    log.info("cluster: %d workers (%g CPUs%s each)", count, pool.cpus, f", {pool.gpus:g} GPU" if pool.gpus else "")
    items = [{"key": k, **{name: values[i] for name, values in (rows or {}).items()}} for i, k in enumerate(keys)]
    data = ray.data.from_items(items)
    results = data.map_batches(
        worker,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=count),
        num_cpus=pool.cpus,
        num_gpus=pool.gpus or None,
        fn_constructor_kwargs={
            "model": [ray.put(up.model)],
            "options": up.options,
            "threads": pool.cpus,
            "visible": visible,
            **kwargs,
        },
    )  # Ray Data restarts a lost actor and retries its file or segment
    speed: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    try:
        for row in results.iter_rows():
            if row["fatal"]:
                raise ClusterError(row["error"])
            speed[row["worker"]][0] += 1
            speed[row["worker"]][1] += row["seconds"]
            yield row
    except ray.exceptions.RayError as exc:
        raise ClusterError(f"the cluster failed: {one_line(exc)}") from None
    finally:
        for where, (n, seconds) in sorted(speed.items()):
            log.info("worker %s: %d done in %.1f s (%.2f/s)", where, n, seconds, n / seconds if seconds else 0.0)


# ---------------------------------------------------------------------- commands
def run_images(
    address: str, up: Upscaler, jobs: list[Any], *, quality: int | None, strip_metadata: bool, job_folder: Path
) -> Iterator[tuple[Any, str | None]]:
    """``(job, error or None)`` for each of a batch's ``jobs``, as the cluster finishes them."""
    roots = sorted({os.path.abspath(j.src.parent) for j in jobs})
    outputs = sorted({os.path.abspath(j.dst.parent) for j in jobs})
    for folder in outputs:  # made here, so that workers can check they see them
        os.makedirs(folder, exist_ok=True)
    rows = {"src": [os.path.abspath(j.src) for j in jobs], "dst": [os.path.abspath(j.dst) for j in jobs]}
    for row in _map(
        address,
        up,
        _ImageWorker,
        list(range(len(jobs))),
        [str(job_folder), *roots, *outputs],
        rows,
        quality=quality,
        strip_metadata=strip_metadata,
    ):
        yield jobs[int(row["key"])], row["error"] or None


def segment_runner(address: str) -> Callable[..., Iterator[tuple[Segment, SegmentResult | str]]]:
    """A video's segments made on the cluster, for :func:`~upscale.io.streaming.upscale_video`."""

    def run(
        src: Path, plan: SegmentPlan, todo: list[Segment], folder: Path, up: Upscaler, opts: VideoOptions
    ) -> Iterator[tuple[Segment, SegmentResult | str]]:
        from .io.segments import finished

        for row in _map(
            address,
            up,
            _SegmentWorker,
            [s.index for s in todo],
            [os.path.abspath(src), str(folder.absolute())],
            src=os.path.abspath(src),
            opts=opts,
            folder=str(folder.absolute()),
            plan=plan,
        ):
            seg = plan.segments[int(row["key"])]
            yield seg, row["error"] or finished(folder, seg) or f"{folder}: the segment's file is missing"

    return run
