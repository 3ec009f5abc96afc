"""Every span attribute and metric name we emit is a current GenAI (or OTel) name, or ours.

The registry is the installed ``opentelemetry-semantic-conventions`` package, read as data:
its attribute constants and the deprecation note under each. Since the GenAI conventions
moved to their own repository, the package marks every GenAI name "Deprecated: Moved to
the ... semantic-conventions-genai repository": that is a move, not a deprecation, so only
names whose note says "Replaced by" or "Removed" count as deprecated here.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.metrics import CATALOGUE
from kit_telemetry.testing import Capture, capture

ATTRIBUTE_MODULES = (
    "opentelemetry.semconv._incubating.attributes.gen_ai_attributes",
    "opentelemetry.semconv.attributes.server_attributes",
    "opentelemetry.semconv.attributes.error_attributes",
)
METRIC_MODULES = ("opentelemetry.semconv._incubating.metrics.gen_ai_metrics",)


def registry_names(module_names: tuple[str, ...]) -> dict[str, bool]:
    """Name -> deprecated, for every string constant of the modules (read from source)."""
    names: dict[str, bool] = {}
    for module_name in module_names:
        source = Path(importlib.import_module(module_name).__file__ or "").read_text("utf-8")
        body = ast.parse(source).body
        for statement, following in zip(body, [*body[1:], None], strict=True):
            if not (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                continue
            note = ""
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                note = following.value.value
            deprecated = "Replaced by" in note or "Removed" in note
            names[statement.value.value] = deprecated
    return names


def kit_extension_names() -> set[str]:
    """Our documented ``kit.*`` names: the constants of semconv.py, totals included."""
    names = {
        value for value in vars(sc).values() if isinstance(value, str) and value.startswith("kit.")
    }
    for prefix in (sc.KIT_RUN_PREFIX, sc.KIT_SESSION_PREFIX):
        names.update(sc.total_attribute(prefix, field) for field in sc.TOTAL_FIELDS)
    return names


def attribute_keys(spans: list[ReadableSpan]) -> set[str]:
    keys: set[str] = set()
    for span in spans:
        keys.update(span.attributes or {})
        for event in span.events:
            keys.update(event.attributes or {})
    return keys


def otel_metrics(reader: InMemoryMetricReader) -> Iterator[tuple[str, set[str]]]:
    """(instrument name, attribute keys of its points) for every metric the reader holds."""
    data = reader.get_metrics_data()
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                keys: set[str] = set()
                for point in metric.data.data_points:
                    keys.update(point.attributes or {})
                yield metric.name, keys


def full_run(cap: Capture) -> None:
    """A run through every public option that adds an attribute."""
    tel = cap.telemetry
    with (
        tel.session("conv-1", user="ada") as session,
        session.run(
            [{"role": "user", "content": "fix the failing test"}],
            agent_name="coder",
            agent_id="agent-7",
            system_instructions="You are a careful engineer.",
        ) as run,
    ):
        with run.turn() as turn:
            with turn.llm_call(
                "anthropic",
                "claude-sonnet-4-5",
                max_tokens=1024,
                server_address="api.anthropic.com",
                server_port=443,
            ) as call:
                call.record_usage(
                    input_tokens=1200,
                    output_tokens=300,
                    cache_read_tokens=4000,
                    cache_write_tokens=100,
                    reasoning_tokens=50,
                    finish_reason="tool_use",
                    response_id="msg_01",
                    response_model="claude-sonnet-4-5-20250929",
                )
                call.set_messages(
                    [{"role": "user", "content": [{"type": "text", "text": "fix it"}]}],
                    [{"role": "assistant", "parts": [{"type": "tool_call", "name": "bash"}]}],
                    system_instructions="You are a careful engineer.",
                )
            with turn.tool_call(
                "bash", call_id="toolu_01", arguments={"cmd": "pytest"}, tool_type="function"
            ) as tool:
                tool.set_result("1 failed", is_error=True)
        run.set_response("Fixed: the assertion compared the wrong field.")


@pytest.fixture
def emitted() -> Iterator[tuple[Capture, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    with capture(
        capture_content=True, meter_provider=MeterProvider(metric_readers=[reader])
    ) as cap:
        full_run(cap)
        yield cap, reader


def test_the_registry_reader_tells_moved_names_from_deprecated_ones() -> None:
    """The checks below are only as good as this reader: moved is current, replaced is not."""
    registry = registry_names(ATTRIBUTE_MODULES)
    assert registry[sc.GEN_AI_PROVIDER_NAME] is False
    assert registry[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] is False
    assert registry[sc.SERVER_ADDRESS] is False and registry[sc.ERROR_TYPE] is False
    assert registry[sc.GEN_AI_SYSTEM] is True
    assert registry[sc.GEN_AI_USAGE_PROMPT_TOKENS] is True
    assert sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS not in registry
    assert registry_names(METRIC_MODULES)["gen_ai.client.operation.duration"] is False


def test_every_span_attribute_is_a_current_convention_name_or_a_documented_kit_name(
    emitted: tuple[Capture, InMemoryMetricReader],
) -> None:
    """Backends key dashboards on these names: a deprecated or made-up one silently breaks them."""
    cap, _ = emitted
    registry = registry_names(ATTRIBUTE_MODULES)
    kit = kit_extension_names()
    keys = attribute_keys(cap.spans())
    assert {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_AGENT_ID,
        sc.GEN_AI_RESPONSE_MODEL,
        sc.GEN_AI_TOOL_TYPE,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        sc.SERVER_ADDRESS,
        sc.SERVER_PORT,
    } <= keys
    deprecated = sorted(k for k in keys if registry.get(k))
    unknown = sorted(k for k in keys if k not in registry and k not in kit)
    assert deprecated == []
    assert unknown == []


def test_every_metric_and_metric_attribute_is_a_convention_name_or_a_documented_kit_name(
    emitted: tuple[Capture, InMemoryMetricReader],
) -> None:
    """OTLP metric names and attributes follow the same registry; Prometheus names the catalogue."""
    cap, reader = emitted
    metric_registry = registry_names(METRIC_MODULES)
    attributes = registry_names(ATTRIBUTE_MODULES)
    catalogue_otel = {spec.otel_name: spec for spec in CATALOGUE}
    names = dict(otel_metrics(reader))
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.invoke_agent.duration",
        "gen_ai.execute_tool.duration",
    } <= set(names)
    for name, keys in names.items():
        assert name in catalogue_otel, name
        if name.startswith("gen_ai."):
            assert (
                metric_registry.get(name) is False or name in sc.GENAI_SPEC_NAMES_NEWER_THAN_PACKAGE
            ), name
            assert all(attributes.get(key) is False for key in keys), (name, keys)
        else:
            assert name.startswith("kit."), name
            assert all(not key.startswith("gen_ai.") for key in keys), (name, keys)
    scraped = {family.name for family in cap.registry.collect()}
    catalogue_prometheus = {spec.name.removesuffix("_total") for spec in CATALOGUE}
    assert scraped == catalogue_prometheus


def test_the_run_span_is_an_invoke_agent_span_with_its_provider() -> None:
    """gen_ai.provider.name is required on invoke_agent: given, or the first call's provider."""
    with capture() as cap:
        tel = cap.telemetry
        with tel.session("s") as session:
            with session.run("hi", agent_name="given", provider="openai"):
                pass
            with session.run("hi", agent_name="inferred") as run:
                with run.llm_call("anthropic", "claude-sonnet-4-5") as call:
                    call.record_usage(input_tokens=1, output_tokens=1)
            with session.run("hi", agent_name="no-calls"):
                pass
        providers = {
            name: cap.span(f"invoke_agent {name}").attributes[sc.GEN_AI_PROVIDER_NAME]
            for name in ("given", "inferred", "no-calls")
        }
    assert providers == {"given": "openai", "inferred": "anthropic", "no-calls": "_OTHER"}
    duration = "gen_ai_invoke_agent_duration_seconds_count"
    assert (
        cap.metric(
            duration,
            gen_ai_operation_name="invoke_agent",
            gen_ai_provider_name="anthropic",
            gen_ai_agent_name="inferred",
            error_type="",
        )
        == 1
    )


