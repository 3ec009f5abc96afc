"""BudgetEnforcer: admission, settlement, release, alerts, scopes, windows and ledger failures."""

from __future__ import annotations

import logging
import math
import pickle
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.memory import MemoryLedger
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.status import BudgetStatus
from kit_telemetry.errors import BudgetExceeded, LedgerError
from kit_telemetry.events import BudgetAlertEvent

SCOPE = CallScope(
    session_id="s-1",
    run_id="run-1",
    user="ada",
    provider="anthropic",
    model="claude-sonnet-4-5",
    agent="coder",
    attributes={"team": "infra"},
)


@dataclass
class RecordingMetrics:
    """Implements the BudgetMetrics protocol by remembering every call."""

    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)

    def _add(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    def set_budget_limit(self, budget: str, unit: str, limit: float) -> None:
        self._add("limit", budget, unit, limit)

    def set_budget_usage(
        self, budget: str, scope_key: str | None, spent_usd: float, reserved_usd: float
    ) -> None:
        self._add("usage", budget, scope_key, spent_usd, reserved_usd)

    def set_budget_max_utilization(self, budget: str, ratio: float) -> None:
        self._add("utilization", budget, ratio)

    def set_budget_window_end(self, budget: str, timestamp_s: float) -> None:
        self._add("window_end", budget, timestamp_s)

    def record_budget_decision(self, budget: str, decision: str) -> None:
        self._add("decision", budget, decision)

    def record_budget_alert(self, budget: str, kind: str, threshold: str) -> None:
        self._add("alert", budget, kind, threshold)

    def declare_budget_counters(self, budget: str, alerts: Sequence[tuple[str, str]]) -> None:
        self._add("declare", budget, tuple(alerts))

    def record_internal_error(self, component: str) -> None:
        self._add("internal_error", component)

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [args for n, args in self.calls if n == name]


def make(
    *budgets: Budget,
    clock,  # type: ignore[no-untyped-def]
    ledger=None,  # type: ignore[no-untyped-def]
    on_ledger_error: str = "allow",
    **kwargs,  # type: ignore[no-untyped-def]
) -> tuple[BudgetEnforcer, list[BudgetAlertEvent], RecordingMetrics]:
    alerts: list[BudgetAlertEvent] = []
    metrics = RecordingMetrics()
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=budgets, on_ledger_error=on_ledger_error),
        ledger=ledger if ledger is not None else MemoryLedger(),
        clock=clock,
        on_alert=alerts.append,
        metrics=metrics,
        **kwargs,
    )
    return enforcer, alerts, metrics


def call(
    enforcer: BudgetEnforcer,
    cost: float,
    *,
    worst: float | None = None,
    scope: CallScope = SCOPE,
    key=None,
) -> None:  # type: ignore[no-untyped-def]
    admission = enforcer.admit_llm_call(
        scope, worst_case_usd=cost if worst is None else worst, worst_case_tokens=1000
    )
    enforcer.settle(admission, cost_usd=cost, tokens=100, idempotency_key=key)


def test_refuses_the_call_that_would_exceed_with_budget_exceeded(clock) -> None:  # type: ignore[no-untyped-def]
    """A raise budget refuses before the model is called, naming budget, key and figures."""
    enforcer, _, metrics = make(
        Budget(name="per-session", scope="session", limit_usd=1.0), clock=clock
    )
    call(enforcer, 0.4)
    held = enforcer.admit_llm_call(SCOPE, worst_case_usd=0.5, worst_case_tokens=10)
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.2, worst_case_tokens=10)
    exc = info.value
    assert (exc.budget, exc.scope_key, exc.unit) == ("per-session", "s-1", "usd")
    assert (exc.limit, exc.spent, exc.reserved, exc.requested) == (1.0, 0.4, 0.5, 0.2)
    assert exc.window_end is None
    assert ("per-session", "denied") in metrics.named("decision")
    enforcer.release(held)
    enforcer.admit_llm_call(SCOPE, worst_case_usd=0.6, worst_case_tokens=10)  # fits again


def test_refusal_reserves_nothing_on_other_budgets(clock) -> None:  # type: ignore[no-untyped-def]
    """All or nothing across budgets: a refused call leaves every budget as it was."""
    enforcer, _, _ = make(
        Budget(name="roomy", limit_usd=100.0),
        Budget(name="tight", scope="model", limit_usd=1.0),
        clock=clock,
    )
    with pytest.raises(BudgetExceeded, match="tight"):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=2.0, worst_case_tokens=10)
    roomy = [s for s in enforcer.status() if s.name == "roomy"]
    assert roomy == [
        BudgetStatus(
            name="roomy",
            scope_key="global",
            unit="usd",
            limit=100.0,
            spent=0.0,
            reserved=0.0,
            remaining=100.0,
            window_end=None,
        )
    ]


