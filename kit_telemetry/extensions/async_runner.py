"""One background event loop for ``async def`` handlers, in order per session."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger("kit_telemetry")
_T = TypeVar("_T")


class AsyncRunner:
    """Runs coroutines on a daemon thread's loop; per-key order; bounded run time.

    Args:
        timeout_s: a coroutine still running after this long is cancelled ("abandoned") and
            reported through ``on_timeout``.
    """

    def __init__(self, *, timeout_s: float, on_timeout: Callable[[str], None]) -> None:
        self._timeout_s = timeout_s
        self._on_timeout = on_timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tails: dict[str, asyncio.Future[Any]] = {}  # touched on the loop thread only
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="kit-telemetry-async", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(
        self,
        key: str,
        label: str,
        make: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Run ``make()`` after every earlier coroutine submitted with the same ``key``."""
        loop = self._ensure_loop()
        with self._lock:
            self._pending += 1
        loop.call_soon_threadsafe(self._chain, key, label, make, on_error)

    def _chain(
        self,
        key: str,
        label: str,
        make: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None],
    ) -> None:
        previous = self._tails.get(key)
        task = asyncio.ensure_future(self._run(previous, label, make, on_error))
        self._tails[key] = task
        task.add_done_callback(lambda t: self._done(key, t))

    async def _run(
        self,
        previous: asyncio.Future[Any] | None,
        label: str,
        make: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None],
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        try:
            await asyncio.wait_for(make(), self._timeout_s)
        except asyncio.TimeoutError:
            self._on_timeout(label)
        except Exception as exc:
            on_error(exc)

    def _done(self, key: str, task: asyncio.Future[Any]) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]
        with self._lock:
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
        """Wait until every submitted coroutine has finished; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Finish what is pending (bounded), then stop the loop; idempotent."""
        self.flush(timeout_s)
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)
            if not thread.is_alive():
                loop.close()
