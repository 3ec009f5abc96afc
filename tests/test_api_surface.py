"""The public surface: the facade matches the documented API, and Telemetry's lifecycle keeps its promises."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry import testing

# Every name the README documents as importable from
# ``kit_telemetry``. Written out by hand: the facade must follow the design, not the reverse.
DOCUMENTED_NAMES = {
    # set-up and errors
    "configure",
    "Telemetry",
    "ConfigError",
    "KitTelemetryError",
    "UsageError",
    "EventDecodeError",
    # budgets and pricing
    "Budget",
    "BudgetExceeded",
    "BudgetStatus",
    "ModelPrice",
    # events
    "EventType",
    "SessionStartEvent",
    "SessionEndEvent",
    "AgentStartEvent",
    "AgentEndEvent",
    "TurnStartEvent",
    "TurnEndEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "TokenUsage",
    "UserInputEvent",
    "LLMUsageEvent",
    "BudgetAlertEvent",
    "UsageTotals",
    "event_from_dict",
    # intervention (design note: extensions that intervene)
    "Block",
    "Replace",
    "Transform",
    "Handled",
    "Stop",
    "Blocked",
    "LLMRequestEvent",
    "SubagentStartEvent",
    "SubagentEndEvent",
    "ErrorEvent",
    "RetryEvent",
    "ModelChangeEvent",
    "CustomEvent",
    "ToolDefinition",
    "ToolOutcome",
    "tool_schemas",
    # extensions and processors
    "ExtensionAPI",
    "ExtensionContext",
    "CommandDefinition",
    "LoadedExtension",
    "ExtensionSpanProcessor",
    "UsageAggregator",
    # context
    "attach",
    # provider usage normalisation
    "usage",
}

CONFIGURE_OPTIONS = {
    "service_name",
    "tracer_provider",
    "meter_provider",
    "exporters",
    "prometheus",
    "budgets",
    "extensions",
    "state_dir",
    "prices",
    "capture_content",
    "strict",
    "install_global",
}


def _telemetry(**options: object) -> kt.Telemetry:
    options.setdefault("prometheus", CollectorRegistry())
    return kt.configure(**options)


def _one_run(tel: kt.Telemetry, session_id: str = "s-1") -> kt.AgentEndEvent | None:
    with tel.session(session_id) as session, session.run("go", agent_name="coder") as run:
        with run.llm_call("anthropic", "claude-sonnet-4-5") as call:
            call.record_usage(input_tokens=10, output_tokens=5, cost_usd=0.01)
        with run.tool_call("bash") as tool:
            tool.set_result("ok")
    return run.end_event


# --- the facade ----------------------------------------------------------------------------


def test_all_is_sorted_and_has_no_duplicates() -> None:
    """A sorted ``__all__`` keeps the facade reviewable (house style)."""
    assert kt.__all__ == sorted(kt.__all__)
    assert len(set(kt.__all__)) == len(kt.__all__)


def test_every_name_in_all_is_importable() -> None:
    """``from kit_telemetry import *`` must never fail on a stale name."""
    for name in kt.__all__:
        assert hasattr(kt, name), name
    namespace: dict[str, object] = {}
    exec("from kit_telemetry import *", namespace)
    assert set(kt.__all__) <= set(namespace)


def test_all_contains_every_name_api_md_documents() -> None:
    """Users, examples and acceptance tests rely on these names; none may go missing."""
    missing = sorted(DOCUMENTED_NAMES - set(kt.__all__))
    assert not missing, f"documented but not exported by kit_telemetry: {missing}"


def test_budget_status_returns_kt_budget_status_items() -> None:
    """``tel.budget_status()`` returns a list of ``kt.BudgetStatus``."""
    budget = kt.Budget(name="per-session", scope="session", limit_usd=2.0, action="raise")
    tel = _telemetry(exporters=("none",), budgets=[budget])
    try:
        with (
            tel.session("s-1") as session,
            session.run("go") as run,
            run.llm_call("anthropic", "claude-sonnet-4-5") as call,
        ):
            call.record_usage(input_tokens=10, output_tokens=5, cost_usd=0.5)
        [status] = tel.budget_status()
    finally:
        tel.shutdown()
    assert (status.name, status.scope_key, status.limit) == ("per-session", "s-1", 2.0)
    assert (status.spent, status.reserved, status.remaining) == (0.5, 0.0, 1.5)
    assert status.window_end is None
    assert isinstance(status, kt.BudgetStatus)  # type: ignore[attr-defined]


def test_usage_helpers_give_record_usage_keywords() -> None:
    """``kt.usage.from_*`` output is passed straight to ``record_usage``; cached input split off."""
    payloads = {
        kt.usage.from_openai: {
            "prompt_tokens": 1100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 1000},
        },
        kt.usage.from_anthropic: {
            "input_tokens": 100,
            "output_tokens": 50,
            "cache_read_input_tokens": 1000,
        },
        kt.usage.from_gemini: {
            "prompt_token_count": 1100,
            "candidates_token_count": 50,
            "cached_content_token_count": 1000,
        },
    }
    with testing.capture() as cap:
        tel = cap.telemetry
        with tel.session("s-1") as session, session.run("go") as run:
            for convert, payload in payloads.items():
                with run.llm_call("x", "m") as call:
                    call.record_usage(**convert(payload), cost_usd=0.0)
    end = run.end_event
    assert end is not None
    assert (end.input_tokens, end.cache_read_tokens, end.output_tokens) == (300, 3000, 150)


def test_documented_keywords_are_accepted() -> None:
    """The keyword names of the documented examples are part of the contract."""
    telemetry_params = set(inspect.signature(kt.Telemetry).parameters)
    assert telemetry_params >= CONFIGURE_OPTIONS
    assert set(inspect.signature(kt.Run.llm_call).parameters) >= {
        "provider",
        "model",
        "max_tokens",
        "estimated_input_tokens",
    }
    assert set(inspect.signature(kt.Turn.tool_call).parameters) >= {
        "name",
        "call_id",
        "arguments",
    }
    assert set(inspect.signature(kt.LLMCall.record_usage).parameters) >= {
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "finish_reason",
        "response_id",
        "cost_usd",
    }
    assert set(inspect.signature(kt.ToolCall.set_result).parameters) >= {"result", "is_error"}
    for method in (
        "session",
        "wrap",
        "load_extension",
        "run_command",
        "budget_status",
        "price",
        "force_flush",
        "shutdown",
    ):
        assert callable(getattr(kt.Telemetry, method, None)), method
    for method in ("run",):
        assert callable(getattr(kt.Session, method, None)), method
    for method in ("turn", "llm_call", "tool_call", "set_response"):
        assert callable(getattr(kt.Run, method, None)), method
    assert callable(testing.capture)


def test_exception_tree() -> None:
    """Every exception derives from KitTelemetryError and the builtin it resembles."""
    assert issubclass(kt.ConfigError, (kt.KitTelemetryError, ValueError))
    assert issubclass(kt.BudgetExceeded, kt.KitTelemetryError)
    exc = kt.BudgetExceeded(
        "daily", scope_key="global", limit=50, spent=49.5, reserved=0, requested=1
    )
    assert (exc.budget, exc.limit, exc.spent) == ("daily", 50, 49.5)


# --- Telemetry's lifecycle -----------------------------------------------------------------


def test_configure_returns_a_telemetry() -> None:
    """``configure`` is sugar for ``Telemetry(...)``."""
    tel = _telemetry(exporters=("none",))
    try:
        assert isinstance(tel, kt.Telemetry)
    finally:
        tel.shutdown()


def test_telemetry_is_a_context_manager_that_shuts_down() -> None:
    """``with kt.configure(...) as tel`` yields the telemetry and flushes everything at exit."""
    exporter = InMemorySpanExporter()
    with _telemetry(exporters=(exporter,)) as tel:
        assert isinstance(tel, kt.Telemetry)
        end = _one_run(tel)
    assert end is not None
    # Leaving the block flushed the batch: every span of the run was exported.
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert "invoke_agent coder" in names
    assert len(names) == 6
    tel.shutdown()  # already shut down: a no-op, no error


def test_force_flush_and_shutdown_are_idempotent_and_shutdown_stops_export() -> None:
    """Flushing or shutting down twice never raises; spans made after shutdown are not sent."""
    exporter = InMemorySpanExporter()
    tel = _telemetry(exporters=(exporter,))
    _one_run(tel)
    assert tel.force_flush() is True
    assert tel.force_flush() is True
    exported = len(exporter.get_finished_spans())
    assert exported == 6
    tel.shutdown()
    tel.shutdown()
    end = _one_run(tel, "s-2")  # the agent still runs: telemetry never breaks it
    assert end is not None
    assert end.llm_call_count == 1
    tel.force_flush()
    tel.shutdown()
    assert len(exporter.get_finished_spans()) == exported


def test_a_given_tracer_provider_is_used_and_not_shut_down() -> None:
    """We add our processors to the user's provider; their own processors keep working after us."""
    provider = TracerProvider()
    theirs = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    ours = InMemorySpanExporter()
    tel = _telemetry(tracer_provider=provider, exporters=(ours,))
    assert tel.tracer_provider is provider
    end = _one_run(tel)
    assert end is not None
    assert end.llm_call_count == 1  # our aggregator saw the spans on their provider
    tel.force_flush()
    assert sorted(s.name for s in theirs.get_finished_spans()) == sorted(
        s.name for s in ours.get_finished_spans()
    )
    tel.shutdown()
    before_ours = len(ours.get_finished_spans())
    before_theirs = len(theirs.get_finished_spans())
    provider.get_tracer("user").start_span("their own work").end()
    _one_run(tel, "s-2")
    assert len(ours.get_finished_spans()) == before_ours
    assert len(theirs.get_finished_spans()) == before_theirs + 1 + 6
    provider.shutdown()