def test_actual_cost_above_the_reservation_is_charged_then_the_next_call_refused(clock) -> None:  # type: ignore[no-untyped-def]
    """A low estimate can take spend past the limit by the difference; then calls stop."""
    enforcer, _, _ = make(Budget(name="b", limit_usd=1.0), clock=clock)
    call(enforcer, 1.3, worst=0.9)
    [status] = enforcer.status()
    assert status.spent == pytest.approx(1.3) and status.remaining == 0.0
    with pytest.raises(BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.0, worst_case_tokens=0)


def test_unknown_cost_keeps_the_worst_case(clock) -> None:  # type: ignore[no-untyped-def]
    """An unpriced settlement never counts as free: the reservation stands."""
    enforcer, _, _ = make(Budget(name="b", limit_usd=1.0), clock=clock)
    admission = enforcer.admit_llm_call(SCOPE, worst_case_usd=0.25, worst_case_tokens=10)
    enforcer.settle(admission, cost_usd=None, tokens=5, idempotency_key=None)
    assert enforcer.status()[0].spent == 0.25


def test_settle_and_release_happen_once(clock) -> None:  # type: ignore[no-untyped-def]
    """A second settle or a release after settle changes nothing."""
    enforcer, _, _ = make(Budget(name="b", limit_usd=1.0), clock=clock)
    admission = enforcer.admit_llm_call(SCOPE, worst_case_usd=0.5, worst_case_tokens=10)
    enforcer.settle(admission, cost_usd=0.1, tokens=5, idempotency_key=None)
    enforcer.settle(admission, cost_usd=0.1, tokens=5, idempotency_key=None)
    enforcer.release(admission)
    assert admission.done
    assert (enforcer.status()[0].spent, enforcer.status()[0].reserved) == (0.1, 0.0)


def test_idempotency_key_counts_usage_once(clock) -> None:  # type: ignore[no-untyped-def]
    """The same response id reported twice (settle and charge) is counted once."""
    enforcer, _, _ = make(Budget(name="b", limit_usd=10.0, limit_tokens=10_000), clock=clock)
    call(enforcer, 0.5, key="msg_1")
    call(enforcer, 0.5, key="msg_1")
    enforcer.charge(SCOPE, cost_usd=0.5, tokens=100, idempotency_key="msg_1")
    enforcer.charge(SCOPE, cost_usd=0.5, tokens=100, idempotency_key="msg_2")
    figures = {s.unit: (s.spent, s.reserved) for s in enforcer.status()}
    assert figures == {"usd": (1.0, 0.0), "tokens": (200.0, 0.0)}


def test_unsettled_reservations_expire(clock) -> None:  # type: ignore[no-untyped-def]
    """A crashed caller's reservation stops counting after reservation_ttl_s."""
    enforcer, _, _ = make(Budget(name="b", limit_usd=1.0), clock=clock, reservation_ttl_s=30)
    enforcer.admit_llm_call(SCOPE, worst_case_usd=0.9, worst_case_tokens=10)  # never settled
    with pytest.raises(BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.5, worst_case_tokens=10)
    clock.advance(30)
    enforcer.admit_llm_call(SCOPE, worst_case_usd=0.5, worst_case_tokens=10)


def test_warn_budget_admits_with_an_exceeded_alert_and_warned_decision(clock) -> None:  # type: ignore[no-untyped-def]
    """warn alerts once but never stops the agent."""
    enforcer, alerts, metrics = make(Budget(name="soft", limit_usd=1.0, action="warn"), clock=clock)
    call(enforcer, 0.8)
    call(enforcer, 0.8)  # would exceed: admitted, warned
    call(enforcer, 0.8)
    assert enforcer.status()[0].spent == pytest.approx(2.4)
    exceeded = [a for a in alerts if a.kind == "exceeded"]
    assert len(exceeded) == 1 and exceeded[0].budget == "soft" and exceeded[0].threshold == 1.0
    assert metrics.named("decision") == [
        ("soft", "allowed"),
        ("soft", "warned"),
        ("soft", "warned"),
    ]


