"""Tests for kit_telemetry.pricing: rates, cost arithmetic, overrides, the TOML format."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit_telemetry.errors import ConfigError, UsageError
from kit_telemetry.pricing import (
    ModelPrice,
    PriceRow,
    PriceTable,
    PriceTier,
    known_models,
    load_prices,
)
from kit_telemetry.tokens import TokenUsage

# https://www.anthropic.com/pricing : $3 / $15 per MTok, cache read $0.30, 5-minute cache
# write $3.75; prompts above 200k input tokens: $6 / $22.50, $0.60, $7.50 (long context).
SONNET = ModelPrice(
    input_per_mtok=3.0,
    output_per_mtok=15.0,
    cache_read_per_mtok=0.3,
    cache_write_per_mtok=3.75,
    tiers=(
        PriceTier(
            above_input_tokens=200_000,
            input_per_mtok=6.0,
            output_per_mtok=22.5,
            cache_read_per_mtok=0.6,
            cache_write_per_mtok=7.5,
        ),
    ),
)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    """One bundled table for the module: building the genai-prices snapshot is the slow part."""
    return PriceTable()


def _genai_total(provider: str, model: str, **usage: int) -> float:
    """What genai-prices itself charges; its input_tokens include cache reads and writes."""
    import genai_prices

    disjoint_input = usage.pop("input_tokens")
    total_input = (
        disjoint_input + usage.get("cache_read_tokens", 0) + usage.get("cache_write_tokens", 0)
    )
    calc = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=total_input, **usage),
        model,
        provider_id=provider,
        # Midday UTC: DeepSeek's daytime rate, the one the table calls standard.
        genai_request_timestamp=datetime.now(timezone.utc).replace(hour=12, minute=0),
    )
    return float(calc.total_price)


# ModelPrice


def test_cost_prices_each_disjoint_token_kind_at_its_own_rate() -> None:
    """Input excludes cache tokens, so every kind is billed once at its own rate."""
    cost = SONNET.cost_usd(
        TokenUsage(
            input_tokens=1000, output_tokens=2000, cache_read_tokens=10000, cache_write_tokens=4000
        )
    )
    assert cost == pytest.approx((1_000 * 3 + 2_000 * 15 + 10_000 * 0.3 + 4_000 * 3.75) / 1e6)
    assert cost == pytest.approx(0.051)


def test_cache_tokens_fall_back_to_the_input_rate_without_cache_rates() -> None:
    """A model without cache prices still bills its cached tokens, at the input rate."""
    price = ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0)
    cost = price.cost_usd(
        TokenUsage(input_tokens=100, output_tokens=0, cache_read_tokens=300, cache_write_tokens=600)
    )
    assert cost == pytest.approx(1_000 * 2.0 / 1e6)


def test_zero_cache_rate_is_free_not_the_input_rate() -> None:
    """A cache rate of 0.0 is a real price and must not be mistaken for a missing one."""
    price = ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0, cache_read_per_mtok=0.0)
    assert (
        price.cost_usd(TokenUsage(input_tokens=0, output_tokens=0, cache_read_tokens=1000000))
        == 0.0
    )


def test_integer_rates_become_floats() -> None:
    """Prices typed as ints compare equal to the same prices typed as floats."""
    price = ModelPrice(input_per_mtok=3, output_per_mtok=15, cache_read_per_mtok=1)
    assert price == ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0, cache_read_per_mtok=1.0)
    assert isinstance(price.input_per_mtok, float)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_per_mtok", -1.0),
        ("output_per_mtok", math.inf),
        ("cache_read_per_mtok", math.nan),
        ("cache_write_per_mtok", "1.0"),
        ("input_per_mtok", True),
        ("output_per_mtok", None),
    ],
)
def test_model_price_rejects_bad_rates_naming_field_and_value(field: str, value: object) -> None:
    """A wrong rate fails at construction, saying which field and what was given."""
    rates: dict[str, object] = {"input_per_mtok": 1.0, "output_per_mtok": 1.0, field: value}
    with pytest.raises(ConfigError) as info:
        ModelPrice(**rates)  # type: ignore[arg-type]
    assert field in str(info.value)
    assert repr(value) in str(info.value)
    assert ">= 0" in str(info.value)


def test_negative_token_counts_are_a_usage_error() -> None:
    """A negative count would produce a negative cost that silently lowers totals."""
    with pytest.raises(UsageError, match="cache_read_tokens=-5"):
        SONNET.cost_usd(TokenUsage(input_tokens=1, output_tokens=1, cache_read_tokens=-5))


# Bundled data


def test_bundled_claude_sonnet_4_5_has_published_rates(table: PriceTable) -> None:
    """Pins Anthropic's published Sonnet 4.5 prices, including the 5-minute cache write."""
    assert table.price_for("anthropic", "claude-sonnet-4-5") == SONNET


