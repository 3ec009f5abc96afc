"""A background event loop for one extension's ``async def`` handlers, in order per session.

Each extension gets its own runner (its own loop on its own daemon thread), so a handler
that blocks its loop or will not be cancelled holds up its own extension, never another's.
A coroutine still running after ``timeout_s`` is abandoned: cancelled, and not waited for
(a coroutine that swallows the cancellation keeps running, unobserved). A loop that a
handler has blocked well past ``timeout_s`` (by ``timeout_s`` again, or a second if that is
more) is abandoned too: the next submission or flush starts a fresh loop, and the stuck one
is left to its daemon thread (what was queued on it runs there if the handler returns).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class Job:
    """One submitted coroutine: its result (``future``) and whether its end was reported.

    Attributes:
        label: names the handler in reports ("extension:event").
        future: resolves with the coroutine's result; with its exception when the job was
            submitted without ``on_error``; cancelled by a caller that stopped waiting.
        reported: its time-out has been reported (by the runner or by a caller), once.
    """

    __slots__ = ("future", "generation", "label", "reported", "started")

    def __init__(self, label: str, generation: int) -> None:
        self.label = label
        self.generation = generation
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.reported = False
        self.started: float | None = None  # monotonic, while it runs on the loop

    def claim_report(self) -> bool:
        """True the first time it is called: the caller reports the time-out."""
        if self.reported:
            return False
        self.reported = True
        return True


class AsyncRunner:
    """Runs coroutines on a daemon thread's loop; per-key order; bounded run time.

    Args:
        timeout_s: a coroutine still running after this long is cancelled ("abandoned") and
            reported through ``on_timeout``.
        name: names the loop's thread.
    """

    def __init__(
        self, *, timeout_s: float, on_timeout: Callable[[str], None], name: str = ""
    ) -> None:
        self._timeout_s = timeout_s
        self._on_timeout = on_timeout
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._tails: dict[str, asyncio.Future[Any]] = {}  # touched on the loop thread only
        self._running: Job | None = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever,
                    name="kit-telemetry-async",
                    daemon=True,
                )
                thread.start()
                self._loop, self._thread = loop, thread
                self._tails = {}
            return self._loop

    def _abandon_stuck_loop(self) -> None:
        """A handler has held the loop longer than the time-out: leave that loop behind."""
        with self._lock:
            job = self._running
            if job is None or job.started is None or self._loop is None:
                return
            # A loop that is not blocked times the job out itself at timeout_s: only well
            # past that is it blocked (a busy machine may run the loop late).
            if time.monotonic() - job.started <= self._timeout_s + max(self._timeout_s, 1.0):
                return
            self._loop = self._thread = None
            self._running = None
            self._generation += 1
            self._pending = 0  # the stuck loop's jobs are abandoned with it
            self._idle.notify_all()
        if job.claim_report():
            self._on_timeout(job.label)

    def submit(
        self,
        key: str,
        label: str,
        make: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Job:
        """Run ``make()`` after every earlier coroutine submitted with the same ``key``.

        Args:
            on_error: receives the coroutine's exception; when None, the job's future does.
        """
        self._abandon_stuck_loop()
        loop = self._ensure_loop()
        with self._lock:
            self._pending += 1
            job = Job(label, self._generation)
        loop.call_soon_threadsafe(self._chain, key, job, make, on_error)
        return job

    def _chain(
        self,
        key: str,
        job: Job,
        make: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None] | None,
    ) -> None:
        previous = self._tails.get(key)
        task = asyncio.ensure_future(self._run(previous, job, make, on_error))
        self._tails[key] = task
        task.add_done_callback(lambda t: self._done(key, t, job))

    async def _run(
        self,
        previous: asyncio.Future[Any] | None,
        job: Job,
        make: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None] | None,
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        if job.future.cancelled():  # the caller stopped waiting before it started
            return
        with self._lock:
            self._running = job
            job.started = time.monotonic()
        try:
            task = asyncio.ensure_future(make())
            # wait() rather than wait_for(): wait_for waits for a cancelled task to finish,
            # forever if the coroutine swallows the cancellation.
            done, _ = await asyncio.wait({task}, timeout=self._timeout_s)
            if not done:
                task.cancel()
                job.future.cancel()
                if job.claim_report():
                    self._on_timeout(job.label)
                return
            exc = task.exception()
            if exc is None:
                _resolve(job.future, task.result())
            elif on_error is not None:
                on_error(exc)
                _resolve(job.future, None)
            else:
                _fail(job.future, exc)
        except Exception as exc:  # make() itself raised (a handler that is no coroutine)
            if on_error is not None:
                on_error(exc)
                _resolve(job.future, None)
            else:
                _fail(job.future, exc)
        finally:
            with self._lock:
                if self._running is job:
                    self._running = None

    def _done(self, key: str, task: asyncio.Future[Any], job: Job) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]
        with self._lock:
            if job.generation != self._generation:
                return  # counted out when its loop was abandoned
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def run(self, coro: Coroutine[Any, Any, _T], timeout_s: float | None = None) -> _T:
        """Run one coroutine to completion on the loop (an async ``setup``) and return its result."""
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def flush(self, timeout_s: float) -> bool:
        """Wait until every submitted coroutine has finished; False on timeout.

        A loop found blocked meanwhile is abandoned (its coroutines with it).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._abandon_stuck_loop()
            left = deadline - time.monotonic()
            with self._lock:
                # In slices: a handler blocking the loop is only seen by looking again.
                if self._idle.wait_for(
                    lambda: self._pending == 0, max(min(left, self._timeout_s / 4), 0.0)
                ):
                    return True
            if left <= 0:
                return False

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Finish what is pending (bounded), then stop the loop; idempotent."""
        deadline = time.monotonic() + timeout_s
        flushed = self.flush(timeout_s)
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            # A loop still busy after the flush is stuck in a handler: do not wait for it.
            thread.join(max(deadline - time.monotonic(), 0.0) if flushed else 0.1)
            if not thread.is_alive():
                loop.close()


def _resolve(future: concurrent.futures.Future[Any], value: Any) -> None:
    # InvalidStateError: the caller stopped waiting (cancelled it); nobody reads it now.
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_result(value)


def _fail(future: concurrent.futures.Future[Any], exc: BaseException) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_exception(exc)