def test_observe_budget_only_counts(clock) -> None:  # type: ignore[no-untyped-def]
    """observe is a dry run: no refusal, no alert, but the figures are there."""
    enforcer, alerts, _ = make(
        Budget(name="dry", limit_usd=1.0, warn_at=(0.5,), action="observe"), clock=clock
    )
    for _ in range(3):
        call(enforcer, 0.8)
    assert alerts == []
    assert enforcer.status()[0].spent == pytest.approx(2.4)


def test_warn_at_thresholds_alert_once_each_per_scope_key(clock) -> None:  # type: ignore[no-untyped-def]
    """Each warn_at crossing and the exhaustion give exactly one event per scope key."""
    enforcer, alerts, metrics = make(
        Budget(name="per-session", scope="session", limit_usd=1.0, warn_at=(0.5, 0.8)), clock=clock
    )
    call(enforcer, 0.3)
    assert alerts == []
    call(enforcer, 0.55)  # 0.85: crosses 0.5 and 0.8 at once -> two events
    call(enforcer, 0.05)
    call(enforcer, 0.1)  # 1.0: exhausted
    kinds = [(a.kind, a.threshold, a.scope_key) for a in alerts]
    assert kinds == [("warning", 0.5, "s-1"), ("warning", 0.8, "s-1"), ("exceeded", 1.0, "s-1")]
    alert = alerts[0]
    assert (alert.spent_usd, alert.limit_usd, alert.unit) == (pytest.approx(0.85), 1.0, "usd")
    assert (alert.session_id, alert.run_id, alert.budget) == ("s-1", "run-1", "per-session")
    assert alert.timestamp_ns == int(clock.now * 1e9)
    assert metrics.named("alert") == [
        ("per-session", "warning", "0.5"),
        ("per-session", "warning", "0.8"),
        ("per-session", "exceeded", "1"),
    ]
    other = CallScope(session_id="s-2", run_id="run-2", provider="anthropic", model="m")
    call(enforcer, 0.6, scope=other)
    assert [(a.kind, a.scope_key) for a in alerts[3:]] == [("warning", "s-2")]


def test_refusal_by_a_raise_budget_alerts_exceeded_once(clock) -> None:  # type: ignore[no-untyped-def]
    """The first refusal reports the exhausted budget; later refusals stay quiet."""
    enforcer, alerts, _ = make(Budget(name="b", limit_usd=1.0), clock=clock)
    for _ in range(3):
        with pytest.raises(BudgetExceeded):
            enforcer.admit_llm_call(SCOPE, worst_case_usd=2.0, worst_case_tokens=10)
    assert [(a.kind, a.spent) for a in alerts] == [("exceeded", 0.0)]


def test_alerts_fire_once_across_restarts_on_shared_ledgers(ledger_factory, clock) -> None:  # type: ignore[no-untyped-def]
    """A restarted process (or a second one) does not repeat alerts already sent."""
    budget = Budget(name="daily", limit_usd=1.0, window="day", warn_at=(0.5,))
    first, first_alerts, _ = make(budget, clock=clock, ledger=ledger_factory())
    call(first, 0.6)
    assert [a.kind for a in first_alerts] == ["warning"]
    second, second_alerts, _ = make(budget, clock=clock, ledger=ledger_factory())
    call(second, 0.1)
    assert second_alerts == []
    assert second.status()[0].spent == pytest.approx(0.7)
    call(second, 0.3)
    assert [a.kind for a in second_alerts] == ["exceeded"]


def test_day_window_resets_at_local_midnight(clock) -> None:  # type: ignore[no-untyped-def]
    """A day budget in Europe/Paris starts over at Paris midnight, with alerts re-armed."""
    paris = ZoneInfo("Europe/Paris")
    clock.now = datetime(2024, 3, 30, 23, 30, tzinfo=paris).timestamp()
    enforcer, alerts, _ = make(
        Budget(name="daily", limit_usd=1.0, window="day", timezone="Europe/Paris", warn_at=(0.5,)),
        clock=clock,
    )
    call(enforcer, 0.9)
    [status] = enforcer.status()
    assert status.window_end == datetime(2024, 3, 31, tzinfo=paris).timestamp()
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.2, worst_case_tokens=10)
    assert info.value.window_end == status.window_end
    clock.now = datetime(2024, 3, 31, 0, 0, 1, tzinfo=paris).timestamp()
    call(enforcer, 0.9)
    [status] = enforcer.status()
    assert status.spent == 0.9
    # The DST day is 23 hours long.
    assert status.window_end - datetime(2024, 3, 31, tzinfo=paris).timestamp() == 23 * 3600
    assert [a.kind for a in alerts] == ["warning", "exceeded", "warning"]


