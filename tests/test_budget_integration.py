"""Budgets through the instrumentation API: admission, refusal, settlement, alerts."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.testing import capture

MODEL = "claude-sonnet-4-5"  # $3 in / $15 out per Mtok


def _call(run: kt.Run, *, out: int = 1000, max_tokens: int = 1000) -> None:
    with run.turn() as turn, turn.llm_call("anthropic", MODEL, max_tokens=max_tokens) as call:
        call.record_usage(input_tokens=1000, output_tokens=out, finish_reason="end_turn")


def test_refused_call_raises_before_the_model_and_marks_span_and_run() -> None:
    """A hard stop refuses the call up front, and the span, end event and metric show it."""
    budget = kt.Budget(name="per-session", scope="session", limit_usd=0.05, action="raise")
    model_called = 0
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        with pytest.raises(kt.BudgetExceeded) as info, tel.session("s") as session:
            with session.run("go") as run:
                for _ in range(10):  # each call costs $0.018; the 3rd reservation would exceed
                    with (
                        run.turn() as turn,
                        turn.llm_call("anthropic", MODEL, max_tokens=1000) as call,
                    ):
                        model_called += 1
                        call.record_usage(
                            input_tokens=1000, output_tokens=1000, finish_reason="end_turn"
                        )
        denied = [s for s in cap.spans() if s.attributes.get(sc.KIT_LLM_OUTCOME) == "budget_denied"]
        assert (
            cap.metric(
                "kit_llm_calls_total", provider="anthropic", model=MODEL, outcome="budget_denied"
            )
            == 1
        )
        assert (
            cap.metric("kit_llm_calls_total", provider="anthropic", model=MODEL, outcome="ok")
            == model_called
        )
    exc = info.value
    assert exc.budget == "per-session" and exc.scope_key == "s"
    assert exc.limit == pytest.approx(0.05)
    assert exc.spent == pytest.approx(0.018 * model_called)
    assert exc.spent + exc.reserved + exc.requested > exc.limit
    assert model_called == 2
    assert len(denied) == 1
    assert denied[0].status.status_code is StatusCode.ERROR
    assert denied[0].attributes[sc.KIT_BUDGET_DENIED] == "per-session"
    assert run.end_event is not None
    assert run.end_event.stop_reason == "budget_exceeded"
    assert run.end_event.llm_call_count == 2  # the refused call never reached the model


def test_warning_alerts_reach_handlers_once_per_threshold() -> None:
    """Crossing warn_at thresholds gives one budget_alert event per threshold."""
    budget = kt.Budget(
        name="soft", scope="global", limit_usd=0.10, warn_at=(0.5, 0.8), action="warn"
    )
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run:
            for _ in range(7):  # 7 x $0.018 = $0.126: crosses 50%, 80% and the limit
                _call(run)
        alerts = cap.events_of(kt.EventType.BUDGET_ALERT)
        warned = cap.metric(
            "kit_budget_alerts_total", budget="soft", kind="warning", threshold="0.5"
        )
    kinds = [(a.kind, a.threshold) for a in alerts]  # type: ignore[attr-defined]
    assert kinds[:2] == [("warning", 0.5), ("warning", 0.8)]
    assert ("exceeded", 1.0) in kinds or any(k == "exceeded" for k, _ in kinds)
    assert len([k for k in kinds if k[0] == "warning"]) == 2
    assert warned == 1
    assert run.end_event is not None and run.end_event.llm_call_count == 7  # warn never stops


def test_run_tool_limit_refuses_the_extra_tool_call() -> None:
    """max_tool_calls per run stops a runaway tool loop at the limit."""
    budget = kt.Budget(name="tool-loop", scope="run", max_tool_calls=3, action="raise")
    ran = 0
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        with pytest.raises(kt.BudgetExceeded) as info, tel.session("s") as session:
            with session.run("go") as run, run.turn() as turn:
                for _ in range(10):
                    with turn.tool_call("bash"):
                        ran += 1
    assert ran == 3
    assert info.value.unit == "tool_calls"
    assert run.end_event is not None
    assert run.end_event.stop_reason == "budget_exceeded"


def test_budget_status_reports_spent_and_remaining() -> None:
    """budget_status() lists every budget and scope key with settled spend."""
    budget = kt.Budget(name="daily", scope="global", limit_usd=1.0, window="day")
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        with tel.session("s") as session, session.run("go") as run:
            _call(run)
            _call(run, out=2000, max_tokens=2000)
        (status,) = [s for s in tel.budget_status() if s.name == "daily"]
    assert status.scope_key == "global"
    assert status.spent == pytest.approx(0.018 + 0.033)
    assert status.reserved == pytest.approx(0.0)
    assert status.remaining == pytest.approx(1.0 - 0.051)
    assert status.window_end is not None


def test_error_releases_the_reservation() -> None:
    """A call that fails before usage is released, not charged."""
    budget = kt.Budget(name="g", scope="global", limit_usd=1.0)
    with capture(budgets=[budget]) as cap:
        tel = cap.telemetry
        with pytest.raises(ConnectionError), tel.session("s") as session, session.run("go") as run:
            with run.turn() as turn, turn.llm_call("anthropic", MODEL, max_tokens=1000):
                raise ConnectionError("provider down")
        (status,) = tel.budget_status()
    assert status.spent == 0 and status.reserved == 0


def test_bad_budget_option_is_a_config_error() -> None:
    """Budgets must be a path, Budget objects or a BudgetConfig."""
    with pytest.raises(kt.ConfigError, match=r"kt\.Budget"):
        kt.Telemetry(exporters=(), budgets=["per-session"])
