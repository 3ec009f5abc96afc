"""Tests for the bundled prices: the catalogue against genai-prices itself, and its cache."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kit_telemetry.pricing import ModelPrice, PriceTable
from kit_telemetry.pricing.bundled import BundledPrices
from kit_telemetry.pricing.catalogue import PriceCatalogue
from kit_telemetry.pricing.extract import catalogue_document

# The catalogue against genai-prices


@pytest.fixture(scope="module")
def catalogue() -> PriceCatalogue:
    """The catalogue of the installed genai-prices, extracted in this process."""
    return PriceCatalogue(catalogue_document())


def _texts(rule: Any) -> Iterator[str]:
    """The literal names a match rule mentions (regexes left out)."""
    kind = type(rule).__name__
    if kind in ("ClauseOr", "ClauseAnd"):
        for part in rule.or_ if kind == "ClauseOr" else rule.and_:
            yield from _texts(part)
    for field in ("equals", "starts_with", "ends_with", "contains"):
        value = getattr(rule, field, None)
        if isinstance(value, str):
            yield value


def _refs() -> list[tuple[str, str]]:
    """(provider id, model name) pairs to look up: every model's id and the names its rule
    mentions under its provider, and some of them upper-cased or with a compact date."""
    from genai_prices.data_snapshot import get_snapshot

    pairs: set[tuple[str, str]] = set()
    for provider in get_snapshot().providers:
        for index, info in enumerate(provider.models):
            for text in {info.id, *_texts(info.match)}:
                pairs.add((provider.id, text))
                if index % 3 == 0:
                    pairs.add((provider.id, f"{text}-20250514"))
                if index % 5 == 0:
                    pairs.add((provider.id, text.upper()))
    return sorted(pairs)


def _theirs(provider_id: str, model: str) -> tuple[str, str] | None:
    """(provider id, model id) that genai-prices' own lookup lands on; None when it misses
    or lands on a model not priced by tokens (audio, images), which is unpriced for us."""
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    provider = None
    if provider_id:
        try:
            provider = snapshot.find_provider(None, provider_id, None)
        except LookupError:
            provider = None
    try:
        found, info = snapshot.find_provider_model(model, provider, None, None)
    except LookupError:
        return None
    prices = info.get_prices(datetime.now(timezone.utc))
    if prices.input_mtok is None and prices.output_mtok is None:
        return None
    return found.id, info.id


def _ours(catalogue: PriceCatalogue, provider_id: str, model: str) -> tuple[str, str] | None:
    row = catalogue.find(provider_id, model)
    return None if row is None else (row.provider, row.model)


def test_every_model_resolves_as_genai_prices_resolves_it(catalogue: PriceCatalogue) -> None:
    """Same provider and model as genai-prices for every model, alias and dated name."""
    refs = _refs()
    assert len(refs) > 4_000
    mismatches = [
        (provider_id, model, ours, theirs)
        for provider_id, model in refs
        if (ours := _ours(catalogue, provider_id, model)) != (theirs := _theirs(provider_id, model))
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    "provider_id",
    ["", "litellm", "some-proxy", "azure", "google", "aws", "openrouter", "AZURE_openai"],
)
def test_other_providers_resolve_as_genai_prices_resolves_them(
    catalogue: PriceCatalogue, provider_id: str
) -> None:
    """Unknown providers match by model name; resellers fall back to the model's maker."""
    models = sorted({model for _, model in _refs()})[::11]
    mismatches = [
        (model, ours, theirs)
        for model in models
        if (ours := _ours(catalogue, provider_id, model)) != (theirs := _theirs(provider_id, model))
    ]
    assert mismatches == []


