"""Alerts that fire when they should: budget series from load, alert kinds in order.

Money is worked out by hand from published per-million prices (claude-sonnet-4-5:
$3 input, $15 output per million tokens).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.budgets.alerts import LogAlertSink
from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.ledger import Counter
from kit_telemetry.budgets.memory import MemoryLedger
from kit_telemetry.events import BudgetAlertEvent
from kit_telemetry.metrics import KitMetrics
from kit_telemetry.rules import RULES_FILENAME, write_rules
from kit_telemetry.testing import Capture, capture

MODEL = "claude-sonnet-4-5"
INPUT_USD_PER_MTOK = 3.0
OUTPUT_USD_PER_MTOK = 15.0
IN_TOKENS = 1000
OUT_TOKENS = 1000
MAX_TOKENS = 1000
# One call: 1000 x $3/M + 1000 x $15/M = $0.003 + $0.015 = $0.018.
CALL_USD = (IN_TOKENS * INPUT_USD_PER_MTOK + OUT_TOKENS * OUTPUT_USD_PER_MTOK) / 1e6
# The worst case reserved before a later call of the run: the run's largest input so far
# (1000) at the input price plus max_tokens at the output price, $0.003 + $0.015.
WORST_CASE_USD = (IN_TOKENS * INPUT_USD_PER_MTOK + MAX_TOKENS * OUTPUT_USD_PER_MTOK) / 1e6
DAY_S = 86_400
SCOPE = CallScope(session_id="s", run_id="r", provider="anthropic", model=MODEL)


def _call(run: kt.Run, *, out: int = OUT_TOKENS, max_tokens: int = MAX_TOKENS) -> None:
    with run.turn() as turn, turn.llm_call("anthropic", MODEL, max_tokens=max_tokens) as call:
        call.record_usage(input_tokens=IN_TOKENS, output_tokens=out, finish_reason="end_turn")


def _alerts(cap: Capture) -> list[BudgetAlertEvent]:
    return [e for e in cap.events_of(kt.EventType.BUDGET_ALERT) if isinstance(e, BudgetAlertEvent)]


def _messages(alerts: list[BudgetAlertEvent], caplog: pytest.LogCaptureFixture) -> list[str]:
    sink = LogAlertSink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        for alert in alerts:
            sink.deliver(alert)
    return [r.getMessage() for r in caplog.records]


# --- series exist from the moment the budgets load ----------------------------------------

SESSION = kt.Budget(
    name="per-session", scope="session", limit_usd=0.05, warn_at=(0.5, 0.8), action="raise"
)
DAILY = kt.Budget(name="daily", scope="global", limit_usd=5.0, window="day", warn_at=(0.5, 0.8))


def test_every_budget_series_exists_right_after_configure() -> None:
    """Alert rules read these series; absent ones make the forecast alert never fire."""
    before = time.time()
    with capture(budgets=[SESSION, DAILY]) as cap:
        window_end = cap.metric("kit_budget_window_end_timestamp_seconds", budget="daily")
        session_spent = cap.metric("kit_budget_spent_usd", budget="per-session", scope_key="")
        session_reserved = cap.metric("kit_budget_reserved_usd", budget="per-session", scope_key="")
        daily_spent = cap.metric("kit_budget_spent_usd", budget="daily", scope_key="global")
        ratios = {
            b: cap.metric("kit_budget_max_utilization_ratio", budget=b)
            for b in ("per-session", "daily")
        }
        decisions = {
            (b, d): cap.metric("kit_budget_decisions_total", budget=b, decision=d)
            for b in ("per-session", "daily")
            for d in ("allowed", "denied", "warned")
        }
        alerts = {
            (b, k, t): cap.metric("kit_budget_alerts_total", budget=b, kind=k, threshold=t)
            for b in ("per-session", "daily")
            for k, t in (("warning", "0.5"), ("warning", "0.8"), ("exceeded", "1"))
        }
        limit = cap.metric("kit_budget_limit_usd", budget="per-session")
    assert window_end is not None
    assert (
        window_end % DAY_S == 0 and before < window_end <= time.time() + DAY_S
    )  # next UTC midnight
    assert session_spent == 0.0 and session_reserved == 0.0
    assert daily_spent == 0.0
    assert ratios == {"per-session": 0.0, "daily": 0.0}
    assert set(decisions.values()) == {0.0}
    assert set(alerts.values()) == {0.0}
    assert limit == pytest.approx(0.05)


def test_spend_series_stay_current_without_budget_status() -> None:
    """The session budget's total and every utilisation follow each settled call."""
    with capture(budgets=[SESSION, DAILY]) as cap:
        with cap.telemetry.session("s-1") as s1, s1.run("go") as run:
            _call(run)
        with cap.telemetry.session("s-2") as s2, s2.run("go") as run:
            _call(run)
        session_total = cap.metric("kit_budget_spent_usd", budget="per-session", scope_key="")
        daily = cap.metric("kit_budget_spent_usd", budget="daily", scope_key="global")
        session_ratio = cap.metric("kit_budget_max_utilization_ratio", budget="per-session")
        allowed = cap.metric("kit_budget_decisions_total", budget="per-session", decision="allowed")
        reserved = cap.metric("kit_budget_reserved_usd", budget="per-session", scope_key="")
    assert session_total == pytest.approx(2 * CALL_USD)  # $0.036 over two sessions
    assert daily == pytest.approx(2 * CALL_USD)
    assert session_ratio == pytest.approx(CALL_USD / 0.05)  # each session at 36 %
    assert allowed == 2.0
    assert reserved == 0.0