def test_rolling_window_forgets_old_spend(clock) -> None:  # type: ignore[no-untyped-def]
    """rolling:1h admits again once the hour-old spend has rolled off."""
    clock.now = 1_700_000_040.0
    enforcer, _, _ = make(Budget(name="hourly", limit_usd=1.0, window="rolling:1h"), clock=clock)
    call(enforcer, 1.0)
    clock.advance(1800)
    with pytest.raises(BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.1, worst_case_tokens=10)
    clock.advance(1800 + 60)
    call(enforcer, 0.5)
    assert enforcer.status()[0].spent == 0.5


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("global", "global"),
        ("session", "s-1"),
        ("run", "run-1"),
        ("model", "claude-sonnet-4-5"),
        ("provider", "anthropic"),
        ("user", "ada"),
        ("attribute:team", "infra"),
    ],
)
def test_scope_keys(clock, scope: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    """Each scope counts under the key the design names."""
    enforcer, _, _ = make(Budget(name="b", scope=scope, limit_usd=1.0), clock=clock)
    call(enforcer, 0.2)
    assert [(s.scope_key, s.spent) for s in enforcer.status()] == [(expected, 0.2)]


def test_user_and_attribute_scopes_skip_calls_without_them(clock) -> None:  # type: ignore[no-untyped-def]
    """No user (or no attribute) means the budget does not apply, rather than a shared key."""
    enforcer, _, _ = make(
        Budget(name="per-user", scope="user", limit_usd=0.1),
        Budget(name="per-team", scope="attribute:team", limit_usd=0.1),
        clock=clock,
    )
    anonymous = CallScope(session_id="s", run_id="r", provider="p", model="m")
    for _ in range(3):
        call(enforcer, 0.1, scope=anonymous)
    assert enforcer.status() == []


def test_match_globs_select_the_calls_a_budget_counts(clock) -> None:  # type: ignore[no-untyped-def]
    """match = {model = "claude-*", provider = "anthropic"} leaves other calls alone."""
    enforcer, _, _ = make(
        Budget(name="claude", limit_usd=1.0, match={"model": "claude-*", "provider": "anthropic"}),
        Budget(name="infra", limit_usd=1.0, match={"attribute:team": "inf?a", "agent": "*"}),
        clock=clock,
    )
    call(enforcer, 0.3)
    gpt = CallScope(session_id="s", run_id="r", provider="openai", model="gpt-4o")
    call(enforcer, 0.4, scope=gpt)
    assert {s.name: s.spent for s in enforcer.status()} == {"claude": 0.3, "infra": 0.3}


def test_run_limits_refuse_the_call_that_would_exceed(clock) -> None:  # type: ignore[no-untyped-def]
    """max_llm_calls and max_tool_calls stop runaway loops, per run."""
    enforcer, _, _ = make(
        Budget(name="tool-loop", scope="run", max_llm_calls=2, max_tool_calls=3), clock=clock
    )
    call(enforcer, 0.0)
    call(enforcer, 0.0)
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=None, worst_case_tokens=10)
    assert (info.value.unit, info.value.limit, info.value.spent) == ("llm_calls", 2, 2)
    for _ in range(3):
        tool = enforcer.admit_tool_call(SCOPE)
        enforcer.settle(tool, cost_usd=None, tokens=0, idempotency_key=None)
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_tool_call(SCOPE)
    assert info.value.unit == "tool_calls" and info.value.scope_key == "run-1"
    next_run = CallScope(session_id="s-1", run_id="run-2")
    enforcer.admit_tool_call(next_run)
    # A released tool admission gives its slot back.
    enforcer.release(enforcer.admit_tool_call(next_run))
    assert {(s.scope_key, s.unit): s.reserved for s in enforcer.status()}[
        ("run-2", "tool_calls")
    ] == 1


def test_token_budget_reserves_the_worst_case_tokens(clock) -> None:  # type: ignore[no-untyped-def]
    """limit_tokens admits on the worst case and charges actual tokens."""
    enforcer, _, _ = make(Budget(name="t", limit_tokens=5000), clock=clock)
    admission = enforcer.admit_llm_call(SCOPE, worst_case_usd=None, worst_case_tokens=4000)
    with pytest.raises(BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=None, worst_case_tokens=1001)
    enforcer.settle(admission, cost_usd=None, tokens=1500, idempotency_key=None)
    enforcer.admit_llm_call(SCOPE, worst_case_usd=None, worst_case_tokens=3500)