_GLOBAL_PROBE = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry
    import kit_telemetry as kt

    facts = {}
    before = trace.get_tracer_provider()
    facts["proxy_before"] = type(before).__name__
    given = TracerProvider()
    t1 = kt.configure(tracer_provider=given, prometheus=CollectorRegistry(), exporters=("none",))
    with t1.session("s") as s, s.run("x") as r:
        pass
    facts["after_given"] = trace.get_tracer_provider() is before
    t2 = kt.configure(prometheus=CollectorRegistry(), exporters=("none",))
    facts["after_own"] = trace.get_tracer_provider() is before
    t3 = kt.configure(prometheus=CollectorRegistry(), exporters=("none",), install_global=True)
    facts["installed_is_ours"] = trace.get_tracer_provider() is t3.tracer_provider
    print(json.dumps(facts))
    """
)


def test_global_tracer_provider_is_replaced_only_when_asked(tmp_path: Path) -> None:
    """No globals taken by force; checked in a fresh interpreter so ours stays untouched."""
    done = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROBE],
        cwd=tmp_path,  # the installed package, not a source tree in the working directory
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts == {
        "proxy_before": "ProxyTracerProvider",
        "after_given": True,
        "after_own": True,
        "installed_is_ours": True,
    }


@pytest.mark.parametrize("bad", ["nope", object(), 3])
def test_a_tracer_provider_that_is_not_an_sdk_provider_is_a_config_error(bad: object) -> None:
    """Our processors need the SDK provider; anything else is refused at start-up."""
    with pytest.raises(kt.ConfigError, match="tracer_provider"):
        _telemetry(tracer_provider=bad)


def test_a_failed_start_leaves_no_server_and_no_processor_behind(tmp_path: Path) -> None:
    """A bad extension fails configure(); the metrics port is free again and the provider untouched."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    added: list[SpanProcessor] = []

    class RecordingProvider(TracerProvider):
        def add_span_processor(self, span_processor: SpanProcessor) -> None:
            added.append(span_processor)
            super().add_span_processor(span_processor)

    provider = RecordingProvider()
    with pytest.raises(kt.ExtensionLoadError):
        kt.configure(
            tracer_provider=provider,
            prometheus=f"127.0.0.1:{port}",
            extensions=[tmp_path / "missing.py"],
        )
    assert added == []
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # would fail with EADDRINUSE if still served