def test_bundled_gpt_4o_has_published_rates(table: PriceTable) -> None:
    """Pins OpenAI's gpt-4o prices; OpenAI has no cache-write charge."""
    assert table.price_for("openai", "gpt-4o") == ModelPrice(
        input_per_mtok=2.5, output_per_mtok=10.0, cache_read_per_mtok=1.25
    )


@pytest.mark.parametrize(
    ("provider", "model", "input_tokens", "cache_read_tokens", "cache_write_tokens"),
    [
        ("anthropic", "claude-sonnet-4-5", 1_200, 40_000, 3_000),
        ("openai", "gpt-4o", 5_000, 12_000, 0),
        ("google", "gemini-2.5-pro", 9_000, 2_000, 0),
        ("deepseek", "deepseek-chat", 700, 300, 0),
    ],
)
def test_cost_matches_genai_prices_own_calculation(
    table: PriceTable,
    provider: str,
    model: str,
    input_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> None:
    """The rate mapping (cache read/write, base tier, daytime rate) agrees with the source data."""
    ours = table.cost_usd(
        provider,
        model,
        TokenUsage(
            input_tokens=input_tokens,
            output_tokens=800,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        ),
    )
    theirs = _genai_total(
        provider,
        model,
        input_tokens=input_tokens,
        output_tokens=800,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    assert ours is not None
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert ours > 0


def test_reasoning_tokens_are_priced_as_output(table: PriceTable) -> None:
    """Reasoning is part of output_tokens; genai-prices bills it at the output rate too."""
    ours = table.cost_usd("openai", "o3", TokenUsage(input_tokens=1000, output_tokens=5000))
    price = table.price_for("openai", "o3")
    assert ours == pytest.approx(
        (1_000 * price.input_per_mtok + 5_000 * price.output_per_mtok) / 1e6
    )
    import genai_prices

    theirs = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1_000, output_tokens=5_000, output_reasoning_tokens=4_000),
        "o3",
        provider_id="openai",
    )
    assert ours == pytest.approx(float(theirs.total_price), rel=1e-9)


def test_tiered_prices_use_the_base_tier(table: PriceTable) -> None:
    """Context-length tiers are reduced to the rate below the first threshold."""
    from genai_prices.data_snapshot import get_snapshot
    from genai_prices.types import TieredPrices

    _, info = get_snapshot().find_provider_model("gemini-2.5-pro", None, "google", None)
    tiered = info.get_prices(datetime.now(timezone.utc)).input_mtok
    assert isinstance(tiered, TieredPrices), "fixture expects gemini-2.5-pro to have tiers"
    assert tiered.tiers
    assert table.price_for("gcp.gemini", "gemini-2.5-pro").input_per_mtok == float(tiered.base)


def test_dated_model_names_resolve_to_their_base_model(table: PriceTable) -> None:
    """Providers report dated snapshots; they must still be priced."""
    row = table.find_row("anthropic", "claude-sonnet-4-5-20250929")
    assert row == PriceRow(
        provider="anthropic", model="claude-sonnet-4-5", price=SONNET, source="bundled"
    )


def test_models_priced_only_by_audio_are_not_given_token_prices(table: PriceTable) -> None:
    """whisper-1 bills per second of audio: pricing it per token would be a made-up number."""
    assert table.find_price("openai", "whisper-1") is None


