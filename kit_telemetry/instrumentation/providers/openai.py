"""The OpenAI SDK: chat completions and the Responses API, sync and async, plain and streamed.

Patched: ``Completions.create`` and ``AsyncCompletions.create``
(``client.chat.completions.create``), ``Responses.create`` and ``AsyncResponses.create``
(``client.responses.create``). Usage is read with ``kt.usage.from_openai``: from the
response, from a chat stream's usage chunk (sent only with
``stream_options={"include_usage": True}``), or from a Responses stream's final
``response.completed`` (``.incomplete``, ``.failed``) event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...usage import from_openai
from .arguments import count_arg, field, text_arg
from .call import ProviderHooks, RequestFacts
from .estimate import estimate_tokens
from .methods import Host, async_method, sync_method
from .patch import MethodPatch

if TYPE_CHECKING:
    from .call import StreamReader

PROVIDER = "openai"
_TEXT_DELTA_EVENTS = frozenset(
    {"response.output_text.delta", "response.function_call_arguments.delta"}
)
_FINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _chat_request(kwargs: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(
        model=text_arg(kwargs, "model"),
        max_tokens=count_arg(kwargs, "max_completion_tokens", "max_tokens"),
        estimated_input_tokens=estimate_tokens(
            kwargs.get("messages"), kwargs.get("tools"), kwargs.get("functions")
        ),
        stream=kwargs.get("stream") is True,
        stream_usage=_include_usage(kwargs.get("stream_options")),
    )


def _include_usage(options: object) -> bool:
    return field(options, "include_usage") is True


def _responses_request(kwargs: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(
        model=text_arg(kwargs, "model"),
        max_tokens=count_arg(kwargs, "max_output_tokens"),
        estimated_input_tokens=estimate_tokens(
            kwargs.get("input"), kwargs.get("instructions"), kwargs.get("tools")
        ),
        stream=kwargs.get("stream") is True,
    )


class ChatStreamReader:
    """A chat completions stream: text deltas, and the usage chunk when asked for."""

    def __init__(self) -> None:
        self._usage: object | None = None
        self._chunk: object | None = None
        self._finish_reason: str | None = None
        self.output_chars = 0

    def observe(self, item: object) -> None:
        for choice in field(item, "choices") or ():
            delta = field(choice, "delta")
            content = field(delta, "content")
            if isinstance(content, str):
                self.output_chars += len(content)
            for tool_call in field(delta, "tool_calls") or ():
                arguments = field(field(tool_call, "function"), "arguments")
                if isinstance(arguments, str):
                    self.output_chars += len(arguments)
            reason = field(choice, "finish_reason")
            if isinstance(reason, str):
                self._finish_reason = reason
        usage = field(item, "usage")
        if usage is not None:
            self._usage, self._chunk = usage, item

    def usage(self) -> object | None:
        if self._usage is None:
            return None
        # The usage chunk has no choices: the finish reason came in an earlier chunk.
        return {
            "id": field(self._chunk, "id"),
            "usage": self._usage,
            "choices": [{"finish_reason": self._finish_reason}],
        }


class ResponseStreamReader:
    """A Responses API stream: text deltas, and the final response with its usage."""

    def __init__(self) -> None:
        self._final: object | None = None
        self.output_chars = 0

    def observe(self, item: object) -> None:
        kind = field(item, "type")
        if kind in _TEXT_DELTA_EVENTS:
            delta = field(item, "delta")
            if isinstance(delta, str):
                self.output_chars += len(delta)
        elif kind in _FINAL_RESPONSE_EVENTS:
            self._final = field(item, "response")

    def usage(self) -> object | None:
        if self._final is None or field(self._final, "usage") is None:
            return None
        return self._final


def _chat_reader() -> StreamReader:
    return ChatStreamReader()


def _response_reader() -> StreamReader:
    return ResponseStreamReader()


CHAT = ProviderHooks(
    provider=PROVIDER,
    read_request=_chat_request,
    read_usage=from_openai,
    new_stream_reader=_chat_reader,
)
RESPONSES = ProviderHooks(
    provider=PROVIDER,
    read_request=_responses_request,
    read_usage=from_openai,
    new_stream_reader=_response_reader,
)


def patches(host: Host) -> list[MethodPatch]:
    """The methods to patch (imports the openai package).

    Raises:
        ImportError: the openai package is not installed.
    """
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.responses import AsyncResponses, Responses

    return [
        MethodPatch(Completions, "create", sync_method(CHAT, host)),
        MethodPatch(AsyncCompletions, "create", async_method(CHAT, host)),
        MethodPatch(Responses, "create", sync_method(RESPONSES, host)),
        MethodPatch(AsyncResponses, "create", async_method(RESPONSES, host)),
    ]
