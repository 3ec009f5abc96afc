"""Metrics end to end: agent work through ``Telemetry`` -> a real HTTP scrape of /metrics.

``tests/test_metrics.py`` checks ``KitMetrics`` on its own; here the same catalogue is
checked through the whole wiring (instrumentation API -> spans -> aggregator -> pricing ->
metrics -> prometheus-client's HTTP server on 127.0.0.1), parsed with prometheus-client's
own parser, against figures computed in this file from the work done.
"""

from __future__ import annotations

import asyncio
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import kit_telemetry as kt
from kit_telemetry.pricing import ModelPrice

MODEL = "claude-sonnet-4-5"
ANTHROPIC = "anthropic"
WEIRD_TOOL = 'say "hi"\nthen \\ leave'  # quotes, a newline and a backslash in a label value

# The metric table, typed here rather than imported, so a drift in the code shows.
TOKEN_BUCKETS = [float(4**i) for i in range(14)]
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]
RUN_DURATION_BUCKETS = [0.1 * 2**i for i in range(13)]
RUN_LLM_CALL_BUCKETS = [float(2**i) for i in range(9)]
RUN_TOOL_CALL_BUCKETS = [0.0] + [float(2**i) for i in range(10)]
RUN_COST_BUCKETS = [0.0001 * math.sqrt(10) ** i for i in range(13)]  # 0.0001 ... 100

GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
FAMILIES: dict[str, tuple[str, set[str]]] = {
    "gen_ai_client_token_usage": ("histogram", {*GENAI, "gen_ai_token_type"}),
    "gen_ai_client_operation_duration_seconds": ("histogram", {*GENAI, "error_type"}),
    "kit_llm_calls": ("counter", {"provider", "model", "outcome"}),
    "kit_llm_tokens": ("counter", {"provider", "model", "token_type"}),
    "kit_llm_reasoning_tokens": ("counter", {"provider", "model"}),
    "kit_llm_cost_usd": ("counter", {"provider", "model"}),
    "kit_llm_unpriced_calls": ("counter", {"provider", "model"}),
    "kit_agent_runs": ("counter", {"agent", "stop_reason"}),
    "kit_agent_run_duration_seconds": ("histogram", {"agent"}),
    "kit_agent_run_cost_usd": ("histogram", {"agent"}),
    "kit_agent_run_llm_calls": ("histogram", {"agent"}),
    "kit_agent_run_tool_calls": ("histogram", {"agent"}),
    "kit_tool_calls": ("counter", {"tool", "outcome"}),
    "kit_tool_duration_seconds": ("histogram", {"tool"}),
}
BUCKETS = {
    "gen_ai_client_token_usage": TOKEN_BUCKETS,
    "gen_ai_client_operation_duration_seconds": DURATION_BUCKETS,
    "kit_agent_run_duration_seconds": RUN_DURATION_BUCKETS,
    "kit_agent_run_cost_usd": RUN_COST_BUCKETS,
    "kit_agent_run_llm_calls": RUN_LLM_CALL_BUCKETS,
    "kit_agent_run_tool_calls": RUN_TOOL_CALL_BUCKETS,
    "kit_tool_duration_seconds": DURATION_BUCKETS,
}


# --- scraping -----------------------------------------------------------------------------
def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode("utf-8"))


