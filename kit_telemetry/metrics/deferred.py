"""``RecordQueue``: finished calls waiting to be folded into the metrics, off the agent's thread.

The agent's thread only appends a finished LLM call, tool call or run to a queue; the
increments themselves (a dozen series per LLM call) happen when the queue is folded:
before every scrape of the registry, at ``force_flush``/``shutdown``, on a background
thread once a second or as soon as ``WAKE_PENDING`` records wait, and on the agent's
thread only when the queue overflows (the folding thread cannot keep up), which bounds
its memory. Prometheus reads the values at scrape time, so a scrape always sees every call
finished before it began.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from prometheus_client.registry import Collector

logger = logging.getLogger("kit_telemetry")

# Past this many waiting records the folding thread is woken at once, not at its interval.
WAKE_PENDING: Final = 1_000
# Past this many the agent's thread folds them itself (the folding thread cannot keep up).
MAX_PENDING: Final = 10_000
FOLD_INTERVAL_S: Final = 1.0

_QUEUES: weakref.WeakSet[RecordQueue] = weakref.WeakSet()


class RecordQueue:
    """Records to apply later, in order; every method is safe from any thread.

    A record is one object (the finished call's event, as a rule): the queue keeps as few
    objects alive as it can, since every one of them is work for the garbage collector
    until it is folded.

    Args:
        apply: folds one record into the metrics.
        wake_pending: records waiting that wake the folding thread before its interval.
        max_pending: records waiting before the caller's thread folds them itself.
        interval_s: how often the background thread folds.
    """

    def __init__(
        self,
        apply: Callable[[Any], None],
        *,
        wake_pending: int = WAKE_PENDING,
        max_pending: int = MAX_PENDING,
        interval_s: float = FOLD_INTERVAL_S,
    ) -> None:
        self._apply = apply
        self._pending: deque[Any] = deque()
        self._wake_pending = min(wake_pending, max_pending)
        self._max_pending = max_pending
        self._interval_s = interval_s
        self._fold_lock = threading.Lock()  # one folder at a time, so nothing folds twice
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._folder: threading.Thread | None = None
        self._start_lock = threading.Lock()
        _QUEUES.add(self)

    def put(self, record: Any) -> None:
        """Queue ``record``; the agent's thread pays for an append."""
        pending = self._pending
        pending.append(record)
        if self._folder is None or len(pending) > self._wake_pending:
            self._after_put(len(pending))

    def _after_put(self, pending: int) -> None:
        if self._folder is None and not self._start():
            self.fold()  # shut down: nothing folds in the background any more
        elif pending > self._max_pending:
            self.fold()
        elif pending > self._wake_pending:
            self._wake.set()

    def fold(self) -> None:
        """Apply every queued record now; one that raises is logged and the rest still land.

        ``KitMetrics`` records catch and count their own errors; this guard is for the
        queue's sake, since an overflowing ``put`` folds on the agent's thread.
        """
        pending = self._pending
        apply = self._apply
        with self._fold_lock:
            while pending:
                record = pending.popleft()
                try:
                    apply(record)
                except Exception:
                    logger.exception("kit-telemetry: a queued metrics record failed")

    def __len__(self) -> int:
        return len(self._pending)

    def shutdown(self) -> None:
        """Fold what is left and stop the background thread; idempotent."""
        self._stop.set()
        self._wake.set()
        folder = self._folder
        if folder is not None and folder is not threading.current_thread():
            folder.join(timeout=5)
        self._folder = None  # from now on a record is folded as it is put
        self.fold()

    def _start(self) -> bool:
        """Start the folding thread unless shut down; whether one runs."""
        with self._start_lock:
            if self._stop.is_set():
                return False
            if self._folder is not None:
                return True
            folder = threading.Thread(
                target=_fold_periodically,
                args=(weakref.ref(self), self._stop, self._wake, self._interval_s),
                name="kit-telemetry-metrics-fold",
                daemon=True,
            )
            folder.start()
            self._folder = folder
            return True

    def _after_fork(self) -> None:
        # The child has the queue but not the thread: start a new one on the next record.
        self._folder = None
        self._fold_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()


def _fold_periodically(
    queue_ref: weakref.ref[RecordQueue],
    stop: threading.Event,
    wake: threading.Event,
    interval_s: float,
) -> None:
    # Holds the queue only weakly between folds, so an abandoned queue can be collected.
    while True:
        wake.wait(interval_s)
        wake.clear()
        if stop.is_set():
            return  # shutdown() folds what is left
        queue = queue_ref()
        if queue is None:
            return
        queue.fold()
        del queue


class FoldBeforeCollect(Collector):
    """A collector that folds the queue when the registry is collected, and reports nothing.

    Registered before the instruments, so a scrape reads them after the fold.
    """

    def __init__(self, queue: RecordQueue) -> None:
        self._queue = queue

    def collect(self) -> Iterable[Any]:
        self._queue.fold()
        return []

    def describe(self) -> Iterable[Any]:
        return []


def _reset_after_fork() -> None:
    for queue in list(_QUEUES):
        queue._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