def test_repeated_lookup_is_served_from_the_cache(table: PriceTable) -> None:
    """The second lookup returns the very same object, without another resolution."""
    first = table.find_price("openai", "gpt-4o-mini")
    assert first is not None
    assert table.find_price("openai", "gpt-4o-mini") is first


# Provider names


@pytest.mark.parametrize(
    ("provider", "model", "expected_provider"),
    [
        ("gcp.gemini", "gemini-2.5-pro", "google"),
        ("gcp.vertex_ai", "gemini-2.5-pro", "google"),
        ("gcp.vertex_ai", "claude-sonnet-4-5", "google"),
        ("aws.bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", "aws"),
        ("azure.ai.openai", "gpt-4o", "azure"),
        ("mistral_ai", "mistral-large-latest", "mistral"),
        ("x_ai", "grok-4", "x-ai"),
        ("deepseek", "deepseek-chat", "deepseek"),
        ("OpenAI", "GPT-4o", "openai"),
        ("", "gpt-4o", "openai"),
        (None, "claude-sonnet-4-5", "anthropic"),
        ("my-local-proxy", "claude-sonnet-4-5", "anthropic"),
    ],
)
def test_provider_names_map_to_price_data(
    table: PriceTable, provider: str | None, model: str, expected_provider: str
) -> None:
    """OpenTelemetry GenAI names reach the right price data; unknown ones match by model."""
    row = table.find_row(provider, model)
    assert row is not None
    assert row.provider == expected_provider
    assert row.price.input_per_mtok > 0


@pytest.mark.parametrize(
    ("written", "looked_up"),
    [
        ("x_ai", "xai"),
        ("xai", "x_ai"),
        ("mistral_ai", "mistral"),
        ("gcp.gemini", "gcp.vertex_ai"),
        ("google", "gcp.gemini"),
        ("aws.bedrock", "bedrock"),
        ("azure.ai.openai", "az.ai.openai"),
        ("azure.ai.openai", "azure.ai.inference"),
    ],
)
def test_provider_aliases_are_one_provider(written: str, looked_up: str) -> None:
    """A price scoped by one spelling of a provider applies under its other spellings."""
    mine = ModelPrice(input_per_mtok=1.0, output_per_mtok=1.0)
    table = PriceTable({f"{written}:house-model": mine}, bundled=False)
    assert table.find_price(looked_up, "house-model") is mine
    assert table.find_price("openai", "house-model") is None


def test_vertex_serves_claude_at_anthropic_rates(table: PriceTable) -> None:
    """Vertex AI resells Claude; the same model must not cost differently by accident."""
    assert table.price_for("gcp.vertex_ai", "claude-sonnet-4-5") == SONNET


def test_known_provider_does_not_borrow_another_providers_model(table: PriceTable) -> None:
    """Only an unknown provider falls back to matching by model name alone."""
    assert table.find_price("anthropic", "gpt-4o") is None


# Unknown models and subscriptions


def test_unknown_model_costs_none_with_one_warning(
    table: PriceTable, caplog: pytest.LogCaptureFixture
) -> None:
    """An unpriced call is reported once, never silently billed at 0."""
    caplog.set_level(logging.WARNING, logger="kit_telemetry")
    for _ in range(3):
        assert (
            table.cost_usd("acme", "acme-9000", TokenUsage(input_tokens=10, output_tokens=10))
            is None
        )
    table.cost_usd("acme", "acme-9001", TokenUsage(input_tokens=10, output_tokens=10))
    messages = [r.getMessage() for r in caplog.records if r.name == "kit_telemetry"]
    assert len([m for m in messages if "acme-9000" in m]) == 1
    assert len([m for m in messages if "acme-9001" in m]) == 1
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_unknown_model_warns_once_across_threads(caplog: pytest.LogCaptureFixture) -> None:
    """The warn-once set is guarded by the table's lock: 16 racing threads log one line."""
    caplog.set_level(logging.WARNING, logger="kit_telemetry")
    table = PriceTable(bundled=False)
    barrier = threading.Barrier(16)
    results: list[float | None] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            results.append(
                table.cost_usd("x", "ghost", TokenUsage(input_tokens=1, output_tokens=1))
            )

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [None] * 3_200
    assert len([r for r in caplog.records if "ghost" in r.getMessage()]) == 1


