"""Streams that end their LLM call: ``ObservedStream``, ``ObservedStreamManager`` (and async).

``create(..., stream=True)`` returns the SDK's stream once the response headers arrived;
the call goes on until the agent has read the stream to its end (or closed it). These
proxies hand every item to the provider's ``StreamReader`` on its way to the agent and
end the call once: at the end of the stream, on ``close()`` / the end of a ``with``
block, or when reading fails. Everything else is the SDK stream's own, by delegation.

A stream that is dropped without being read to its end or closed ends its call when it is
garbage-collected, as if closed there: what was read is recorded and the rest of the
reservation settled, rather than held until it expires.

The managers stand in for an SDK's stream helpers (``with client.messages.stream(...)``):
they open the call when the block is entered and end it when the block ends.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
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
        if self._done:
            return
        try:
            self.reader.observe(item)
        except Exception as exc:  # reading usage must never break the agent's stream
            # What the reader saw can no longer be trusted: the call ends now, unpriced.
            self.reader = _Nothing()
            self.finish()
            self.call.report_failure(exc)

    def finish(self, exc: BaseException | None = None, *, complete: bool = False) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self.call.finish_stream(self.reader, exc, complete=complete)


def _end_when_dropped(stream: object, end: _StreamEnd) -> None:
    # Not at interpreter exit: the telemetry may be shut down by then.
    weakref.finalize(stream, end.finish).atexit = False


class ObservedStream:
    """A sync SDK stream whose items are watched for usage; ends the call at its end."""

    def __init__(self, stream: Any, call: ProviderCall, reader: StreamReader) -> None:
        self._stream = stream
        self._end = _StreamEnd(call, reader)
        _end_when_dropped(self, self._end)

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
        _end_when_dropped(self, self._end)

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


class ObservedStreamManager:
    """An SDK stream helper's manager (``client.messages.stream(...)``), sync.

    The request is sent when the ``with`` block is entered: the call is opened and
    admitted there, and only then is the SDK's manager made (an async one holds its
    request, unsent, from the start). When the block ends, ``read_stream`` reads the usage
    from the SDK's own stream object (its public snapshot), whatever the agent read of it.
    """

    def __init__(
        self,
        make_manager: Callable[[], Any],
        open_call: Callable[[], ProviderCall | None],
        read_stream: Callable[[Any], StreamReader],
    ) -> None:
        self._make_manager = make_manager
        self._manager: Any = None
        self._open_call = open_call
        self._read_stream = read_stream
        self._call: ProviderCall | None = None
        self._stream: Any = None

    def _sdk_manager(self) -> Any:
        if self._manager is None:
            self._manager = self._make_manager()
        return self._manager

    def __enter__(self) -> Any:
        call = self._call = self._open_call()
        if call is None:
            return self._sdk_manager().__enter__()
        try:
            with call.sending():
                self._stream = self._sdk_manager().__enter__()
        except BaseException as exc:
            call.fail(exc)
            raise
        return self._stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return self._sdk_manager().__exit__(exc_type, exc, tb)
        finally:
            if self._call is not None:
                _finish_managed(self._call, self._read_stream, self._stream, exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sdk_manager(), name)


class ObservedAsyncStreamManager:
    """The async twin of ``ObservedStreamManager`` (``async with``)."""

    def __init__(
        self,
        make_manager: Callable[[], Any],
        open_call: Callable[[], ProviderCall | None],
        read_stream: Callable[[Any], StreamReader],
    ) -> None:
        self._make_manager = make_manager
        self._manager: Any = None
        self._open_call = open_call
        self._read_stream = read_stream
        self._call: ProviderCall | None = None
        self._stream: Any = None

    def _sdk_manager(self) -> Any:
        if self._manager is None:
            self._manager = self._make_manager()
        return self._manager

    async def __aenter__(self) -> Any:
        call = self._call = self._open_call()
        if call is None:
            return await self._sdk_manager().__aenter__()
        try:
            with call.sending():
                self._stream = await self._sdk_manager().__aenter__()
        except BaseException as exc:
            call.fail(exc)
            raise
        return self._stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return await self._sdk_manager().__aexit__(exc_type, exc, tb)
        finally:
            if self._call is not None:
                _finish_managed(self._call, self._read_stream, self._stream, exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sdk_manager(), name)


def _finish_managed(
    call: ProviderCall,
    read_stream: Callable[[Any], StreamReader],
    stream: Any,
    exc: BaseException | None,
) -> None:
    problem: Exception | None = None
    try:
        reader: StreamReader = read_stream(stream)
    except Exception as error:  # reading usage must never break the agent's block
        reader, problem = _Nothing(), error
    # A helper's block may end before the stream did: what was read so far is recorded.
    call.finish_stream(reader, exc, complete=False)
    if problem is not None:
        call.report_failure(problem)


class _Nothing:
    """A stream reader that saw nothing."""

    output_chars = 0

    def observe(self, item: object) -> None:
        return

    def usage(self) -> object | None:
        return None
