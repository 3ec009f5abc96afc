"""Charges that are not tokens (``call.add_cost``) count like token cost: in the call's
cost, the run's totals, events, metrics and budgets. Money by hand from published prices."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry import semconv as sc
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.errors import UsageError
from kit_telemetry.testing import capture

LedgerFactory = Any  # the conftest fixture's type

MODEL = "claude-sonnet-4-5"  # https://www.anthropic.com/pricing : $3 / $15 per MTok
TOKENS_USD = 0.0105  # 1000 input * 3 / 1e6 + 500 output * 15 / 1e6 = 0.003 + 0.0075
SEARCH_USD = 0.01  # Anthropic web search: $10 per 1,000 searches
CALL_USD = TOKENS_USD + 2 * SEARCH_USD  # two searches: $0.0305


def searched_call(tel: kt.Telemetry, session_id: str) -> None:
    with tel.session(session_id) as session, session.run("go") as run, run.turn() as turn:
        with turn.llm_call("anthropic", MODEL, max_tokens=1_000) as call:
            call.record_usage(input_tokens=1_000, output_tokens=500)
            call.add_cost(SEARCH_USD, kind="web_search")
            call.add_cost(SEARCH_USD, kind="web_search")


def test_an_added_charge_counts_in_the_call_events_totals_and_metrics() -> None:
    """A web search billed with the call is part of its cost everywhere cost is shown."""
    with capture() as cap:
        searched_call(cap.telemetry, "s-1")
        (usage,) = cap.events_of(kt.EventType.LLM_USAGE)
        (end,) = cap.events_of(kt.EventType.AGENT_END)
        metric = cap.metric("kit_llm_cost_usd_total", provider="anthropic", model=MODEL)
        span = cap.span(f"chat {MODEL}")
    assert isinstance(usage, kt.LLMUsageEvent)
    assert usage.cost_usd == pytest.approx(CALL_USD)
    assert isinstance(end, kt.AgentEndEvent)
    assert end.cost_usd == pytest.approx(CALL_USD)
    assert metric == pytest.approx(CALL_USD)
    assert span.attributes is not None
    assert span.attributes[sc.KIT_USAGE_COST_USD] == pytest.approx(CALL_USD)
    assert span.attributes[sc.KIT_USAGE_EXTRA_COST_USD] == pytest.approx(2 * SEARCH_USD)
    assert span.attributes[sc.KIT_USAGE_EXTRA_COST_KINDS] == ("web_search",)


def test_an_added_charge_counts_against_budgets(ledger_factory: LedgerFactory) -> None:
    """Budgets see the whole cost of the call, searches included."""
    name = f"cap-{uuid.uuid4().hex[:8]}"
    config = BudgetConfig(budgets=(Budget(name=name, limit_usd=1.0),), ledger=ledger_factory.url)
    with capture(budgets=config) as cap:
        searched_call(cap.telemetry, f"s-{uuid.uuid4().hex[:8]}")
        spent = sum(s.spent for s in cap.telemetry.budget_status() if s.name == name)
    assert spent == pytest.approx(CALL_USD)


def test_a_charge_without_token_usage_still_counts() -> None:
    """A call that only reports a fee (no tokens) costs that fee."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.turn() as turn, turn.llm_call("anthropic", MODEL) as call:
                call.add_cost(0.25, kind="image")
        (usage,) = cap.events_of(kt.EventType.LLM_USAGE)
    assert isinstance(usage, kt.LLMUsageEvent)
    assert usage.cost_usd == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("usd", "kind"), [(-0.01, "web_search"), (float("nan"), "x"), (True, "x"), (0.01, "")]
)
def test_a_bad_charge_is_a_usage_error_when_strict(usd: object, kind: object) -> None:
    """Strict mode names the mistake."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.turn() as turn, turn.llm_call("anthropic", MODEL) as call:
                with pytest.raises(UsageError, match="add_cost"):
                    call.add_cost(usd, kind=kind)  # type: ignore[arg-type]


def test_a_bad_charge_is_ignored_and_counted_when_lenient() -> None:
    """Lenient mode never raises into the agent; the call keeps its token cost."""
    with capture(strict=False) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.turn() as turn, turn.llm_call("anthropic", MODEL) as call:
                call.record_usage(input_tokens=1_000, output_tokens=500)
                call.add_cost(-1.0, kind="web_search")
        (usage,) = cap.events_of(kt.EventType.LLM_USAGE)
        reported = cap.metric("kit_telemetry_internal_errors_total", component="api")
    assert isinstance(usage, kt.LLMUsageEvent)
    assert usage.cost_usd == pytest.approx(TOKENS_USD)
    assert reported is not None and reported >= 1


# --- a tool call's own cost ---------------------------------------------------------------

# Brave Search API, https://brave.com/search/api/ : $5 per 1,000 queries (Base AI plan).
QUERY_USD = 0.005


def tool_run(tel: kt.Telemetry, session_id: str) -> None:
    with tel.session(session_id) as session, session.run("go") as run, run.turn() as turn:
        with turn.llm_call("anthropic", MODEL, max_tokens=1_000) as call:
            call.record_usage(input_tokens=1_000, output_tokens=500)
        with turn.tool_call("search", arguments={"q": "x"}) as tool:
            tool.add_cost(QUERY_USD, kind="web_search")
            tool.add_cost(QUERY_USD, kind="web_search")


def test_a_tools_cost_counts_in_its_event_and_the_totals() -> None:
    """A paid tool's money is part of what the run and the session cost."""
    with capture() as cap:
        tool_run(cap.telemetry, "s-1")
        (result,) = cap.events_of(kt.EventType.TOOL_RESULT)
        (run_end,) = cap.events_of(kt.EventType.AGENT_END)
        (turn_end,) = cap.events_of(kt.EventType.TURN_END)
        span = cap.span("execute_tool search")
    assert isinstance(result, kt.ToolResultEvent)
    assert result.cost_usd == pytest.approx(2 * QUERY_USD)
    assert isinstance(run_end, kt.AgentEndEvent) and isinstance(turn_end, kt.TurnEndEvent)
    # 0.0105 for the tokens + 0.01 for two queries
    assert run_end.cost_usd == pytest.approx(TOKENS_USD + 2 * QUERY_USD)
    assert turn_end.cost_usd == pytest.approx(TOKENS_USD + 2 * QUERY_USD)
    assert span.attributes is not None
    assert span.attributes[sc.KIT_USAGE_COST_USD] == pytest.approx(2 * QUERY_USD)


def test_a_tools_cost_counts_against_usd_budgets(ledger_factory: LedgerFactory) -> None:
    """Budgets see the tool's money as well as the model's."""
    name = f"cap-{uuid.uuid4().hex[:8]}"
    config = BudgetConfig(budgets=(Budget(name=name, limit_usd=1.0),), ledger=ledger_factory.url)
    with capture(budgets=config) as cap:
        tool_run(cap.telemetry, f"s-{uuid.uuid4().hex[:8]}")
        spent = sum(s.spent for s in cap.telemetry.budget_status() if s.name == name)
    assert spent == pytest.approx(TOKENS_USD + 2 * QUERY_USD)


def test_a_tool_without_cost_has_none() -> None:
    """Free tools stay free: no cost on the event, nothing added."""
    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.tool_call("read_file", arguments={"path": "a"}):
                pass
        (result,) = cap.events_of(kt.EventType.TOOL_RESULT)
    assert isinstance(result, kt.ToolResultEvent) and result.cost_usd is None