def test_concurrent_first_lookups_agree_with_sequential_ones(table: PriceTable) -> None:
    """First lookups from many threads (genai-prices fills its caches unlocked) stay right."""
    pairs = [(row.provider, row.model) for row in table.known_models("gpt-4")][:40]
    pairs += [("gcp.vertex_ai", "claude-sonnet-4-5"), ("", "gemini-2.5-flash"), ("x", "nope")]
    expected = [table.find_price(provider, model) for provider, model in pairs]
    fresh = PriceTable()
    barrier = threading.Barrier(8)
    seen: list[list[ModelPrice | None]] = []

    def worker() -> None:
        barrier.wait()
        seen.append([fresh.find_price(provider, model) for provider, model in pairs])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [expected] * 8


def test_price_for_raises_lookup_error_naming_the_model(table: PriceTable) -> None:
    """price_for() is the raising lookup; find_price() the one that returns None."""
    assert table.find_price("acme", "acme-9000") is None
    with pytest.raises(LookupError, match="acme-9000"):
        table.price_for("acme", "acme-9000")


def test_subscription_calls_cost_zero(table: PriceTable) -> None:
    """Subscription billing means no per-token charge, even for a priced model."""
    cost = table.cost_usd(
        "anthropic",
        "claude-sonnet-4-5",
        TokenUsage(input_tokens=10**6, output_tokens=10**6),
        subscription=True,
    )
    assert cost == 0.0


def test_subscription_providers_cost_zero_by_any_name() -> None:
    """A provider marked as subscription-billed is matched through its aliases too."""
    table = PriceTable(subscription_providers=["gcp.vertex_ai"])
    assert (
        table.cost_usd("google", "gemini-2.5-pro", TokenUsage(input_tokens=500, output_tokens=5))
        == 0.0
    )
    assert (
        table.cost_usd("gcp.gemini", "unknown-model", TokenUsage(input_tokens=5, output_tokens=5))
        == 0.0
    )
    paid = table.cost_usd("openai", "gpt-4o", TokenUsage(input_tokens=1000000, output_tokens=0))
    assert paid == pytest.approx(2.5)


def test_subscription_providers_must_be_a_list_not_a_string() -> None:
    """A bare string would silently mark providers 'a', 'n', 't', ... as subscriptions."""
    with pytest.raises(ConfigError, match="subscription_providers"):
        PriceTable(subscription_providers="anthropic")


# Overrides


def test_override_wins_over_bundled_price() -> None:
    """User prices (negotiated rates, fine-tunes) beat the public table."""
    mine = ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)
    table = PriceTable({"claude-sonnet-4-5": mine})
    assert table.price_for("anthropic", "claude-sonnet-4-5") is mine
    assert table.find_row("gcp.vertex_ai", "Claude-Sonnet-4-5") == PriceRow(
        provider="", model="claude-sonnet-4-5", price=mine, source="override"
    )
    assert table.cost_usd(
        "anthropic", "claude-sonnet-4-5", TokenUsage(input_tokens=10**6, output_tokens=10**6)
    ) == pytest.approx(3.0)


def test_provider_scoped_override_applies_to_that_provider_only() -> None:
    """'openai:gpt-4o' reprices OpenAI's gpt-4o and leaves Azure's at the bundled rate."""
    mine = ModelPrice(input_per_mtok=9.0, output_per_mtok=9.0)
    table = PriceTable({"openai:gpt-4o": mine})
    assert table.find_price("openai", "gpt-4o") is mine
    azure = table.find_row("azure.ai.openai", "gpt-4o")
    assert azure is not None
    assert azure.source == "bundled"