# --- KitBudgetCallsDenied fires on the first denial ---------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is required (Debian: apt-get install prometheus)")
    return path


def _denied_test(series_values: str, expected: list[dict[str, object]]) -> dict[str, object]:
    return {
        "rule_files": [RULES_FILENAME],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'kit_budget_decisions_total{budget="per-session",'
                        'decision="denied"}',
                        "values": series_values,
                    }
                ],
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": "KitBudgetCallsDenied", "exp_alerts": expected}
                ],
            }
        ],
    }


def test_calls_denied_alert_fires_on_the_first_denial(promtool: str, tmp_path: Path) -> None:
    """The exported denial counter goes 0 -> 1, so the generated rule sees the first refusal."""
    with capture(budgets=[SESSION]) as cap:
        at_load = cap.metric("kit_budget_decisions_total", budget="per-session", decision="denied")
        with pytest.raises(kt.BudgetExceeded), cap.telemetry.session("s") as session:
            with session.run("go") as run:
                for _ in range(3):  # $0.036 spent; the third's $0.018 worst case passes $0.05
                    _call(run)
        after = cap.metric("kit_budget_decisions_total", budget="per-session", decision="denied")
        config = cap.telemetry.budget_config
    assert at_load == 0.0 and after == 1.0
    assert config is not None
    write_rules(config, tmp_path)
    fired = {
        "exp_labels": {"severity": "warning", "budget": "per-session", "scope": "session"},
        "exp_annotations": {
            "summary": 'Budget "per-session" is refusing calls',
            "description": 'Budget "per-session" (scope session) refused calls in the last 5m: '
            "spent plus requested would have exceeded its limit of $0.05.",
        },
    }
    # As scraped: the series exists at 0 from load, then the first denial makes it 1.
    scraped = f"{at_load:g} {at_load:g} {after:g}"
    # What a series born at 1 looks like (the counter created by the first denial):
    # increase() has no earlier sample to compare with, so nothing fires.
    born_at_one = f"_ _ {after:g}"
    for name, values, expected in (
        ("scraped", scraped, [fired]),
        ("born-at-one", born_at_one, []),
    ):
        path = tmp_path / f"{name}.test.yml"
        path.write_text(json.dumps(_denied_test(values, expected)), encoding="utf-8")
        result = subprocess.run(
            [promtool, "test", "rules", path.name],
            check=False,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


# --- alert kinds and wording match what happened, in order --------------------------------


def test_run_spending_up_to_a_limit_warns_then_reports_the_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Warnings at 50 % and 80 % of settled spend come first; the refusal says what was refused."""
    budget = kt.Budget(
        name="per-session", scope="session", limit_usd=0.10, warn_at=(0.5, 0.8), action="raise"
    )
    with capture(budgets=[budget]) as cap:
        with pytest.raises(kt.BudgetExceeded) as info, cap.telemetry.session("s") as session:
            with session.run("go") as run:
                for _ in range(10):
                    _call(run)
        alerts = _alerts(cap)
        counted = {
            (k, t): cap.metric("kit_budget_alerts_total", budget="per-session", kind=k, threshold=t)
            for k, t in (("warning", "0.5"), ("warning", "0.8"), ("exceeded", "1"))
        }
    # Calls 1-5 settle $0.018 each: $0.054 passes 50 % ($0.05) at call 3, $0.090 passes
    # 80 % ($0.08) at call 5; call 6 would reserve $0.018 more: $0.108 > $0.10, refused.
    spent_after_five = 5 * CALL_USD
    assert [(a.kind, a.threshold) for a in alerts] == [
        ("warning", 0.5),
        ("warning", 0.8),
        ("exceeded", 1.0),
    ]
    warn_50, warn_80, refused = alerts
    assert warn_50.spent == pytest.approx(3 * CALL_USD) and warn_50.requested is None
    assert warn_80.spent == pytest.approx(spent_after_five)
    assert refused.spent == pytest.approx(spent_after_five)
    assert refused.requested == pytest.approx(WORST_CASE_USD)
    assert refused.reserved == 0.0
    assert refused.spent + refused.requested > refused.limit == pytest.approx(0.10)
    assert info.value.requested == pytest.approx(WORST_CASE_USD)
    assert counted == {("warning", "0.5"): 1.0, ("warning", "0.8"): 1.0, ("exceeded", "1"): 1.0}
    assert _messages(alerts, caplog) == [
        "budget 'per-session' (s) passed 50% of its limit: $0.054 of $0.1",
        "budget 'per-session' (s) passed 80% of its limit: $0.09 of $0.1",
        "budget 'per-session' (s) refused a call: $0.09 spent + $0.018 requested "
        "would exceed its limit of $0.1",
    ]


def test_warn_budget_alerts_exceeded_when_spend_reaches_the_limit_not_at_admission(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worst case above the limit is no excess: the exceeded alert waits for real spend."""
    budget = kt.Budget(
        name="soft", scope="session", limit_usd=0.03, warn_at=(0.5, 0.8), action="warn"
    )
    out, max_tokens = 500, 4000
    # Worst case 4000 x $15/M = $0.06 > $0.03 from the first call; each call really costs
    # 1000 x $3/M + 500 x $15/M = $0.003 + $0.0075 = $0.0105.
    call_usd = (IN_TOKENS * INPUT_USD_PER_MTOK + out * OUTPUT_USD_PER_MTOK) / 1e6
    with capture(budgets=[budget]) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            _call(run, out=out, max_tokens=max_tokens)
            after_one = list(_alerts(cap))
            warned = cap.metric("kit_budget_decisions_total", budget="soft", decision="warned")
            for _ in range(2):  # $0.021 (70 %), then $0.0315 (105 %)
                _call(run, out=out, max_tokens=max_tokens)
        alerts = _alerts(cap)
    assert after_one == []  # $0.0105 spent: 35 %, nothing crossed
    assert warned == 1.0  # the decision still says the worst case would exceed
    assert [(a.kind, a.threshold) for a in alerts] == [
        ("warning", 0.5),
        ("warning", 0.8),
        ("exceeded", 1.0),
    ]
    assert [a.spent for a in alerts] == pytest.approx([2 * call_usd, 3 * call_usd, 3 * call_usd])
    assert _messages(alerts, caplog) == [
        "budget 'soft' (s) passed 50% of its limit: $0.021 of $0.03",
        "budget 'soft' (s) passed 80% of its limit: $0.0315 of $0.03",
        "budget 'soft' (s) hit its limit: $0.0315 of $0.03",
    ]


# --- kept current: windows that move, many threads ----------------------------------------


def test_window_end_follows_the_window_on_the_next_commit(clock: Any) -> None:
    """After midnight the forecast alert must read the new window's end, not yesterday's."""
    registry = CollectorRegistry()
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="daily", limit_usd=4.0, window="day"),)),
        ledger=MemoryLedger(),
        clock=clock,
        metrics=KitMetrics(registry=registry),
    )
    first_end = (int(clock.now) // DAY_S + 1) * DAY_S  # the fake clock's next UTC midnight
    labels = {"budget": "daily"}
    at_load = registry.get_sample_value("kit_budget_window_end_timestamp_seconds", labels)
    clock.advance(DAY_S)
    enforcer.charge(SCOPE, cost_usd=1.0, tokens=10, idempotency_key=None)
    moved = registry.get_sample_value("kit_budget_window_end_timestamp_seconds", labels)
    assert at_load == first_end
    assert moved == first_end + DAY_S


def test_many_keyed_total_is_exact_under_many_threads(clock: Any) -> None:
    """The reporter's lock: concurrent commits on many sessions leave the exact total."""
    registry = CollectorRegistry()
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="per-session", scope="session", limit_usd=100.0),)),
        ledger=MemoryLedger(),
        clock=clock,
        metrics=KitMetrics(registry=registry),
    )
    threads, sessions, calls, cost = 8, 25, 4, 0.01

    def work(worker: int) -> None:
        for n in range(sessions * calls):
            scope = CallScope(session_id=f"w{worker}-s{n % sessions}", run_id="r", model="m")
            enforcer.charge(scope, cost_usd=cost, tokens=1, idempotency_key=None)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    labels = {"budget": "per-session", "scope_key": ""}
    total = registry.get_sample_value("kit_budget_spent_usd", labels)
    # 8 x 25 sessions x 4 calls x $0.01 = $8.00, summed in micro-USD, so exactly 8.0.
    assert total == threads * sessions * calls * round(cost * 1e6) / 1e6 == 8.0
    assert [s.spent for s in enforcer.status() if s.scope_key == "w0-s0"] == [pytest.approx(0.04)]


def test_refusal_sends_earned_warnings_first(clock: Any) -> None:
    """Spend that arrived without alerts (another process, a restart) still warns before exceeded."""
    ledger = MemoryLedger()
    alerts: list[BudgetAlertEvent] = []
    enforcer = BudgetEnforcer(
        BudgetConfig(budgets=(Budget(name="g", limit_usd=1.0, warn_at=(0.5, 0.8)),)),
        ledger=ledger,
        clock=clock,
        on_alert=alerts.append,
    )
    # $0.85 written straight to the ledger, as a process that died before alerting would.
    counter = Counter(budget="g", unit="usd", scope_key="global", limit=1_000_000)
    ledger.commit(None, [(counter, 850_000)], now_s=clock.now)
    with pytest.raises(kt.BudgetExceeded):
        enforcer.admit_llm_call(SCOPE, worst_case_usd=0.20, worst_case_tokens=10)
    assert [(a.kind, a.threshold, a.spent) for a in alerts] == [
        ("warning", 0.5, pytest.approx(0.85)),
        ("warning", 0.8, pytest.approx(0.85)),
        ("exceeded", 1.0, pytest.approx(0.85)),
    ]
    assert alerts[2].requested == pytest.approx(0.20) and alerts[0].requested is None
