"""A call that fails or is cancelled keeps the usage it reported; otherwise ``on_cancel``
decides what its reservation costs. Money by hand from Anthropic's published prices."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import kit_telemetry as kt
from kit_telemetry.budgets.config import Budget, BudgetConfig, parse_budget_config
from kit_telemetry.errors import ConfigError
from kit_telemetry.testing import capture

LedgerFactory = Any  # the conftest fixture's type

MODEL = "claude-sonnet-4-5"  # https://www.anthropic.com/pricing : $3 / $15 per MTok
ESTIMATE = 1_000
MAX_TOKENS = 2_000
RESERVED_USD = 0.033  # 1000 * 3 / 1e6 + 2000 * 15 / 1e6 = 0.003 + 0.03
PARTIAL_USD = 0.0045  # 1000 input + 100 output: 0.003 + 0.0015


class ModelFailed(Exception):
    """The provider's error, raised inside the call."""


def spent_usd(tel: kt.Telemetry, budget: str) -> float:
    return sum(s.spent for s in tel.budget_status() if (s.name, s.unit) == (budget, "usd"))


def call(tel: kt.Telemetry, exc: BaseException, *, partial: bool) -> None:
    """One call that raises ``exc`` after, optionally, reporting a stream's partial usage."""
    with tel.session(f"s-{uuid.uuid4().hex[:8]}") as session, session.run("go") as run:
        with run.turn() as turn:
            try:
                with turn.llm_call(
                    "anthropic", MODEL, max_tokens=MAX_TOKENS, estimated_input_tokens=ESTIMATE
                ) as llm:
                    if partial:
                        llm.record_usage(input_tokens=1_000, output_tokens=100)
                    raise exc
            except (ModelFailed, asyncio.CancelledError):
                pass


def config(url: str, name: str, on_cancel: str | None) -> BudgetConfig:
    extra = {} if on_cancel is None else {"on_cancel": on_cancel}
    return BudgetConfig(budgets=(Budget(name=name, limit_usd=1.0),), ledger=url, **extra)  # type: ignore[arg-type]


EXCEPTIONS = [ModelFailed("overloaded"), asyncio.CancelledError()]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=["error", "cancelled"])
@pytest.mark.parametrize("on_cancel", ["release", "charge_reservation"])
def test_partial_stream_usage_is_charged_whatever_the_rule(
    ledger_factory: LedgerFactory, exc: BaseException, on_cancel: str
) -> None:
    """Tokens a stream reported before it broke are billed, so they are charged."""
    name = f"cap-{uuid.uuid4().hex[:8]}"
    with capture(budgets=config(ledger_factory.url, name, on_cancel)) as cap:
        call(cap.telemetry, exc, partial=True)
        assert spent_usd(cap.telemetry, name) == pytest.approx(PARTIAL_USD)


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=["error", "cancelled"])
@pytest.mark.parametrize(
    ("on_cancel", "expected_usd"),
    [(None, 0.0), ("release", 0.0), ("charge_reservation", RESERVED_USD)],
)
def test_a_call_without_usage_costs_what_on_cancel_says(
    ledger_factory: LedgerFactory, exc: BaseException, on_cancel: str | None, expected_usd: float
) -> None:
    """release (the default) charges nothing; charge_reservation charges the reservation."""
    name = f"cap-{uuid.uuid4().hex[:8]}"
    with capture(budgets=config(ledger_factory.url, name, on_cancel)) as cap:
        call(cap.telemetry, exc, partial=False)
        statuses = [s for s in cap.telemetry.budget_status() if s.name == name]
        assert spent_usd(cap.telemetry, name) == pytest.approx(expected_usd)
        assert all(s.reserved == 0 for s in statuses)  # nothing stays held either way


def test_on_cancel_is_read_from_the_admission_table() -> None:
    """``[admission] on_cancel`` sets the rule."""
    parsed = parse_budget_config(
        {
            "budget": [{"name": "cap", "limit_usd": 1.0}],
            "admission": {"on_cancel": "charge_reservation"},
        },
        source="budgets.toml",
    )
    assert parsed.on_cancel == "charge_reservation"


def test_an_unknown_on_cancel_rule_is_a_config_error_naming_the_choices() -> None:
    """A typo fails at start-up with the allowed values."""
    with pytest.raises(
        ConfigError,
        match="admission: on_cancel 'charge' is not one of release, charge_reservation",
    ):
        BudgetConfig(budgets=(Budget(name="cap", limit_usd=1.0),), on_cancel="charge")
