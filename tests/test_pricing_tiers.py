"""Long-context tiers: a prompt above a tier's threshold is priced, every token of it, at
the tier's rates (the providers' cliff pricing). Expected money by hand from Anthropic's
published prices, never from our pricing."""

from __future__ import annotations

import uuid

import pytest

import kit_telemetry as kt
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.errors import ConfigError
from kit_telemetry.pricing import ModelPrice, PriceTable, PriceTier
from kit_telemetry.testing import capture
from kit_telemetry.tokens import TokenUsage

MODEL = "claude-sonnet-4-5"
# https://www.anthropic.com/pricing : up to 200k input tokens $3 input / $15 output per
# MTok; above 200k (long context) $6 / $22.50, cache reads $0.30 / $0.60.
LONG_USD = 1.5225  # 250_000 * 6 / 1e6 + 1_000 * 22.5 / 1e6 = 1.5 + 0.0225


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable()


def test_a_prompt_above_200k_tokens_is_priced_at_the_upper_tier(table: PriceTable) -> None:
    """250k input tokens: all of them, and the output, at the long-context rates."""
    cost = table.cost_usd("anthropic", MODEL, TokenUsage(input_tokens=250_000, output_tokens=1_000))
    assert cost == pytest.approx(LONG_USD)


def test_a_prompt_of_exactly_200k_tokens_stays_at_the_base_rates(table: PriceTable) -> None:
    """The tier starts above the threshold: 200,000 tokens are still the base price."""
    cost = table.cost_usd("anthropic", MODEL, TokenUsage(input_tokens=200_000, output_tokens=1_000))
    assert cost == pytest.approx(0.6 + 0.015)  # 200_000 * 3 / 1e6 + 1_000 * 15 / 1e6


def test_cached_tokens_count_towards_the_threshold(table: PriceTable) -> None:
    """150k cache reads + 60k fresh input = 210k input: the upper tier, cache reads too."""
    usage = TokenUsage(input_tokens=60_000, cache_read_tokens=150_000, output_tokens=1_000)
    cost = table.cost_usd("anthropic", MODEL, usage)
    # 60_000 * 6 / 1e6 + 150_000 * 0.6 / 1e6 + 1_000 * 22.5 / 1e6 = 0.36 + 0.09 + 0.0225
    assert cost == pytest.approx(0.4725)


def test_a_long_call_is_charged_at_its_tier_in_events_and_budgets() -> None:
    """The call's event, the run's totals and the budget all see the long-context price."""
    name = f"cap-{uuid.uuid4().hex[:8]}"
    config = BudgetConfig(budgets=(Budget(name=name, limit_usd=10.0),))
    with capture(budgets=config) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.turn() as turn:
                with turn.llm_call(
                    "anthropic", MODEL, max_tokens=1_000, estimated_input_tokens=250_000
                ) as call:
                    call.record_usage(input_tokens=250_000, output_tokens=1_000)
        (usage,) = cap.events_of(kt.EventType.LLM_USAGE)
        spent = sum(s.spent for s in cap.telemetry.budget_status() if s.name == name)
    assert isinstance(usage, kt.LLMUsageEvent)
    assert usage.cost_usd == pytest.approx(LONG_USD)
    assert spent == pytest.approx(LONG_USD)


def test_admission_reserves_a_long_prompt_at_its_tier() -> None:
    """The worst case of a call estimated above 200k is priced at the tier, so a budget
    that the base price would fit refuses it."""
    # Base price: 250_000 * 3 / 1e6 + 1_000 * 15 / 1e6 = $0.765 < $1; tier: $1.5225 > $1.
    config = BudgetConfig(budgets=(Budget(name=f"cap-{uuid.uuid4().hex[:8]}", limit_usd=1.0),))
    with capture(budgets=config) as cap:
        with cap.telemetry.session("s") as session, session.run("go") as run:
            with run.turn() as turn, pytest.raises(kt.BudgetExceeded) as refused:
                with turn.llm_call(
                    "anthropic", MODEL, max_tokens=1_000, estimated_input_tokens=250_000
                ):
                    pytest.fail("the call ran")
    assert refused.value.requested == pytest.approx(LONG_USD)


def test_user_prices_may_have_tiers() -> None:
    """A price given in Python can carry tiers; they are kept sorted by threshold."""
    price = ModelPrice(
        input_per_mtok=1.0,
        output_per_mtok=2.0,
        tiers=(
            PriceTier(above_input_tokens=1_000_000, input_per_mtok=4.0, output_per_mtok=8.0),
            PriceTier(above_input_tokens=100_000, input_per_mtok=2.0, output_per_mtok=4.0),
        ),
    )
    assert [t.above_input_tokens for t in price.tiers] == [100_000, 1_000_000]
    assert price.cost_usd(TokenUsage(input_tokens=100_001)) == pytest.approx(0.200002)
    assert price.cost_usd(TokenUsage(input_tokens=2_000_000)) == pytest.approx(8.0)


@pytest.mark.parametrize("threshold", [-1, 1.5, True])
def test_a_bad_tier_threshold_is_a_config_error(threshold: object) -> None:
    """The threshold names what is wrong and what is allowed."""
    with pytest.raises(ConfigError, match="above_input_tokens"):
        PriceTier(above_input_tokens=threshold, input_per_mtok=1.0, output_per_mtok=1.0)  # type: ignore[arg-type]