def test_provider_scoped_override_beats_model_wide_one() -> None:
    """The more specific override wins, whatever the order of the mapping."""
    wide = ModelPrice(input_per_mtok=1.0, output_per_mtok=1.0)
    scoped = ModelPrice(input_per_mtok=2.0, output_per_mtok=2.0)
    table = PriceTable({"gcp.gemini:my-model": scoped, "my-model": wide}, bundled=False)
    assert table.find_price("gcp.vertex_ai", "my-model") is scoped
    assert table.find_price("openai", "my-model") is wide


def test_colon_in_a_model_id_is_not_read_as_a_provider() -> None:
    """Bedrock and Ollama ids contain colons; only known provider names are split off."""
    bedrock = ModelPrice(input_per_mtok=1.0, output_per_mtok=1.0)
    ollama = ModelPrice(input_per_mtok=0.0, output_per_mtok=0.0)
    table = PriceTable(
        {"anthropic.claude-3-haiku-20240307-v1:0": bedrock, "llama3:8b": ollama}, bundled=False
    )
    assert table.find_price("aws.bedrock", "anthropic.claude-3-haiku-20240307-v1:0") is bedrock
    assert table.find_price("ollama", "llama3:8b") is ollama


def test_bundled_false_prices_only_overrides() -> None:
    """Without bundled data, public models are unknown rather than priced."""
    table = PriceTable(bundled=False)
    assert table.find_price("openai", "gpt-4o") is None
    assert table.known_models() == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"m": 1.0}, "expected a ModelPrice"),
        ({"": SONNET}, "expected 'model' or 'provider:model'"),
        ([("m", SONNET)], "expected a mapping of ModelPrice"),
    ],
)
def test_bad_override_mappings_are_config_errors(overrides: object, fragment: str) -> None:
    """Wrong override shapes fail at construction with what was expected."""
    with pytest.raises(ConfigError, match=fragment):
        PriceTable(overrides)  # type: ignore[arg-type]


# known_models


def test_known_models_filters_by_text_and_glob(table: PriceTable) -> None:
    """Listing searches model names by substring or glob, case-insensitively."""
    by_text = table.known_models("SONNET-4-5")
    assert any(r.provider == "anthropic" and r.model == "claude-sonnet-4-5" for r in by_text)
    assert all("sonnet-4-5" in r.model.lower() for r in by_text)
    by_glob = table.known_models("gpt-4o*")
    assert {r.model for r in by_glob} >= {"gpt-4o", "gpt-4o-mini"}
    assert all(r.model.lower().startswith("gpt-4o") for r in by_glob)
    assert {r.provider for r in table.known_models("anthropic:*")} == {"anthropic"}


def test_known_models_lists_overrides_first() -> None:
    """Overrides are shown with their source so a listing explains a surprising cost."""
    mine = ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)
    rows = PriceTable({"openai:gpt-4o": mine}).known_models("gpt-4o")
    assert rows[0] == PriceRow(provider="openai", model="gpt-4o", price=mine, source="override")
    assert all(row.source == "bundled" for row in rows[1:])


def test_module_known_models_lists_bundled_data() -> None:
    """The module-level helper lists the bundled table."""
    rows = known_models("claude-sonnet-4-5")
    assert rows and all(row.source == "bundled" for row in rows)


