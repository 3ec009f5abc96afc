"""``max_repeats``: a run-scoped loop guard that refuses the same tool call with the same
arguments once it was made N times, as an exhausted budget refuses: ``BudgetExceeded``
naming the rule, an ``exceeded`` alert and a ``denied`` decision."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.gate import call_fingerprint
from kit_telemetry.errors import ConfigError
from kit_telemetry.events import BudgetAlertEvent
from kit_telemetry.testing import capture

LedgerFactory = Any  # the conftest fixture's type


def guard(url: str, name: str, repeats: int = 3, action: str = "raise") -> BudgetConfig:
    return BudgetConfig(
        budgets=(Budget(name=name, scope="run", max_repeats=repeats, action=action),), ledger=url
    )


def test_the_call_after_n_identical_ones_is_refused_naming_the_rule(
    ledger_factory: LedgerFactory,
) -> None:
    """Three searches for the same query pass; the fourth stops the run."""
    name = f"no-loops-{uuid.uuid4().hex[:8]}"
    with capture(budgets=guard(ledger_factory.url, name)) as cap:
        with cap.telemetry.session(f"s-{uuid.uuid4().hex[:8]}") as session:
            with session.run("go") as run:
                for _ in range(3):
                    with run.tool_call("search", arguments={"q": "weather", "n": 5}):
                        pass
                with run.tool_call("search", arguments={"q": "news", "n": 5}):
                    pass  # other arguments: another call
                with pytest.raises(kt.BudgetExceeded) as refused:
                    with run.tool_call("search", arguments={"n": 5, "q": "weather"}):
                        pytest.fail("the repeated call ran")
        alerts = [
            e for e in cap.events_of(kt.EventType.BUDGET_ALERT) if isinstance(e, BudgetAlertEvent)
        ]
        (end,) = cap.events_of(kt.EventType.AGENT_END)
        denied = cap.metric("kit_budget_decisions_total", budget=name, decision="denied")
    assert refused.value.budget == name
    assert refused.value.unit == "repeats"
    assert (refused.value.spent, refused.value.limit) == (3, 3)
    assert [(a.budget, a.kind) for a in alerts] == [(name, "exceeded")]
    assert denied == 1.0
    assert isinstance(end, kt.AgentEndEvent) and end.stop_reason == "budget_exceeded"


def test_the_guard_counts_per_run(ledger_factory: LedgerFactory) -> None:
    """A new run may make the same call again: the rule is about one run repeating itself."""
    name = f"no-loops-{uuid.uuid4().hex[:8]}"
    with capture(budgets=guard(ledger_factory.url, name, repeats=1)) as cap:
        with cap.telemetry.session(f"s-{uuid.uuid4().hex[:8]}") as session:
            for _ in range(3):
                with session.run("go") as run, run.tool_call("search", arguments={"q": "x"}):
                    pass
        results = cap.events_of(kt.EventType.TOOL_RESULT)
    assert len(results) == 3


def test_a_warn_guard_admits_and_alerts(ledger_factory: LedgerFactory) -> None:
    """action = "warn": the loop is reported, not stopped."""
    name = f"no-loops-{uuid.uuid4().hex[:8]}"
    with capture(budgets=guard(ledger_factory.url, name, repeats=2, action="warn")) as cap:
        with cap.telemetry.session(f"s-{uuid.uuid4().hex[:8]}") as session:
            with session.run("go") as run:
                for _ in range(4):
                    with run.tool_call("search", arguments={"q": "x"}):
                        pass
        alerts = [
            e for e in cap.events_of(kt.EventType.BUDGET_ALERT) if isinstance(e, BudgetAlertEvent)
        ]
    assert [(a.budget, a.kind) for a in alerts] == [(name, "exceeded")]


def test_identical_calls_share_a_fingerprint_and_others_do_not() -> None:
    """Key order does not matter; the tool, values and nesting do."""
    same = call_fingerprint("search", {"q": "x", "opts": {"a": 1, "b": [1, 2]}})
    assert same == call_fingerprint("search", {"opts": {"b": [1, 2], "a": 1}, "q": "x"})
    assert same != call_fingerprint("fetch", {"q": "x", "opts": {"a": 1, "b": [1, 2]}})
    assert same != call_fingerprint("search", {"q": "x", "opts": {"a": 1, "b": [2, 1]}})


def test_max_repeats_needs_scope_run() -> None:
    """A loop is a run repeating itself: any other scope is a configuration mistake."""
    with pytest.raises(ConfigError, match="max_repeats counts calls per agent run"):
        Budget(name="no-loops", scope="session", max_repeats=3)


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_a_bad_max_repeats_is_a_config_error(value: object) -> None:
    """The limit must be a positive integer."""
    with pytest.raises(ConfigError, match=rf"max_repeats {value!r} must be an integer"):
        Budget(name="no-loops", scope="run", max_repeats=value)  # type: ignore[arg-type]


def test_the_same_llm_request_n_times_is_refused(ledger_factory: LedgerFactory) -> None:
    """An agent sending the same messages again and again is stopped before the model
    is called; a changed request passes."""
    name = f"no-loops-{uuid.uuid4().hex[:8]}"
    same = [{"role": "user", "content": "What is the weather?"}]
    with capture(budgets=guard(ledger_factory.url, name, repeats=2)) as cap:
        with cap.telemetry.session(f"s-{uuid.uuid4().hex[:8]}") as session:
            with session.run("go") as run:
                for _ in range(2):
                    with run.turn() as turn:
                        with turn.llm_call("anthropic", "claude-sonnet-4-5", request=same) as call:
                            call.record_usage(input_tokens=10, output_tokens=5)
                with run.turn() as turn:
                    changed = [*same, {"role": "assistant", "content": "Sunny."}]
                    with turn.llm_call("anthropic", "claude-sonnet-4-5", request=changed):
                        pass
                with pytest.raises(kt.BudgetExceeded) as refused:
                    with run.turn() as turn:
                        with turn.llm_call("anthropic", "claude-sonnet-4-5", request=same):
                            pytest.fail("the repeated request reached the model")
    assert (refused.value.budget, refused.value.unit) == (name, "repeats")


def test_llm_calls_without_a_request_are_not_guarded(ledger_factory: LedgerFactory) -> None:
    """Nothing to compare, nothing refused: the guard only sees requests it is given."""
    name = f"no-loops-{uuid.uuid4().hex[:8]}"
    with capture(budgets=guard(ledger_factory.url, name, repeats=1)) as cap:
        with cap.telemetry.session(f"s-{uuid.uuid4().hex[:8]}") as session:
            with session.run("go") as run:
                for _ in range(3):
                    with run.turn() as turn, turn.llm_call("anthropic", "claude-sonnet-4-5"):
                        pass
        calls = cap.events_of(kt.EventType.LLM_USAGE)
    assert len(calls) == 3


def test_arguments_that_cannot_be_compared_are_not_an_error_in_the_agent() -> None:
    """A circular structure cannot be fingerprinted: the call runs, the failure is counted."""
    circular: dict[str, object] = {}
    circular["self"] = circular
    with capture(budgets=guard("memory", "no-loops", repeats=1), strict=False) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            for _ in range(2):
                with run.tool_call("search", arguments=circular):
                    pass
        reported = cap.metric("kit_telemetry_internal_errors_total", component="budget")
    assert reported == 2.0