def test_status_lists_every_budget_and_live_scope_key_and_sets_gauges(clock) -> None:  # type: ignore[no-untyped-def]
    """status() shows all figures; gauges follow the metric catalogue's label rules."""
    enforcer, _, metrics = make(
        Budget(name="global", limit_usd=10.0, window="day"),
        Budget(name="per-model", scope="model", limit_usd=5.0),
        Budget(name="per-session", scope="session", limit_usd=2.0, limit_tokens=1000),
        Budget(name="unused", scope="session", limit_usd=2.0, match={"model": "none"}),
        clock=clock,
    )
    assert ("limit", ("per-session", "tokens", 1000.0)) in metrics.calls
    call(enforcer, 1.0)
    call(enforcer, 0.5, scope=CallScope(session_id="s-2", run_id="r", model="gpt-4o"))
    enforcer.admit_llm_call(SCOPE, worst_case_usd=0.25, worst_case_tokens=50)
    metrics.calls.clear()
    rows = {(s.name, s.scope_key, s.unit): s for s in enforcer.status()}
    assert set(rows) == {
        ("global", "global", "usd"),
        ("per-model", "claude-sonnet-4-5", "usd"),
        ("per-model", "gpt-4o", "usd"),
        ("per-session", "s-1", "usd"),
        ("per-session", "s-1", "tokens"),
        ("per-session", "s-2", "usd"),
        ("per-session", "s-2", "tokens"),
    }
    s1 = rows["per-session", "s-1", "usd"]
    assert (s1.spent, s1.reserved, s1.remaining, s1.limit) == (1.0, 0.25, 0.75, 2.0)
    assert rows["per-session", "s-1", "tokens"].spent == 100
    day_end = rows["global", "global", "usd"].window_end
    assert day_end is not None and 0 < day_end - clock.now <= 86_400
    usage = metrics.named("usage")
    assert ("per-model", "gpt-4o", 0.5, 0.0) in usage
    assert ("global", "global", 1.5, 0.25) in usage
    assert ("per-session", None, 1.5, 0.25) in usage  # many keys: one unlabelled total
    assert not any(u[0] == "per-session" and u[1] is not None for u in usage)
    assert ("utilization", ("per-session", 0.5)) in metrics.calls
    assert metrics.named("window_end") == [("global", day_end)]


def test_status_gauges_with_the_real_prometheus_metrics(clock) -> None:  # type: ignore[no-untyped-def]
    """The enforcer drives KitMetrics (the production BudgetMetrics) to the names of the metric catalogue."""
    from kit_telemetry.metrics import KitMetrics

    registry = CollectorRegistry()
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="daily", limit_usd=4.0, window="day", warn_at=(0.5,)),)),
        ledger=MemoryLedger(),
        clock=clock,
        metrics=KitMetrics(registry=registry),
    )
    call(enforcer, 3.0)
    with pytest.raises(BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=2.0, worst_case_tokens=1)
    enforcer.status()
    get = registry.get_sample_value
    assert get("kit_budget_limit_usd", {"budget": "daily"}) == 4.0
    assert get("kit_budget_spent_usd", {"budget": "daily", "scope_key": "global"}) == 3.0
    assert get("kit_budget_decisions_total", {"budget": "daily", "decision": "denied"}) == 1.0
    assert (
        get("kit_budget_alerts_total", {"budget": "daily", "kind": "warning", "threshold": "0.5"})
        == 1.0
    )
    assert get("kit_budget_window_end_timestamp_seconds", {"budget": "daily"}) > clock.now


def dead_redis() -> RedisLedger:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return RedisLedger(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)


def test_ledger_down_with_allow_admits_and_counts_the_error(clock, caplog) -> None:  # type: ignore[no-untyped-def]
    """Fail open: the agent goes on, the error is logged and counted."""
    enforcer, _, metrics = make(Budget(name="b", limit_usd=1.0), clock=clock, ledger=dead_redis())
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        admission = enforcer.admit_llm_call(SCOPE, worst_case_usd=5.0, worst_case_tokens=10)
        enforcer.settle(admission, cost_usd=5.0, tokens=10, idempotency_key=None)
        enforcer.release(enforcer.admit_tool_call(SCOPE))
        enforcer.charge(SCOPE, cost_usd=1.0, tokens=1, idempotency_key=None)
        enforcer.status()
    assert admission.ledger_failed
    assert metrics.named("internal_error").count(("budget_ledger",)) >= 3
    assert any("ledger" in r.getMessage() and r.exc_info for r in caplog.records)


