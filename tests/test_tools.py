"""Tools from extensions: registered, listed, rendered for a model request and run with
every decision point; mistakes of the model or the tool are errors the model can read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.testing import Capture, capture

WORD_COUNT = kt.ToolDefinition(
    "word_count",
    "count the words of a text",
    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    lambda args, ctx: str(len(args["text"].split())),
)


async def fetch(args: dict[str, Any], ctx: kt.ExtensionContext) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"url": args["url"], "status": 200, "tools_seen": [t.name for t in ctx.tools]}


FETCH = kt.ToolDefinition(
    "fetch",
    "fetch a URL",
    {
        "type": "object",
        "properties": {"url": {"type": "string"}, "retries": {"type": "integer", "minimum": 0}},
        "required": ["url"],
        "additionalProperties": False,
    },
    fetch,
)


def crash(args: dict[str, Any], ctx: kt.ExtensionContext) -> str:
    raise ConnectionError("upstream down")


def tools_setup(api: kt.ExtensionAPI) -> None:
    api.register_tool(WORD_COUNT)
    api.register_tool(FETCH)
    api.register_tool(kt.ToolDefinition("flaky", "always fails", {"type": "object"}, crash))


def load(cap: Capture) -> None:
    cap.telemetry.extension_processor.load_setup("toolbox", tools_setup)


def test_registered_tools_are_listed_and_rendered_for_both_providers() -> None:
    """The agent puts an extension's tools into its model request unchanged."""
    with capture() as cap:
        load(cap)
        defs = cap.telemetry.tool_definitions()
        loaded = cap.telemetry.extensions[-1]
    assert [d.name for d in defs] == ["word_count", "fetch", "flaky"]
    assert loaded.tools == tuple(defs)
    openai = kt.tool_schemas(defs[:1], format="openai")
    anthropic = kt.tool_schemas(defs[:1], format="anthropic")
    assert openai == [
        {
            "type": "function",
            "function": {
                "name": "word_count",
                "description": "count the words of a text",
                "parameters": dict(WORD_COUNT.parameters),
            },
        }
    ]
    assert anthropic == [
        {
            "name": "word_count",
            "description": "count the words of a text",
            "input_schema": dict(WORD_COUNT.parameters),
        }
    ]
    with pytest.raises(ValueError, match="'gemini' is not one of openai, anthropic"):
        kt.tool_schemas(defs, format="gemini")  # type: ignore[arg-type]


def test_bad_definitions_and_duplicate_names_are_refused() -> None:
    """A tool the providers would reject fails at set-up, not in the model call."""
    with pytest.raises(ValueError, match="tool name"):
        kt.ToolDefinition("word count", "", {"type": "object"}, print)
    with pytest.raises(ValueError, match="JSON Schema object"):
        kt.ToolDefinition("x", "", {"type": "string"}, print)
    with pytest.raises(TypeError, match="callable"):
        kt.ToolDefinition("x", "", {"type": "object"}, 42)  # type: ignore[arg-type]
    with capture() as cap:
        load(cap)
        with pytest.raises(
            kt.ExtensionLoadError, match="already registered by extension 'toolbox'"
        ):
            cap.telemetry.extension_processor.load_setup(
                "copycat", lambda api: api.register_tool(WORD_COUNT)
            )


def test_call_tool_runs_the_handler_in_an_execute_tool_span() -> None:
    """The outcome comes back as text; the span and events are those of any tool call."""
    with capture(capture_content=True) as cap:
        load(cap)
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            counted = turn.call_tool("word_count", {"text": "a b c"}, call_id="call_1")
            fetched = turn.call_tool("fetch", {"url": "https://example.com"})
        span = next(s for s in cap.spans() if s.name == "execute_tool word_count")
        calls = cap.events_of(kt.EventType.TOOL_CALL)
    assert counted == kt.ToolOutcome("3", False)
    assert fetched.is_error is False
    assert '"status": 200' in fetched.content and '"tools_seen": ["word_count"' in fetched.content
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.call.id"] == "call_1"
    assert span.attributes["gen_ai.tool.call.result"] == "3"
    assert next((c.tool_name, c.arguments) for c in calls) == ("word_count", {"text": "a b c"})


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("grep", {}, "Error: unknown tool 'grep'; available tools: word_count, fetch, flaky"),
        ("word_count", {}, "arguments.text is required"),
        ("word_count", {"text": 3}, "arguments.text must be string, got number"),
        ("fetch", {"url": "u", "retries": -1}, "arguments.retries must be at least 0"),
        ("fetch", {"url": "u", "verb": "GET"}, "arguments.verb is not allowed"),
        ("flaky", {}, "Error: ConnectionError: upstream down"),
    ],
)
def test_mistakes_are_tool_errors_the_model_can_read(
    name: str, arguments: dict[str, Any], message: str
) -> None:
    """Not exceptions: the model reads the message and tries again."""
    with capture() as cap:
        load(cap)
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            outcome = turn.call_tool(name, arguments)
        errors = cap.metric("kit_tool_calls_total", tool=name, outcome="error")
    assert outcome.is_error is True
    assert message in outcome.content
    assert errors == 1


def test_call_tool_honours_block_replace_and_stop() -> None:
    """Every decision point of a tool call applies to extension tools too."""

    def policy(api: kt.ExtensionAPI) -> None:
        api.on(
            "tool_call",
            lambda e, ctx: kt.Block("no fetching") if e.tool_name == "fetch" else None,
        )
        api.on("tool_result", lambda e, ctx: kt.Replace(content=f"[{e.result}]"))
        api.on(  # the blocked call also ends with a (failed) tool_result
            "tool_result", lambda e, ctx: None if e.is_error else kt.Stop("one tool is enough")
        )

    with capture(strict=False) as cap:
        load(cap)
        cap.telemetry.extension_processor.load_setup("policy", policy)
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with pytest.raises(kt.Blocked, match="no fetching"):
                turn.call_tool("fetch", {"url": "u"})
            outcome = turn.call_tool("word_count", {"text": "a b"})
            with pytest.raises(kt.Blocked) as stopped:
                turn.call_tool("word_count", {"text": "a"})
    assert outcome == kt.ToolOutcome("[2]", False)
    assert stopped.value.kind == "run"


def test_acall_tool_awaits_async_handlers_on_the_agents_loop() -> None:
    """Async agents await their tools; sync ones run async tools on the extension's loop."""

    async def agent(tel: kt.Telemetry) -> list[kt.ToolOutcome]:
        async with tel.session("s") as session, session.run("go") as run, run.turn() as turn:
            return [
                await turn.acall_tool("fetch", {"url": "https://example.com"}),
                await turn.acall_tool("word_count", {"text": "x y"}),
                await turn.acall_tool("fetch", {}),
            ]

    with capture() as cap:
        load(cap)
        outcomes = asyncio.run(agent(cap.telemetry))
    assert [o.is_error for o in outcomes] == [False, False, True]
    assert outcomes[1].content == "2"