def test_content_attributes_hold_the_conventions_json_shapes(
    emitted: tuple[Capture, InMemoryMetricReader],
) -> None:
    """Messages are role/parts JSON, so GenAI-aware backends render the conversation."""
    cap, _ = emitted
    run = cap.span("invoke_agent coder").attributes
    assert json.loads(run[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "fix the failing test"}]}
    ]
    assert json.loads(run[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are a careful engineer."}
    ]
    assert json.loads(run[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Fixed: the assertion compared the wrong field."}
            ],
            "finish_reason": "stop",
        }
    ]
    assert sc.KIT_RUN_RESPONSE not in run
    chat = cap.span("chat claude-sonnet-4-5").attributes
    assert json.loads(chat[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "fix it"}]}
    ]
    assert json.loads(chat[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "bash"}],
            "finish_reason": "tool_use",
        }
    ]
    assert sc.GEN_AI_SYSTEM_INSTRUCTIONS in chat


def test_llm_call_messages_stay_off_the_span_without_content_capture() -> None:
    """set_messages is safe to call always: without capture_content nothing is recorded."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("hi") as run:
            with run.llm_call("openai", "gpt-4o") as call:
                call.set_messages("the prompt", "the answer", system_instructions="be brief")
        chat = cap.span("chat gpt-4o").attributes
    assert not {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    } & set(chat)


def test_capture_content_hook_rewrites_or_drops_each_piece_of_content() -> None:
    """A redaction hook sees the content and where it goes; None keeps it off the span."""
    seen: list[tuple[str, str]] = []

    def redact(content: str, where: str) -> str | None:
        seen.append((content, where))
        if where == sc.GEN_AI_TOOL_CALL_RESULT:
            return None
        return content.replace("sk-secret", "[key]")

    with capture(capture_content=redact) as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("use sk-secret", agent_name="a") as run:
            with run.tool_call("login", arguments={"key": "sk-secret"}) as tool:
                tool.set_result("token sk-secret")
            run.set_response("done")
        run_span = cap.span("invoke_agent a").attributes
        tool_span = cap.span("execute_tool login").attributes
    assert "sk-secret" not in json.dumps(dict(run_span)) + json.dumps(dict(tool_span))
    assert json.loads(run_span[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "use [key]"
    assert tool_span[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"key": "[key]"}'
    assert sc.GEN_AI_TOOL_CALL_RESULT not in tool_span
    assert {where for _, where in seen} == {
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_TOOL_CALL_ARGUMENTS,
        sc.GEN_AI_TOOL_CALL_RESULT,
    }


def test_a_failing_hook_drops_the_content_and_is_counted() -> None:
    """A redactor that raises must not let the unredacted text through, nor break the agent."""

    def broken(content: str, where: str) -> str | None:
        raise RuntimeError("redactor bug")

    with capture(capture_content=broken, strict=False) as cap:
        with cap.telemetry.session("s") as session, session.run("secret", agent_name="a"):
            pass
        run_span = cap.span("invoke_agent a").attributes
    assert sc.GEN_AI_INPUT_MESSAGES not in run_span
    assert cap.metric("kit_telemetry_internal_errors_total", component="capture_content") == 1


@pytest.mark.parametrize("how", ["option", "env"])
def test_legacy_names_add_the_older_names_beside_the_current_ones(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backends that still read gen_ai.system or prompt_tokens can ask for them too."""
    options: dict[str, Any] = {"capture_content": True}
    if how == "option":
        options["legacy_names"] = True
    else:
        monkeypatch.setenv("KIT_TELEMETRY_LEGACY_NAMES", "true")
    with capture(**options) as cap:
        with cap.telemetry.session("s") as session, session.run("hi", agent_name="a") as run:
            with run.llm_call("openai", "gpt-4o") as call:
                call.record_usage(input_tokens=10, output_tokens=5, cache_read_tokens=2)
            run.set_response("bye")
        llm = cap.span("chat gpt-4o").attributes
        run_span = cap.span("invoke_agent a")
    assert llm[sc.GEN_AI_SYSTEM] == llm[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert llm[sc.GEN_AI_USAGE_PROMPT_TOKENS] == llm[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert llm[sc.GEN_AI_USAGE_COMPLETION_TOKENS] == 5
    assert run_span.attributes[sc.KIT_RUN_RESPONSE] == "bye"
    assert sc.GEN_AI_OUTPUT_MESSAGES in run_span.attributes
    (event,) = [e for e in run_span.events if e.name == sc.EVENT_USER_INPUT]
    assert (event.attributes or {})[sc.EVENT_USER_INPUT_TEXT] == "hi"


def test_without_legacy_names_no_older_name_is_written() -> None:
    """By default only current names go out (the registry check above would flag the rest)."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("hi", agent_name="a") as run:
            with run.llm_call("openai", "gpt-4o") as call:
                call.record_usage(input_tokens=10, output_tokens=5)
        keys = attribute_keys(cap.spans())
    assert not keys & {
        sc.GEN_AI_SYSTEM,
        sc.GEN_AI_USAGE_PROMPT_TOKENS,
        sc.GEN_AI_USAGE_COMPLETION_TOKENS,
    }


def test_tool_type_reaches_the_span_and_the_execute_tool_metric() -> None:
    """gen_ai.tool.type given to tool_call labels gen_ai.execute_tool.duration too."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("hi", agent_name="a") as run:
            with run.tool_call("search", tool_type="datastore"):
                pass
        assert cap.span("execute_tool search").attributes[sc.GEN_AI_TOOL_TYPE] == "datastore"
        count = cap.metric(
            "gen_ai_execute_tool_duration_seconds_count",
            gen_ai_operation_name="execute_tool",
            gen_ai_tool_name="search",
            gen_ai_tool_type="datastore",
            error_type="",
        )
    assert count == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("server_port", 0), ("server_port", "443"), ("server_address", "")],
)
def test_bad_server_options_are_usage_errors_when_strict(option: str, value: object) -> None:
    """A wrong endpoint option names field and value instead of writing a bad attribute."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("hi") as run:
            with pytest.raises(kt.UsageError, match=option):
                run.llm_call("openai", "gpt-4o", **{option: value})