# TOML files


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_prices_reads_models_providers_and_labels(tmp_path: Path) -> None:
    """The documented format round-trips into ModelPrice values."""
    path = _write(
        tmp_path,
        """
[models."my-model"]
input_per_mtok = 1
output_per_mtok = 4.0
cache_read_per_mtok = 0.1
cache_write_per_mtok = 1.25

[models."gpt-4o on azure"]
model = "gpt-4o"
provider = "azure.ai.openai"
input_per_mtok = 2.75
output_per_mtok = 11.0
""",
    )
    assert load_prices(path) == {
        "my-model": ModelPrice(
            input_per_mtok=1.0,
            output_per_mtok=4.0,
            cache_read_per_mtok=0.1,
            cache_write_per_mtok=1.25,
        ),
        "azure:gpt-4o": ModelPrice(input_per_mtok=2.75, output_per_mtok=11.0),
    }
    table = PriceTable(str(path))
    assert table.price_for("azure.ai.openai", "gpt-4o").input_per_mtok == 2.75
    assert table.price_for("openai", "gpt-4o").input_per_mtok == 2.5
    assert table.price_for("", "my-model").cache_write_per_mtok == 1.25


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[models."m"]\ninput_per_mtok = 1.0\n', ["'m'", "output_per_mtok is missing"]),
        (
            '[models."m"]\ninput_per_mtok = -2.0\noutput_per_mtok = 1.0\n',
            ["'m'", "input_per_mtok", "-2.0", ">= 0"],
        ),
        (
            '[models."m"]\ninput_per_mtok = "1.0"\noutput_per_mtok = 1.0\n',
            ["'m'", "input_per_mtok", "'1.0'", "finite number"],
        ),
        (
            '[models."m"]\ninput_per_mtok = inf\noutput_per_mtok = 1.0\n',
            ["'m'", "input_per_mtok", "inf"],
        ),
        (
            '[models."m"]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\ncached_per_mtok = 1\n',
            ["'m'", "unknown field 'cached_per_mtok'", "allowed: provider, model"],
        ),
        (
            '[models."m"]\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\nprovider = 3\n',
            ["'m'", "provider = 3"],
        ),
        ("[models]\nm = 1.0\n", ["'m'", "expected a table of rates"]),
        ("[pricing]\nx = 1\n", ["unknown top-level key 'pricing'", "allowed: models"]),
        ("", ["expected a [models"]),
        ('[models."m"\ninput_per_mtok = 1.0\n', ["not valid TOML"]),
        (
            '[models."a"]\nmodel = "x"\ninput_per_mtok = 1.0\noutput_per_mtok = 1.0\n'
            '[models."b"]\nmodel = "X"\ninput_per_mtok = 2.0\noutput_per_mtok = 2.0\n',
            ["'b'", "again", "'a'"],
        ),
    ],
)
def test_bad_price_files_name_model_field_and_value(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    """Every mistake in a price file fails loudly, saying where and what is allowed."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_prices(path)
    for fragment in fragments:
        assert fragment in str(info.value)
    with pytest.raises(ConfigError):
        PriceTable(path)


def test_missing_price_file_is_a_config_error(tmp_path: Path) -> None:
    """A wrong path is a configuration mistake, not an OSError from deep inside."""
    with pytest.raises(ConfigError, match="cannot be read"):
        load_prices(tmp_path / "nope.toml")


_rates = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=30),
    rates=st.tuples(_rates, _rates, st.none() | _rates, st.none() | _rates),
)
def test_price_files_round_trip_any_valid_rates(
    name: str, rates: tuple[float, float, float | None, float | None]
) -> None:
    """Whatever valid rates a file holds are read back exactly."""
    fields = ["input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"]
    lines = [f'[models."{name}"]']
    lines += [
        f"{field} = {value!r}"
        for field, value in zip(fields, rates, strict=True)
        if value is not None
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "prices.toml")
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
        loaded = load_prices(path)
    expected = ModelPrice(**dict(zip(fields, rates, strict=True)))  # type: ignore[arg-type]
    assert loaded == {name: expected}


# Import cost


def test_pricing_never_imports_genai_prices_or_pydantic(tmp_path: Path) -> None:
    """genai-prices (pydantic, 30 MiB) runs in a child process only, cold cache or warm."""
    code = (
        "import sys, kit_telemetry.pricing as p\n"
        "heavy = ('genai_prices', 'pydantic', 'pydantic_core', 'httpx2')\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(loaded())\n"
        "print(p.PriceTable().find_price('openai', 'gpt-4o'))\n"
        "print(loaded())\n"
    )
    env = {**os.environ, "KIT_TELEMETRY_CACHE_DIR": str(tmp_path)}
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        ).stdout.splitlines()
        for _ in range(2)  # the first builds the cache, the second reads it
    ]
    expected_price = repr(
        ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cache_read_per_mtok=1.25)
    )
    assert outputs == [["[]", expected_price, "[]"]] * 2
    assert len(list(tmp_path.glob("prices-*.json"))) == 1
