"""Frame progress on stderr: a tqdm bar, one JSON line per second (for scripts), or nothing."""

from __future__ import annotations

import json
import sys
import time
from typing import Literal, TextIO

from tqdm import tqdm

ProgressMode = Literal["bar", "json", "none"]
JSON_INTERVAL_S = 1.0


class FrameProgress:
    """Counts frames of one stream; ``total`` may be None (unknown), which only drops the ETA."""

    def __init__(
        self, mode: ProgressMode, label: str, total: int | None = None, *, stream: TextIO | None = None
    ) -> None:
        self.mode = mode
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.done = 0
        self._t0 = time.perf_counter()
        self._last_json = 0.0
        self._bar: tqdm | None = None
        self.segments: tuple[int, int] | None = None
        self._said_segments: tuple[int, int] | None = None

    def _ensure_bar(self) -> tqdm | None:
        """The bar starts with the first count or total, so an estimate arriving late does not redraw it."""
        if self.mode == "bar" and self._bar is None:
            self._bar = tqdm(total=self.total, desc=self.label, unit="frame", file=self.stream, dynamic_ncols=True)
        return self._bar

    def set_total(self, total: int | None) -> None:
        self.total = total
        bar = self._bar if self._bar is not None else self._ensure_bar()
        if bar is not None and bar.total != total:
            bar.total = total
            bar.refresh()

    def set_segments(self, done: int, total: int) -> None:
        """``done`` of the video's ``total`` segments are finished (in JSON, said with the next count)."""
        self.segments = (done, total)
        if self._bar is not None:
            self._bar.set_postfix_str(f"segment {done}/{total}", refresh=False)

    def update(self, done: int) -> None:
        """``done`` frames written so far."""
        step, self.done = done - self.done, done
        if self.total is not None and done > self.total:  # the estimate from the duration was short
            self.set_total(done)
        bar = self._ensure_bar()
        if bar is not None:
            bar.update(step)
        elif self.mode == "json":
            now = time.perf_counter()
            if now - self._last_json >= JSON_INTERVAL_S or self.segments != self._said_segments:
                self._last_json = now
                self._emit(now)

    def _emit(self, now: float, *, final: bool = False, error: str | None = None) -> None:
        elapsed = max(now - self._t0, 1e-9)
        fps = self.done / elapsed
        eta = None
        if self.total is not None and fps > 0:
            eta = round(max(self.total - self.done, 0) / fps, 1)
        record = {"file": self.label, "frame": self.done, "total": self.total, "fps": round(fps, 2), "eta": eta}
        if self.segments is not None:
            record["segments"], record["segments_total"] = self._said_segments = self.segments
        if final:
            record["done"] = True
        if error is not None:
            record["done"] = False
            record["error"] = error
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()

    def close(self, *, success: bool = True, error: str | None = None) -> None:
        """End the bar; in JSON, a last line with ``"done": true``, or with ``"done": false`` and the
        ``error`` when one is given."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "json" and error is not None:
            self._emit(time.perf_counter(), error=error)
        elif self.mode == "json" and success:
            self._emit(time.perf_counter(), final=True)

    def __enter__(self) -> FrameProgress:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(success=exc_type is None)
