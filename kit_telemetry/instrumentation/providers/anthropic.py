"""The Anthropic SDK: the Messages API, sync and async, plain and streamed.

Patched: ``Messages.create`` and ``AsyncMessages.create`` (``client.messages.create``),
and the stream helpers ``Messages.stream`` and ``AsyncMessages.stream``
(``with client.messages.stream(...) as stream``). Usage is read with
``kt.usage.from_anthropic``: from the message, from a stream's ``message_start`` (input
and cache counts) merged with its last ``message_delta`` (output counts, and any count it
repeats), or from a helper stream's ``current_message_snapshot`` when its block ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...usage import from_anthropic
from .arguments import count_arg, field, text_arg
from .call import ProviderHooks, RequestFacts
from .estimate import estimate_tokens
from .methods import Host, async_method, stream_helper, sync_method
from .patch import MethodPatch

if TYPE_CHECKING:
    from .call import StreamReader

PROVIDER = "anthropic"
# What from_anthropic reads of a usage, read one by one: dumping a whole SDK object whose
# counts are malformed would warn from inside the SDK.
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "output_tokens_details",
)


def _request(kwargs: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(
        model=text_arg(kwargs, "model"),
        max_tokens=count_arg(kwargs, "max_tokens"),
        estimated_input_tokens=estimate_tokens(
            kwargs.get("system"), kwargs.get("messages"), kwargs.get("tools")
        ),
        stream=kwargs.get("stream") is True,
    )


class MessageStreamReader:
    """A Messages stream: text deltas, and the usage split over its start and deltas."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._stop_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self.output_chars = 0

    def observe(self, item: object) -> None:
        kind = field(item, "type")
        if kind == "content_block_delta":
            delta = field(item, "delta")
            for name in ("text", "partial_json", "thinking"):
                text = field(delta, name)
                if isinstance(text, str):
                    self.output_chars += len(text)
        elif kind == "message_start":
            message = field(item, "message")
            self._id = field(message, "id")
            usage = field(message, "usage")
            if usage is not None:
                self._usage = _fields(usage)
        elif kind == "message_delta":
            reason = field(field(item, "delta"), "stop_reason")
            if isinstance(reason, str):
                self._stop_reason = reason
            usage = field(item, "usage")
            if usage is not None:
                # Counts in a delta are cumulative; None means "as before".
                merged = dict(self._usage or {})
                merged.update({k: v for k, v in _fields(usage).items() if v is not None})
                self._usage = merged

    def usage(self) -> object | None:
        if self._usage is None:
            return None
        return {"id": self._id, "stop_reason": self._stop_reason, "usage": self._usage}


def _fields(usage: object) -> dict[str, Any]:
    return {name: field(usage, name) for name in _USAGE_FIELDS}


class SnapshotReader:
    """What a helper's ``MessageStream`` accumulated: its public message snapshot."""

    def __init__(self, stream: object) -> None:
        try:
            self._message: object | None = getattr(stream, "current_message_snapshot", None)
        except AssertionError:  # the SDK asserts when no message_start arrived yet
            self._message = None
        self.output_chars = sum(
            len(text)
            for block in field(self._message, "content") or ()
            if isinstance(text := field(block, "text"), str)
        )

    def observe(self, item: object) -> None:
        return  # the SDK's stream keeps the snapshot

    def usage(self) -> object | None:
        if self._message is None or field(self._message, "usage") is None:
            return None
        return self._message


def _snapshot_reader(stream: object) -> StreamReader:
    return SnapshotReader(stream)


def _reader() -> StreamReader:
    return MessageStreamReader()


MESSAGES = ProviderHooks(
    provider=PROVIDER,
    read_request=_request,
    read_usage=from_anthropic,
    new_stream_reader=_reader,
)


def patches(host: Host) -> list[MethodPatch]:
    """The methods to patch (imports the anthropic package).

    Raises:
        ImportError: the anthropic package is not installed.
    """
    from anthropic.resources.messages import AsyncMessages, Messages

    return [
        MethodPatch(Messages, "create", sync_method(MESSAGES, host)),
        MethodPatch(AsyncMessages, "create", async_method(MESSAGES, host)),
        MethodPatch(
            Messages, "stream", stream_helper(MESSAGES, host, _snapshot_reader, is_async=False)
        ),
        MethodPatch(
            AsyncMessages, "stream", stream_helper(MESSAGES, host, _snapshot_reader, is_async=True)
        ),
    ]