def test_rates_follow_genai_prices_start_dates(catalogue: PriceCatalogue) -> None:
    """A price change on a date applies from that day on, the day before keeps the old rate."""
    from genai_prices.data_snapshot import get_snapshot
    from genai_prices.types import StartDateConstraint, TieredPrices

    checked = 0
    for provider in get_snapshot().providers:
        for info in provider.models:
            if not isinstance(info.prices, list) or not all(
                c.constraint is None or isinstance(c.constraint, StartDateConstraint)
                for c in info.prices
            ):
                continue
            for conditional in info.prices:
                if not isinstance(conditional.constraint, StartDateConstraint):
                    continue
                if _theirs(provider.id, info.id) != (provider.id, info.id):
                    continue  # a model id its own rule does not match: not reachable by id
                start = conditional.constraint.start_date
                for day in (start - timedelta(days=1), start):
                    moment = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
                    rate = info.get_prices(moment).input_mtok
                    if rate is None:
                        continue
                    expected = float(rate.base if isinstance(rate, TieredPrices) else rate)
                    row = catalogue.find(provider.id, info.id, today=day)
                    assert row is not None, (provider.id, info.id, day)
                    assert row.price.input_per_mtok == expected, (provider.id, info.id, day)
                    checked += 1
    assert checked > 20


def test_catalogue_rows_list_only_token_priced_models(catalogue: PriceCatalogue) -> None:
    """whisper-1 bills per second: listed nowhere, found as unpriced."""
    rows = catalogue.rows()
    assert rows == sorted(rows, key=lambda row: (row.provider, row.model))
    assert ("openai", "whisper-1") not in {(row.provider, row.model) for row in rows}
    assert catalogue.find("openai", "whisper-1") is None


def test_empty_catalogue_finds_nothing() -> None:
    """What a process without genai-prices prices from: overrides only."""
    assert PriceCatalogue.empty().find("openai", "gpt-4o") is None
    assert PriceCatalogue.empty().rows() == []


def test_damaged_document_is_rejected() -> None:
    """A cache file of another layout is not half-read."""
    with pytest.raises(ValueError, match="providers"):
        PriceCatalogue({"providers": [{"id": "x"}]})


# The cache


GPT_4O = ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0, cache_read_per_mtok=1.25)


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache file built for the module (a build takes a child process, about 1 s)."""
    directory = tmp_path_factory.mktemp("price-cache")
    BundledPrices(directory).catalogue()
    [cache] = directory.glob("prices-*.json")
    return cache


@pytest.fixture
def warm_cache(tmp_path: Path, built_cache: Path) -> Path:
    """A cache directory of this test's own, with the cache file already in it."""
    shutil.copy(built_cache, tmp_path / built_cache.name)
    return tmp_path


def test_first_preload_builds_the_cache_in_the_background(tmp_path: Path) -> None:
    """A cold cache is built off the caller's thread; a lookup meanwhile waits for it."""
    bundled = BundledPrices(tmp_path)
    bundled.preload()
    table = PriceTable(bundled_prices=bundled)
    assert table.find_price("openai", "gpt-4o") == GPT_4O
    assert bundled.loaded
    [cache] = tmp_path.glob("prices-*.json")
    document = json.loads(cache.read_text(encoding="utf-8"))
    assert document["genai_prices"] == bundled.catalogue().version != ""


def test_preload_with_a_warm_cache_has_the_data_ready_on_return(warm_cache: Path) -> None:
    """Once the cache exists, preload() reads it in place: no lookup waits after it."""
    bundled = BundledPrices(warm_cache)
    assert not bundled.loaded
    PriceTable(bundled_prices=bundled).preload()
    assert bundled.loaded
    assert PriceTable(bundled_prices=bundled).find_price("openai", "gpt-4o") == GPT_4O


def test_lookup_without_preload_loads_the_data(warm_cache: Path) -> None:
    """preload() is an optimisation: a table used without it still prices."""
    table = PriceTable(bundled_prices=BundledPrices(warm_cache))
    assert table.find_price("anthropic", "claude-sonnet-4-5") is not None
    assert [row.source for row in table.known_models("claude-sonnet-4-5")][:1] == ["bundled"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[:1000],  # truncated: a crash or a full disk
        lambda text: '{"providers": [{"models": []}]}',  # JSON, but not a catalogue
        lambda text: text.replace('["regex","', '["regex","(', 1),  # a rule that fails
    ],
    ids=["truncated", "wrong-shape", "bad-regex"],
)
def test_damaged_cache_is_built_again(
    warm_cache: Path, built_cache: Path, damage: Callable[[str], str]
) -> None:
    """A damaged cache file is replaced, not trusted."""
    [cache] = warm_cache.glob("prices-*.json")
    cache.write_text(damage(cache.read_text(encoding="utf-8")), encoding="utf-8")
    bundled = BundledPrices(warm_cache)
    bundled.preload()  # never raises, even on a damaged cache
    table = PriceTable(bundled_prices=bundled)
    assert table.find_price("openai", "gpt-4o") == GPT_4O
    assert cache.read_text(encoding="utf-8") == built_cache.read_text(encoding="utf-8")