def test_ledger_down_with_deny_refuses_with_budget_exceeded(clock) -> None:  # type: ignore[no-untyped-def]
    """Fail closed: raise budgets refuse while the ledger is unreachable."""
    enforcer, _, metrics = make(
        Budget(name="b", limit_usd=1.0), clock=clock, ledger=dead_redis(), on_ledger_error="deny"
    )
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.1, worst_case_tokens=10)
    assert isinstance(info.value.__cause__, LedgerError)
    assert math.isnan(info.value.spent) and info.value.budget == "b"
    assert ("budget_ledger",) in metrics.named("internal_error")
    # warn and observe budgets never refuse, even with deny.
    soft, _, _ = make(
        Budget(name="w", limit_usd=1.0, action="warn"),
        clock=clock,
        ledger=dead_redis(),
        on_ledger_error="deny",
    )
    assert soft.admit_llm_call(SCOPE, worst_case_usd=0.1, worst_case_tokens=10).ledger_failed


def test_a_failing_alert_handler_does_not_reach_the_agent(clock) -> None:  # type: ignore[no-untyped-def]
    """on_alert errors are logged and counted; the call goes on."""
    metrics = RecordingMetrics()

    def broken(event: BudgetAlertEvent) -> None:
        raise RuntimeError("sink down")

    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="b", limit_usd=1.0, warn_at=(0.1,)),)),
        ledger=MemoryLedger(),
        clock=clock,
        on_alert=broken,
        metrics=metrics,
    )
    call(enforcer, 0.5)
    assert ("budget_alert",) in metrics.named("internal_error")
    assert ("b", "warning", "0.1") in metrics.named("alert")


def test_budget_exceeded_survives_pickling_between_processes(clock) -> None:  # type: ignore[no-untyped-def]
    """Refusals raised in worker processes keep their attributes."""
    enforcer, _, _ = make(Budget(name="b", limit_usd=1.0), clock=clock)
    with pytest.raises(BudgetExceeded) as info:
        enforcer.admit_llm_call(SCOPE, worst_case_usd=2.0, worst_case_tokens=10)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.budget, copy.requested, copy.unit) == ("b", 2.0, "usd")


def test_enforcer_opens_the_configured_ledger(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    """ledger = "sqlite:PATH" in the configuration is what the enforcer uses by default."""
    path = tmp_path / "budgets.db"
    config = BudgetConfig(budgets=(Budget(name="b", limit_usd=1.0),), ledger=f"sqlite:{path}")
    first = BudgetEnforcer(config, clock=clock)
    call(first, 0.7)
    first.close()
    second = BudgetEnforcer(config, clock=clock)
    with pytest.raises(BudgetExceeded):
        second.admit_llm_call(SCOPE, worst_case_usd=0.5, worst_case_tokens=1)
    second.close()
    assert path.exists()


def test_run_budget_counters_are_forgotten_an_hour_after_the_run() -> None:
    """Run budgets make one counter per run: they must not pile up for 30 days."""
    from kit_telemetry.budgets.calls import CallScope
    from kit_telemetry.budgets.config import Budget, BudgetConfig
    from kit_telemetry.budgets.enforcer import BudgetEnforcer
    from kit_telemetry.budgets.memory import MemoryLedger

    now = [1_000_000.0]
    ledger = MemoryLedger()
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="loop", scope="run", max_llm_calls=5),)),
        ledger=ledger,
        clock=lambda: now[0],
    )
    for i in range(50):
        scope = CallScope(session_id="s", run_id=f"run-{i}")
        admission = enforcer.admit_llm_call(scope, worst_case_usd=None, worst_case_tokens=0)
        enforcer.settle(admission, cost_usd=None, tokens=0, idempotency_key=None)
    assert len(enforcer.status()) == 50
    now[0] += 3_600 + 120  # past the idle time, and past the next sweep
    last = CallScope(session_id="s", run_id="run-last")
    enforcer.settle(
        enforcer.admit_llm_call(last, worst_case_usd=None, worst_case_tokens=0),
        cost_usd=None,
        tokens=0,
        idempotency_key=None,
    )
    assert [s.scope_key for s in enforcer.status()] == ["run-last"]
