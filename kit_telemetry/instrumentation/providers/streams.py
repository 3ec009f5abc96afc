"""``ObservedStream`` and ``ObservedAsyncStream``: an SDK stream that ends its LLM call.

``create(..., stream=True)`` returns the SDK's stream once the response headers arrived;
the call goes on until the agent has read the stream to its end (or closed it). These
proxies hand every item to the provider's ``StreamReader`` on its way to the agent and
end the call once: at the end of the stream, on ``close()`` / the end of a ``with``
block, or when reading fails. Everything else is the SDK stream's own, by delegation.

A stream that is dropped without being read to its end or closed leaves its call open,
as the SDK leaves its HTTP connection open.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

from .call import ProviderCall, StreamReader


class _StreamEnd:
    """Ends the call of one stream exactly once, whoever gets there first."""

    def __init__(self, call: ProviderCall, reader: StreamReader) -> None:
        self.call = call
        self.reader = reader
        self._lock = threading.Lock()
        self._done = False

    def observe(self, item: object) -> None:
        try:
            self.reader.observe(item)
        except Exception as exc:  # reading usage must never break the agent's stream
            self.call.report_failure(exc)

    def finish(self, exc: BaseException | None = None, *, complete: bool = False) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self.call.finish_stream(self.reader, exc, complete=complete)


class ObservedStream:
    """A sync SDK stream whose items are watched for usage; ends the call at its end."""

    def __init__(self, stream: Any, call: ProviderCall, reader: StreamReader) -> None:
        self._stream = stream
        self._end = _StreamEnd(call, reader)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._stream)
        except StopIteration:
            self._end.finish(complete=True)
            raise
        except BaseException as exc:
            self._end.finish(exc)
            raise
        self._end.observe(item)
        return item

    def close(self) -> None:
        """Close the SDK stream and end the call with what was read so far."""
        try:
            self._stream.close()
        finally:
            self._end.finish()

    def __enter__(self) -> ObservedStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._stream.close()
        finally:
            self._end.finish(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class ObservedAsyncStream:
    """An async SDK stream whose items are watched for usage; ends the call at its end."""

    def __init__(self, stream: Any, call: ProviderCall, reader: StreamReader) -> None:
        self._stream = stream
        self._end = _StreamEnd(call, reader)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._stream.__anext__()
        except StopAsyncIteration:
            self._end.finish(complete=True)
            raise
        except BaseException as exc:
            self._end.finish(exc)
            raise
        self._end.observe(item)
        return item

    async def close(self) -> None:
        """Close the SDK stream and end the call with what was read so far."""
        try:
            await self._stream.close()
        finally:
            self._end.finish()

    async def __aenter__(self) -> ObservedAsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._stream.close()
        finally:
            self._end.finish(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