@dataclass
class Scrape:
    families: dict[str, Any]

    @classmethod
    def of(cls, url: str) -> Scrape:
        return cls({f.name: f for f in text_string_to_metric_families(scrape(url))})

    def samples(self, sample_name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample called ``sample_name``, keyed by its labels."""
        out: dict[frozenset[tuple[str, str]], float] = {}
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == sample_name:
                    out[frozenset(sample.labels.items())] = float(sample.value)
        return out

    def nonzero(self, sample_name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {k: v for k, v in self.samples(sample_name).items() if v != 0}

    def value(self, sample_name: str, **labels: str) -> float:
        found = self.samples(sample_name).get(frozenset(labels.items()))
        assert found is not None, f"no sample {sample_name}{labels}"
        return found

    def buckets(self, family: str, **labels: str) -> dict[float, float]:
        """``le`` -> cumulative count of one histogram series."""
        out: dict[float, float] = {}
        for key, value in self.samples(family + "_bucket").items():
            items = dict(key)
            le = items.pop("le")
            if items == labels:
                out[float(le)] = value
        return out


def key(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def cumulative(bounds: list[float], observations: list[float]) -> dict[float, float]:
    out = {b: float(sum(1 for o in observations if o <= b)) for b in bounds}
    out[math.inf] = float(len(observations))
    return out


def assert_buckets(
    found: dict[float, float], bounds: list[float], observations: list[float]
) -> None:
    expected = cumulative(bounds, observations)
    assert len(found) == len(expected)
    for (got_le, got), (want_le, want) in zip(
        sorted(found.items()), sorted(expected.items()), strict=True
    ):
        assert got_le == pytest.approx(want_le, rel=2e-3)  # cost bounds are rounded to 3 digits
        assert got == want, f"bucket le={got_le}"


# --- the work -----------------------------------------------------------------------------
@dataclass
class Work:
    """What the agent did, as the test knows it."""

    runs: dict[str, list[kt.AgentEndEvent]] = field(default_factory=dict)
    anthropic_calls: list[dict[str, int]] = field(default_factory=list)


def _cost(price: ModelPrice, usage: dict[str, int]) -> float:
    return (
        usage.get("input_tokens", 0) * price.input_per_mtok
        + usage.get("output_tokens", 0) * price.output_per_mtok
        + usage.get("cache_read_tokens", 0) * (price.cache_read_per_mtok or price.input_per_mtok)
        + usage.get("cache_write_tokens", 0) * (price.cache_write_per_mtok or price.input_per_mtok)
    ) / 1e6


def do_work(tel: kt.Telemetry) -> Work:
    """Three runs: a full one, one that raises, one cancelled; calls ok, failed, unpriced."""
    work = Work()
    call1 = {
        "input_tokens": 1000,
        "output_tokens": 500,
        "cache_read_tokens": 4000,
        "cache_write_tokens": 2000,
        "reasoning_tokens": 200,
    }
    call4 = {"input_tokens": 300, "output_tokens": 40}
    call5 = {"input_tokens": 50, "output_tokens": 5}
    work.anthropic_calls = [call1, call4, call5]
    with tel.session("s-1") as session:
        with session.run("fix it", agent_name="coder") as run_a:
            with run_a.turn() as turn:
                with turn.llm_call(ANTHROPIC, MODEL) as call:
                    call.record_usage(**call1, finish_reason="tool_use")
                with turn.tool_call("bash") as tool:
                    tool.set_result("ok")
                with turn.tool_call("bash") as tool:
                    tool.set_result("exit 1", is_error=True)
                with turn.tool_call(WEIRD_TOOL) as tool:
                    tool.set_result("hi")
            with run_a.turn() as turn:
                with pytest.raises(RuntimeError), turn.llm_call(ANTHROPIC, MODEL):
                    raise RuntimeError("overloaded")
                with turn.llm_call("acme", "mystery-model") as call:
                    call.record_usage(input_tokens=10, output_tokens=5, finish_reason="tool_use")
            with run_a.turn() as turn, turn.llm_call(ANTHROPIC, MODEL) as call:
                call.record_usage(**call4, finish_reason="end_turn")
        with (
            pytest.raises(ValueError),
            session.run("again", agent_name="coder") as run_b,
            run_b.turn() as turn,
        ):
            with turn.llm_call(ANTHROPIC, MODEL) as call:
                call.record_usage(**call5, finish_reason="tool_use")
            with turn.tool_call("bash"):
                raise ValueError("bad command")
        with (
            pytest.raises(asyncio.CancelledError),
            session.run("wait", agent_name="helper") as run_c,
            run_c.turn() as turn,
            turn.llm_call("openai", "gpt-4o"),
        ):
            raise asyncio.CancelledError()
    for run in (run_a, run_b, run_c):
        assert run.end_event is not None
        work.runs.setdefault(run.agent_name, []).append(run.end_event)
    return work


@pytest.fixture
def tel() -> Iterator[kt.Telemetry]:
    telemetry = kt.Telemetry(prometheus="127.0.0.1:0", exporters=(), strict=True)
    try:
        yield telemetry
    finally:
        telemetry.shutdown()


def _server_url(tel: kt.Telemetry) -> str:
    assert tel.metrics_server is not None
    assert tel.metrics_server.host == "127.0.0.1"
    return tel.metrics_server.url


# --- tests --------------------------------------------------------------------------------
def test_every_family_has_its_exact_name_type_labels_and_buckets(tel: kt.Telemetry) -> None:
    """Dashboards and alert rules match on these exact names, types, labels and buckets."""
    do_work(tel)
    found = Scrape.of(_server_url(tel))
    for name, (kind, label_names) in FAMILIES.items():
        assert name in found.families, f"{name} missing from the scrape"
        family = found.families[name]
        assert family.type == kind, name
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        assert samples, f"{name} has no samples after the work"
        for sample in samples:
            assert set(sample.labels) - {"le"} == label_names, (name, sample.labels)
    for name, bounds in BUCKETS.items():
        series = {
            frozenset((k, v) for k, v in s.labels.items() if k != "le")
            for s in found.families[name].samples
            if s.name == name + "_bucket"
        }
        for labels in series:
            les = sorted(found.buckets(name, **dict(labels)))
            assert les[-1] == math.inf, name
            assert les[:-1] == pytest.approx(bounds, rel=2e-3), name


def test_llm_call_counters_match_the_work(tel: kt.Telemetry) -> None:
    """Calls by outcome, tokens by disjoint kind, reasoning, cost and unpriced calls."""
    work = do_work(tel)
    found = Scrape.of(_server_url(tel))
    price = tel.prices.find_price(ANTHROPIC, MODEL)
    assert price is not None
    pm = {"provider": ANTHROPIC, "model": MODEL}
    acme = {"provider": "acme", "model": "mystery-model"}
    gpt = {"provider": "openai", "model": "gpt-4o"}
    assert found.nonzero("kit_llm_calls_total") == {
        key(**pm, outcome="ok"): 3,
        key(**pm, outcome="error"): 1,
        key(**acme, outcome="ok"): 1,
        key(**gpt, outcome="cancelled"): 1,
    }
    assert found.nonzero("kit_llm_tokens_total") == {
        key(**pm, token_type="input"): 1350,
        key(**pm, token_type="cache_read"): 4000,
        key(**pm, token_type="cache_write"): 2000,
        key(**pm, token_type="output"): 545,
        key(**acme, token_type="input"): 10,
        key(**acme, token_type="output"): 5,
    }
    assert found.nonzero("kit_llm_reasoning_tokens_total") == {key(**pm): 200}
    # Calls that ended without usage (the failed and the cancelled one) are unpriced too.
    assert found.nonzero("kit_llm_unpriced_calls_total") == {
        key(**pm): 1,
        key(**acme): 1,
        key(**gpt): 1,
    }
    costs = found.nonzero("kit_llm_cost_usd_total")
    assert set(costs) == {key(**pm)}
    expected_cost = sum(_cost(price, usage) for usage in work.anthropic_calls)
    assert costs[key(**pm)] == pytest.approx(expected_cost, rel=1e-9)
    run_costs = sum(e.cost_usd for events in work.runs.values() for e in events)
    assert run_costs == pytest.approx(expected_cost, rel=1e-9)


def test_genai_token_usage_counts_total_input_including_cache(tel: kt.Telemetry) -> None:
    """gen_ai.client.token.usage input = uncached + cache read + cache write, per call."""
    do_work(tel)
    found = Scrape.of(_server_url(tel))
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": ANTHROPIC,
        "gen_ai_request_model": MODEL,
    }
    inputs = [1000 + 4000 + 2000, 300, 50]
    outputs = [500, 40, 5]
    for token_type, observed in (("input", inputs), ("output", outputs)):
        labels = {**genai, "gen_ai_token_type": token_type}
        assert found.value("gen_ai_client_token_usage_count", **labels) == len(observed)
        assert found.value("gen_ai_client_token_usage_sum", **labels) == sum(observed)
        assert_buckets(
            found.buckets("gen_ai_client_token_usage", **labels), TOKEN_BUCKETS, observed
        )
    acme = {**genai, "gen_ai_provider_name": "acme", "gen_ai_request_model": "mystery-model"}
    assert found.value("gen_ai_client_token_usage_sum", **acme, gen_ai_token_type="input") == 10
    # Calls without usage (the failed and the cancelled one) observe no tokens at all.
    assert set(found.nonzero("gen_ai_client_token_usage_count")) == {
        key(**genai, gen_ai_token_type="input"),
        key(**genai, gen_ai_token_type="output"),
        key(**acme, gen_ai_token_type="input"),
        key(**acme, gen_ai_token_type="output"),
    }


def test_operation_duration_has_empty_error_type_on_success_and_the_type_on_errors(
    tel: kt.Telemetry,
) -> None:
    """error_type is "" for calls that succeeded and names the exception otherwise."""
    do_work(tel)
    found = Scrape.of(_server_url(tel))
    genai = {"gen_ai_operation_name": "chat"}
    anthropic = {**genai, "gen_ai_provider_name": ANTHROPIC, "gen_ai_request_model": MODEL}
    assert found.samples("gen_ai_client_operation_duration_seconds_count") == {
        key(**anthropic, error_type=""): 3,
        key(**anthropic, error_type="RuntimeError"): 1,
        key(
            **genai,
            gen_ai_provider_name="acme",
            gen_ai_request_model="mystery-model",
            error_type="",
        ): 1,
        key(
            **genai,
            gen_ai_provider_name="openai",
            gen_ai_request_model="gpt-4o",
            error_type="CancelledError",
        ): 1,
    }
    total = found.value("gen_ai_client_operation_duration_seconds_sum", **anthropic, error_type="")
    assert 0 <= total < 5


def test_tool_counters_and_durations(tel: kt.Telemetry) -> None:
    """Tool calls by outcome (flagged and raised errors alike) and their durations."""
    do_work(tel)
    found = Scrape.of(_server_url(tel))
    assert found.nonzero("kit_tool_calls_total") == {
        key(tool="bash", outcome="ok"): 1,
        key(tool="bash", outcome="error"): 2,
        key(tool=WEIRD_TOOL, outcome="ok"): 1,
    }
    assert found.samples("kit_tool_duration_seconds_count") == {
        key(tool="bash"): 3,
        key(tool=WEIRD_TOOL): 1,
    }


def test_run_counters_and_histograms_match_the_end_events(tel: kt.Telemetry) -> None:
    """Runs by stop reason; duration, cost and call-count histograms bucket each run once."""
    work = do_work(tel)
    found = Scrape.of(_server_url(tel))
    assert found.nonzero("kit_agent_runs_total") == {
        key(agent="coder", stop_reason="end_turn"): 1,
        key(agent="coder", stop_reason="error"): 1,
        key(agent="helper", stop_reason="cancelled"): 1,
    }
    assert [e.llm_call_count for e in work.runs["coder"]] == [4, 1]
    assert [e.tool_call_count for e in work.runs["coder"]] == [3, 1]
    assert [(e.llm_call_count, e.tool_call_count) for e in work.runs["helper"]] == [(1, 0)]
    for agent, events in work.runs.items():
        observed = {
            "kit_agent_run_llm_calls": [float(e.llm_call_count) for e in events],
            "kit_agent_run_tool_calls": [float(e.tool_call_count) for e in events],
            # A run with an unpriced call has no known cost and is not observed.
            "kit_agent_run_cost_usd": [e.cost_usd for e in events if e.cost_complete],
            "kit_agent_run_duration_seconds": [e.duration_ms / 1000 for e in events],
        }
        for name, values in observed.items():
            assert found.value(name + "_count", agent=agent) == len(values), (name, agent)
            assert found.value(name + "_sum", agent=agent) == pytest.approx(sum(values)), name
            assert_buckets(found.buckets(name, agent=agent), BUCKETS[name], values)
    # The exact figures, not only self-consistency: coder's run llm-call buckets are 1 then 4.
    coder = found.buckets("kit_agent_run_llm_calls", agent="coder")
    assert (coder[1.0], coder[2.0], coder[4.0], coder[math.inf]) == (1, 1, 2, 2)
    tools = found.buckets("kit_agent_run_tool_calls", agent="helper")
    assert (tools[0.0], tools[1.0]) == (1, 1)


def test_a_label_value_with_quotes_and_newlines_keeps_the_scrape_parseable(
    tel: kt.Telemetry,
) -> None:
    """The exposition escapes the value; prometheus-client's parser gets it back exactly."""
    do_work(tel)
    body = scrape(_server_url(tel))
    assert 'tool="say \\"hi\\"\\nthen \\\\ leave"' in body
    families = list(text_string_to_metric_families(body))
    tools = {
        s.labels["tool"]
        for f in families
        for s in f.samples
        if f.name == "kit_tool_calls" and "tool" in s.labels
    }
    assert tools == {"bash", WEIRD_TOOL}
    # Every line is either a comment or exactly one sample: no raw newline leaked.
    sample_lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert len(sample_lines) == sum(len(f.samples) for f in families)


def test_metrics_are_live_between_scrapes(tel: kt.Telemetry) -> None:
    """The endpoint serves current state: work after a scrape shows in the next one."""
    url = _server_url(tel)
    before = Scrape.of(url)
    assert before.nonzero("kit_llm_calls_total") == {}
    with (
        tel.session("s") as session,
        session.run("go") as run,
        run.turn() as turn,
        turn.llm_call(ANTHROPIC, MODEL) as call,
    ):
        call.record_usage(input_tokens=7, output_tokens=3)
    after = Scrape.of(url)
    assert after.nonzero("kit_llm_calls_total") == {
        key(provider=ANTHROPIC, model=MODEL, outcome="ok"): 1
    }
    assert (
        after.value("kit_llm_tokens_total", provider=ANTHROPIC, model=MODEL, token_type="input")
        == 7
    )


def test_budget_denied_calls_and_budget_families_reach_the_scrape() -> None:
    """A refused call is counted as budget_denied only; the budget's own families appear."""
    budget = kt.Budget(name="per-session", scope="session", limit_usd=0.05, action="raise")
    tel = kt.Telemetry(prometheus="127.0.0.1:0", exporters=(), strict=True, budgets=[budget])
    try:
        with (
            pytest.raises(kt.BudgetExceeded),
            tel.session("s") as session,
            session.run("go", agent_name="spender") as run,
        ):
            for _ in range(5):  # $0.018 per call: the third reservation would exceed $0.05
                with (
                    run.turn() as turn,
                    turn.llm_call(ANTHROPIC, MODEL, max_tokens=1000) as call,
                ):
                    call.record_usage(
                        input_tokens=1000, output_tokens=1000, finish_reason="end_turn"
                    )
        found = Scrape.of(_server_url(tel))
    finally:
        tel.shutdown()
    pm = {"provider": ANTHROPIC, "model": MODEL}
    assert found.nonzero("kit_llm_calls_total") == {
        key(**pm, outcome="ok"): 2,
        key(**pm, outcome="budget_denied"): 1,
    }
    # A denied call never reached the model: no duration, no tokens.
    assert (
        found.value(
            "gen_ai_client_operation_duration_seconds_count",
            gen_ai_operation_name="chat",
            gen_ai_provider_name=ANTHROPIC,
            gen_ai_request_model=MODEL,
            error_type="",
        )
        == 2
    )
    assert found.value("kit_llm_tokens_total", **pm, token_type="input") == 2000
    assert found.nonzero("kit_agent_runs_total") == {
        key(agent="spender", stop_reason="budget_exceeded"): 1
    }
    assert run.end_event is not None and run.end_event.llm_call_count == 2
    assert found.families["kit_budget_limit_usd"].type == "gauge"
    assert found.value("kit_budget_limit_usd", budget="per-session") == pytest.approx(0.05)
    decisions = found.nonzero("kit_budget_decisions_total")
    assert decisions[key(budget="per-session", decision="denied")] == 1
    assert decisions[key(budget="per-session", decision="allowed")] == 2


def test_shutdown_stops_the_endpoint() -> None:
    """After shutdown nothing listens on the port any more: the connection is refused."""
    tel = kt.Telemetry(prometheus="127.0.0.1:0", exporters=())
    url = _server_url(tel)
    assert "kit_llm_calls_total" in scrape(url) or "kit_llm_calls" in scrape(url)
    tel.shutdown()
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(url, timeout=2)
    assert isinstance(info.value.reason, ConnectionRefusedError)
    tel.shutdown()  # idempotent
