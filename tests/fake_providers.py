"""Fake OpenAI and Anthropic HTTP APIs on 127.0.0.1, for tests that drive the real SDKs.

``FakeProviders`` serves, on one port, what the official ``openai`` and ``anthropic``
clients call: ``POST /v1/chat/completions``, ``POST /v1/responses`` and
``POST /v1/messages``, as JSON or, when the request asks to stream, as server-sent
events in each API's wire format. Every answer reports the token counts in
``OPENAI_USAGE`` / ``ANTHROPIC_USAGE`` (cached and reasoning tokens included), so tests can
compute the expected cost by hand::

    with FakeProviders() as fake:
        client = openai.OpenAI(base_url=fake.openai_url, api_key="test")
        client.chat.completions.create(model="o4-mini", messages=[...])
        assert len(fake.requests) == 1

``usage`` chooses what the answers say about usage: ``"full"`` (default), ``"missing"``
(no usage at all, also not in streams) or ``"malformed"`` (a usage whose counts are not
integers).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

UsageMode = Literal["full", "missing", "malformed"]

# What every answer reports. OpenAI counts cached tokens inside the prompt and reasoning
# tokens inside the completion; Anthropic counts cache reads and writes beside the input.
OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "cached_tokens": 200,
    "completion_tokens": 300,
    "reasoning_tokens": 100,
}
ANTHROPIC_USAGE = {
    "input_tokens": 1000,
    "cache_read_input_tokens": 4000,
    "cache_creation_input_tokens": 500,
    "output_tokens": 250,
}
REPLY_WORDS = ("Hello", " from", " the", " fake", " model.")
REPLY_TEXT = "".join(REPLY_WORDS)


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request the fake server received."""

    path: str
    body: dict[str, Any]


class FakeProviders:
    """The fake APIs, served from a thread until ``close()`` (or the ``with`` block's end).

    Attributes:
        usage: what the next answers say about usage (may be changed between calls).
        requests: every request received, in order.
    """

    def __init__(self, *, usage: UsageMode = "full") -> None:
        self.usage: UsageMode = usage
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_url(self) -> str:
        """The ``base_url`` for ``anthropic.Anthropic``."""
        return self.base_url

    def seen(self, request: SeenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviders:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- answers ---------------------------------------------------------------------------


def _openai_chat_usage(mode: UsageMode) -> dict[str, Any] | None:
    if mode == "missing":
        return None
    if mode == "malformed":
        return {"prompt_tokens": "many", "completion_tokens": -3}
    u = OPENAI_USAGE
    return {
        "prompt_tokens": u["prompt_tokens"],
        "completion_tokens": u["completion_tokens"],
        "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
        "prompt_tokens_details": {"cached_tokens": u["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
    }


def _openai_responses_usage(mode: UsageMode) -> dict[str, Any] | None:
    if mode == "missing":
        return None
    if mode == "malformed":
        return {"input_tokens": "many", "output_tokens": -3}
    u = OPENAI_USAGE
    return {
        "input_tokens": u["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
        "output_tokens": u["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
        "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
    }


def _anthropic_usage(mode: UsageMode) -> dict[str, Any] | None:
    if mode == "missing":
        return None
    if mode == "malformed":
        return {"input_tokens": "many", "output_tokens": -3}
    return dict(ANTHROPIC_USAGE)


def _chat_completion(body: dict[str, Any], mode: UsageMode) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body.get("model", "unknown"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY_TEXT},
                "finish_reason": "stop",
            }
        ],
    }
    usage = _openai_chat_usage(mode)
    if usage is not None:
        answer["usage"] = usage
    return answer


def _chat_chunks(body: dict[str, Any], mode: UsageMode) -> list[tuple[str | None, Any]]:
    model = body.get("model", "unknown")

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "chatcmpl-fake-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out

    events: list[tuple[str | None, Any]] = [
        (None, chunk([{"index": 0, "delta": {"role": "assistant", "content": word}}]))
        for word in REPLY_WORDS
    ]
    events.append((None, chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])))
    options = body.get("stream_options") or {}
    usage = _openai_chat_usage(mode)
    if options.get("include_usage") and usage is not None:
        events.append((None, chunk([], usage)))
    events.append((None, "[DONE]"))
    return events


def _response(body: dict[str, Any], mode: UsageMode, status: str = "completed") -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": "resp_fake_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": body.get("model", "unknown"),
        "output": [
            {
                "type": "message",
                "id": "msg_fake_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": REPLY_TEXT, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    usage = _openai_responses_usage(mode)
    if usage is not None:
        answer["usage"] = usage
    return answer


def _response_events(body: dict[str, Any], mode: UsageMode) -> list[tuple[str | None, Any]]:
    created = _response(body, "missing", status="in_progress")
    created["output"] = []
    events: list[tuple[str | None, Any]] = [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": created},
        )
    ]
    for n, word in enumerate(REPLY_WORDS, start=1):
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": n,
                    "item_id": "msg_fake_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word,
                    "logprobs": [],
                },
            )
        )
    events.append(
        (
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": len(REPLY_WORDS) + 1,
                "response": _response(body, mode),
            },
        )
    )
    return events


def _message(body: dict[str, Any], mode: UsageMode) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": "msg_fake_1",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "unknown"),
        "content": [{"type": "text", "text": REPLY_TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    usage = _anthropic_usage(mode)
    # The Messages API always has a usage; "missing" sends it as null, which the SDK allows.
    answer["usage"] = usage
    return answer


def _message_events(body: dict[str, Any], mode: UsageMode) -> list[tuple[str | None, Any]]:
    usage = _anthropic_usage(mode)
    start = _message(body, mode)
    start["content"] = []
    start["stop_reason"] = None
    if usage is not None and mode == "full":
        # message_start carries the input side; output so far is 1 token.
        start["usage"] = {**usage, "output_tokens": 1}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for word in REPLY_WORDS:
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word},
                },
            )
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    }
    if mode == "full":
        delta["usage"] = {"output_tokens": ANTHROPIC_USAGE["output_tokens"]}
    elif mode == "malformed":
        delta["usage"] = {"output_tokens": -3}
    else:
        delta["usage"] = None
    events.append(("message_delta", delta))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _handler_for(fake: FakeProviders) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.split("?", 1)[0]
            fake.seen(SeenRequest(path=path, body=body))
            mode = fake.usage
            stream = bool(body.get("stream"))
            if path == "/v1/chat/completions":
                if stream:
                    self._events(_chat_chunks(body, mode))
                else:
                    self._json(_chat_completion(body, mode))
            elif path == "/v1/responses":
                if stream:
                    self._events(_response_events(body, mode))
                else:
                    self._json(_response(body, mode))
            elif path == "/v1/messages":
                if stream:
                    self._events(_message_events(body, mode))
                else:
                    self._json(_message(body, mode))
            else:
                self._json({"error": {"message": f"no route {path}"}}, status=404)

        def _json(self, payload: dict[str, Any], status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _events(self, events: list[tuple[str | None, Any]]) -> None:
            lines = []
            for name, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                if name is not None:
                    lines.append(f"event: {name}\n")
                lines.append(f"data: {text}\n\n")
            data = "".join(lines).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
