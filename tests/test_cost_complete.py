"""A run with an unpriced call never reports its cost as a plain $0.

One run makes a priced call (gpt-4o at OpenAI's published $2.50 / $10.00 per million input /
output tokens) and a call to a model no price table knows. Its cost is the priced call's,
flagged incomplete, in events, spans, metrics, the console line and the report.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from kit_telemetry import semconv
from kit_telemetry.cli import main
from kit_telemetry.events import (
    AgentEndEvent,
    EventType,
    SessionEndEvent,
    TurnEndEvent,
    UsageTotals,
    event_from_dict,
)
from kit_telemetry.exporters.console import format_run_line
from kit_telemetry.extensions.api import ExtensionAPI
from kit_telemetry.pricing import ModelPrice
from kit_telemetry.telemetry import Telemetry
from kit_telemetry.testing import Capture, capture

PRICED = "gpt-4o"
UNKNOWN = "kit-test-model-without-a-price"
INPUT_PER_MTOK, OUTPUT_PER_MTOK = 2.50, 10.00  # OpenAI's published gpt-4o prices
PRICED_IN, PRICED_OUT = 1_200, 300
# By hand: 1,200 * $2.50 / 1M + 300 * $10.00 / 1M = $0.003 + $0.003.
PRICED_COST_USD = PRICED_IN * INPUT_PER_MTOK / 1e6 + PRICED_OUT * OUTPUT_PER_MTOK / 1e6
PRICES = {PRICED: ModelPrice(input_per_mtok=INPUT_PER_MTOK, output_per_mtok=OUTPUT_PER_MTOK)}


def _one_priced_one_unpriced(telemetry: Telemetry) -> None:
    with (
        telemetry.session("s-partial") as session,
        session.run("go") as run,
        run.turn() as turn,
    ):
        with turn.llm_call("openai", PRICED) as call:
            call.record_usage(input_tokens=PRICED_IN, output_tokens=PRICED_OUT)
        with turn.llm_call("openai", UNKNOWN) as call:
            call.record_usage(input_tokens=500, output_tokens=50)


def _end(cap: Capture, event_type: EventType) -> AgentEndEvent | TurnEndEvent | SessionEndEvent:
    (event,) = cap.events_of(event_type)
    assert isinstance(event, (AgentEndEvent, TurnEndEvent, SessionEndEvent))
    return event


def test_run_with_an_unpriced_call_has_an_incomplete_cost_everywhere() -> None:
    """End events, span attributes and the console line flag the cost as partial, not $0."""
    usage: list[UsageTotals] = []

    def setup(api: ExtensionAPI) -> None:
        api.on(EventType.AGENT_END, lambda event, ctx: usage.append(ctx.usage))

    with capture(prices=PRICES) as cap:
        cap.telemetry.extension_processor.load_setup("usage_probe", setup)
        _one_priced_one_unpriced(cap.telemetry)
        # What extensions see of the session so far says the same.
        assert [(u.cost_complete, u.unpriced_call_count) for u in usage] == [(False, 1)]
        run_end = _end(cap, EventType.AGENT_END)
        for end in (run_end, _end(cap, EventType.TURN_END), _end(cap, EventType.SESSION_END)):
            assert end.cost_complete is False, end.type
            assert end.unpriced_call_count == 1
            assert abs(end.cost_usd - PRICED_COST_USD) < 1e-12

        (run_span,) = [
            s
            for s in cap.spans()
            if (s.attributes or {}).get(semconv.GEN_AI_OPERATION_NAME) == semconv.OP_INVOKE_AGENT
        ]
        attrs = dict(run_span.attributes or {})
        assert attrs[semconv.KIT_RUN_COST_COMPLETE] is False
        line = format_run_line(attrs)
        assert "≥$0.0060 (+1 unpriced call)" in line
        assert "$0.0000" not in line

        # The run's partial cost is left out of the run-cost histogram; the call is counted.
        assert cap.metric("kit_llm_unpriced_calls_total", provider="openai", model=UNKNOWN) == 1
        assert cap.metric("kit_agent_run_cost_usd_count", agent=run_end.agent_name) == 0
        assert cap.metric("kit_agent_run_duration_seconds_count", agent=run_end.agent_name) == 1


def test_run_with_only_priced_calls_has_a_complete_cost_and_is_observed() -> None:
    """The flag is True and the histogram observes the run when every call had a price."""
    with capture(prices=PRICES) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run, run.turn() as turn:
            with turn.llm_call("openai", PRICED) as call:
                call.record_usage(input_tokens=PRICED_IN, output_tokens=PRICED_OUT)
        end = _end(cap, EventType.AGENT_END)
        assert (end.cost_complete, end.unpriced_call_count) == (True, 0)
        observed = sum(
            s.value
            for m in cap.registry.collect()
            for s in m.samples
            if s.name == "kit_agent_run_cost_usd_sum"
        )
        assert abs(observed - PRICED_COST_USD) < 1e-12


def test_old_event_dicts_without_the_flag_derive_it_from_the_unpriced_count() -> None:
    """A dict written before cost_complete existed decodes honestly, not as complete."""
    partial = AgentEndEvent(
        session_id="s",
        timestamp_ns=1,
        agent_name="a",
        cost_usd=0.5,
        unpriced_call_count=2,
        cost_complete=False,
    ).to_dict()
    assert partial["cost_complete"] is False
    assert event_from_dict(partial) == AgentEndEvent(
        session_id="s",
        timestamp_ns=1,
        agent_name="a",
        cost_usd=0.5,
        unpriced_call_count=2,
        cost_complete=False,
    )
    old = {k: v for k, v in partial.items() if k != "cost_complete"}
    decoded = event_from_dict(old)
    assert isinstance(decoded, AgentEndEvent) and decoded.cost_complete is False
    old_complete = AgentEndEvent(
        session_id="s", timestamp_ns=1, agent_name="a", cost_usd=0.5
    ).to_dict()
    del old_complete["cost_complete"]
    decoded = event_from_dict(old_complete)
    assert isinstance(decoded, AgentEndEvent) and decoded.cost_complete is True


def _report(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_report_of_an_otlp_json_file_shows_the_partial_cost(tmp_path: Path) -> None:
    """Text writes ≥ and 'unpriced', --json says cost_complete false, from a real trace file."""
    path = tmp_path / "traces.jsonl"
    console = io.StringIO()
    telemetry = Telemetry(
        tracer_provider=TracerProvider(),
        prometheus=CollectorRegistry(),
        exporters=[f"otlp-json:{path}", "console"],
        console_stream=console,
        prices=PRICES,
        strict=True,
    )
    try:
        _one_priced_one_unpriced(telemetry)
    finally:
        telemetry.shutdown()
    assert "≥$0.0060 (+1 unpriced call)" in console.getvalue()

    code, text, err = _report(str(path))
    assert (code, err) == (0, "")
    assert f"≥{PRICED_COST_USD:.6f}" in text
    assert "unpriced" in text  # the unknown model's row in the cost-by-model table
    model_rows = [line for line in text.splitlines() if UNKNOWN in line]
    assert model_rows and all("0.000000" not in line for line in model_rows)

    code, out, err = _report(str(path), "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["totals"]["cost_complete"] is False
    assert doc["totals"]["unpriced_call_count"] == 1
    assert abs(doc["totals"]["cost_usd"] - PRICED_COST_USD) < 1e-12
    (session,) = doc["sessions"]
    (run,) = session["runs"]
    assert run["totals"]["cost_complete"] is False
    assert not any("cost_complete" in w for w in doc["warnings"] + session["warnings"])
