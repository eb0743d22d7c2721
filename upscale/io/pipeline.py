"""Stages on their own threads, joined by bounded queues, so decoding, inference and encoding overlap
while at most ``depth`` items wait between two stages (memory stays flat however long the video).

Decoding and encoding (FFmpeg) and inference (torch) release the GIL, so threads are enough. An error in
any stage travels downstream and is raised where the last stage is consumed; :meth:`Pipeline.close`
stops every stage, which is what Ctrl-C or a failure in the consumer calls.

Stopping always waits for every stage thread: a thread left inside FFmpeg or torch while the interpreter
shuts down aborts the process (``terminate called without an active exception``, exit 134). Ctrl-C
pressed while the stages wind down is held and raised once they have.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

A = TypeVar("A")
B = TypeVar("B")

_POLL_S = 0.1
_ITEM, _END, _ERROR = 0, 1, 2


class _Stopped(Exception):
    """Raised inside a stage when the pipeline is being closed."""


class Pipeline:
    """Chain generator stages across threads::

    with Pipeline(depth=8) as p:
        frames = p.stage(decode())                    # thread 1
        outputs = p.stage(upscale, frames)            # thread 2, consumes thread 1's queue
        for out in outputs:                           # caller's thread
            encode(out)
    """

    def __init__(self, depth: int = 8) -> None:
        if depth < 1:
            raise ValueError("queue depth must be at least 1")
        self.depth = depth
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def stage(
        self,
        work: Iterable[B] | Callable[[Iterator[A]], Iterable[B]],
        source: Iterator[A] | None = None,
        *,
        name: str = "stage",
        wait: bool = True,
    ) -> Iterator[B]:
        """Run ``work`` (an iterable, or a function of ``source``) on a new thread; iterate its items here.

        ``wait=False`` is for a stage that blocks only on reading a pipe, which may never deliver again
        (an idle producer): stopping does not wait for it, and nothing native runs in it to abort on exit.
        """
        q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=self.depth)

        def target() -> None:
            try:
                items = work if source is None else work(source)  # type: ignore[operator]
                for item in items:  # type: ignore[union-attr]
                    self._put(q, (_ITEM, item))
                self._put(q, (_END, None))
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
                with contextlib.suppress(_Stopped):
                    self._put(q, (_ERROR, exc))

        thread = threading.Thread(target=target, name=f"upscale-{name}", daemon=True)
        if wait:
            self._threads.append(thread)
        thread.start()
        return self._drain(q)

    def spread(
        self,
        works: Sequence[Callable[[Iterator[A]], Iterable[B]]],
        source: Iterable[A],
        *,
        name: str = "lane",
    ) -> Iterator[B]:
        """Deal ``source``'s items in turn to one stage per entry of ``works`` (each on its own thread)
        and yield their results in ``source``'s order. Each work must give one result per item.

        An error raised by ``source`` reaches the stage whose turn it was, so it surfaces in order.
        """
        lanes: list[queue.Queue[tuple[int, Any]]] = [queue.Queue(maxsize=self.depth) for _ in works]

        def deal() -> None:
            dealt, error = 0, None
            try:
                for item in source:
                    self._put(lanes[dealt % len(lanes)], (_ITEM, item))
                    dealt += 1
            except _Stopped:
                pass  # this pipeline is closing, or the one whose stage feeds ``source``
            except BaseException as exc:  # noqa: BLE001 - raised by the stage whose turn it was
                error = exc
            with contextlib.suppress(_Stopped):
                for k in range(len(lanes)):
                    lane = lanes[(dealt + k) % len(lanes)]
                    self._put(lane, (_ERROR, error) if k == 0 and error is not None else (_END, None))

        dealer = threading.Thread(target=deal, name=f"upscale-{name}-dealer", daemon=True)
        self._threads.append(dealer)
        dealer.start()
        outputs = [
            self.stage(work, self._drain(lane), name=f"{name}{k}")
            for k, (work, lane) in enumerate(zip(works, lanes, strict=True))
        ]
        for k in itertools.cycle(range(len(outputs))):
            try:
                item = next(outputs[k])
            except StopIteration:
                return
            yield item

    def _put(self, q: queue.Queue, entry: tuple[int, Any]) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                q.put(entry, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _drain(self, q: queue.Queue) -> Iterator[Any]:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                kind, value = q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def close(self, timeout_s: float | None = None) -> bool:
        """Stop all stages and wait for their threads, each of which stops after the item in hand.

        Ctrl-C meanwhile does not cut the wait short; it is raised when the threads are done. With
        ``timeout_s``, False if a thread is still busy after that long (e.g. mid-inference).
        """
        with _interrupts_held():
            self._stop.set()
            current = threading.current_thread()
            for thread in self._threads:
                if thread is not current:
                    thread.join(timeout_s)
        return not any(t.is_alive() for t in self._threads if t is not current)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Defer SIGINT for the duration of the block, then deliver it to the handler that was in place.

    Only the main thread receives signals (and may change handlers); elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, caught[0])