def test_unwritable_cache_directory_still_prices(tmp_path: Path) -> None:
    """Where no cache can be written (read-only home), the data is still loaded."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    table = PriceTable(bundled_prices=BundledPrices(blocker / "cache"))
    assert table.find_price("openai", "gpt-4o") == GPT_4O


def test_a_failed_load_is_tried_again_later(
    warm_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A load that fails (twice) leaves models unpriced only until a later lookup retries."""
    from kit_telemetry.pricing import bundled as bundled_module

    real_read = BundledPrices._read_cache
    failures = iter([OSError("disk busy")] * 2)

    def flaky_read(self: BundledPrices) -> PriceCatalogue | None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_read(self)

    monkeypatch.setattr(BundledPrices, "_read_cache", flaky_read)
    bundled = BundledPrices(warm_cache)
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        assert PriceTable(bundled_prices=bundled).find_price("openai", "gpt-4o") is None
    assert "could not be loaded" in caplog.text

    # Not yet due: the empty data is kept rather than loading on every lookup.
    assert PriceTable(bundled_prices=bundled).find_price("openai", "gpt-4o") is None
    monkeypatch.setattr(bundled_module, "_RETRY_AFTER_S", 0.0)
    assert PriceTable(bundled_prices=bundled).find_price("openai", "gpt-4o") == GPT_4O


def test_table_without_bundled_data_never_loads_it(tmp_path: Path) -> None:
    """bundled=False prices from overrides only, and preload() does nothing."""
    bundled = BundledPrices(tmp_path)
    table = PriceTable(bundled=False, bundled_prices=bundled)
    table.preload()
    assert table.find_price("openai", "gpt-4o") is None
    assert table.known_models() == []
    assert not bundled.loaded
    assert list(tmp_path.iterdir()) == []


def test_configure_reads_the_price_cache_before_the_first_call(warm_cache: Path) -> None:
    """With a warm cache, the data is in memory when configure() returns."""
    code = (
        "import kit_telemetry as kt\n"
        "from kit_telemetry.pricing.bundled import BUNDLED\n"
        "tel = kt.configure(exporters=('none',))\n"
        "print(BUNDLED.loaded)\n"
        "tel.shutdown()\n"
    )
    env = {**os.environ, "KIT_TELEMETRY_CACHE_DIR": str(warm_cache)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    assert result.stdout.splitlines() == ["True"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_load_unfinished_at_fork_starts_again_in_the_child(tmp_path: Path) -> None:
    """A child forked while the parent's loading thread runs must not wait for it forever."""
    bundled = BundledPrices(tmp_path)
    bundled.preload()  # cold: a thread builds the cache
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        signal.alarm(60)  # a child left waiting for the parent's thread dies instead of hanging
        try:
            row = PriceTable(bundled_prices=bundled).find_row("openai", "gpt-4o")
            os._exit(0 if row is not None and row.price == GPT_4O else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert bundled.catalogue().find("openai", "gpt-4o") is not None


def test_catalogue_today_defaults_to_the_utc_date(catalogue: PriceCatalogue) -> None:
    """Without a day given, the rates of today (UTC) apply."""
    today = datetime.now(timezone.utc).date()
    assert catalogue.find("openai", "gpt-4o") == catalogue.find("openai", "gpt-4o", today=today)
    assert catalogue.find("openai", "gpt-4o", today=date(2000, 1, 1)) is not None


def test_compiled_rules_match_as_the_rules_as_written() -> None:
    """compile_rules() (run at preload) changes how fast regex rules match, never what."""
    text = json.dumps(catalogue_document())
    lazy, compiled = PriceCatalogue(json.loads(text)), PriceCatalogue(json.loads(text))
    compiled.compile_rules()
    assert '"regex"' in text
    refs = [(p, m) for p, m in _refs() if p in ("anthropic", "openai", "x-ai", "openrouter")]
    assert [compiled.find(p, m) for p, m in refs] == [lazy.find(p, m) for p, m in refs]
    assert any(compiled.find(p, m) is not None for p, m in refs)
