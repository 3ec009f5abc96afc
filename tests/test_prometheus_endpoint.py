"""The /metrics endpoint: address parsing, lifecycle, and real scrapes over HTTP."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families
from test_metrics import (
    EXPECTED,
    ODD_VALUES,
    OVERFLOW_ONLY,
    llm_event,
    record_everything,
    tool_event,
)

import kit_telemetry as kt
from kit_telemetry.errors import ConfigError
from kit_telemetry.exporters.prometheus import MetricsServer, parse_address, start_metrics_server
from kit_telemetry.metrics import MAX_LABEL_VALUE_CHARS, KitMetrics

# What a Prometheus 2.x server sends.
PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


def scrape(url: str, accept: str | None = None) -> tuple[str, str]:
    """GET the endpoint; returns (content type, body)."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode("utf-8")


def parse(body: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(body)}


@pytest.fixture
def metrics() -> KitMetrics:
    return KitMetrics(registry=CollectorRegistry(), strict=True)


@pytest.fixture
def server(metrics: KitMetrics) -> Any:
    started = start_metrics_server("127.0.0.1:0", registry=metrics.registry)
    yield started
    started.shutdown()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        ("0", ("127.0.0.1", 0)),
        ("localhost:8000", ("localhost", 8000)),
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        (" 127.0.0.1:65535 ", ("127.0.0.1", 65535)),
    ],
)
def test_parse_address_accepts_host_port_and_port_alone(
    address: str, expected: tuple[str, int]
) -> None:
    """ "port" alone binds loopback, never every interface by surprise."""
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    "address",
    ["", "abc", "127.0.0.1:", ":9464", "127.0.0.1:70000", "127.0.0.1:-1", "::1:9464", "[::1]",
     "127.0.0.1:\uff19\uff14\uff16\uff14", "host:port"],
)  # fmt: skip
def test_bad_addresses_raise_config_error_naming_value_and_form(address: str) -> None:
    """A typo fails at start-up with the value and the allowed form in the message."""
    with pytest.raises(ConfigError) as info:
        start_metrics_server(address, registry=CollectorRegistry())
    message = str(info.value)
    assert repr(address) in message
    assert '"HOST:PORT"' in message and '"PORT"' in message


def test_non_string_address_is_a_config_error() -> None:
    """An int port (a common slip) is refused with the accepted forms."""
    with pytest.raises(ConfigError, match="not a string"):
        start_metrics_server(9464, registry=CollectorRegistry())  # type: ignore[arg-type]


def test_port_zero_picks_a_free_port_and_url_points_at_it(server: MetricsServer) -> None:
    """Port 0 binds a real free port, reported by .port and .url."""
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/metrics"
    content_type, _ = scrape(server.url)
    assert content_type.startswith("text/plain")


def test_an_ipv6_address_serves_on_loopback_v6(metrics: KitMetrics) -> None:
    """An "[::1]:0" address listens on the IPv6 loopback; the URL brackets the host."""
    metrics.record_tool_call(tool_event())
    with start_metrics_server("[::1]:0", registry=metrics.registry) as server:
        assert server.host == "::1" and server.port > 0
        assert server.url == f"http://[::1]:{server.port}/metrics"
        _, body = scrape(server.url)
    assert parse(body)["kit_tool_calls"].samples[0].value == 1


def test_scrape_exposes_every_metric_with_values(
    metrics: KitMetrics, server: MetricsServer
) -> None:
    """A real HTTP scrape, parsed by prometheus-client, carries the whole catalogue."""
    record_everything(metrics)
    _, body = scrape(server.url)
    found = parse(body)
    for name, (kind, label_names, _) in EXPECTED.items():
        if name in OVERFLOW_ONLY:
            continue
        family_name = name.removesuffix("_total") if kind == "counter" else name
        family = found[family_name]
        assert family.type == kind, name
        labels = set().union(*(s.labels for s in family.samples)) - {"le"}
        assert labels == set(label_names), name

    def value(sample_name: str, **labels: str) -> float:
        for family in found.values():
            for sample in family.samples:
                if sample.name == sample_name and sample.labels == labels:
                    return float(sample.value)
        raise AssertionError(f"no sample {sample_name}{labels}")

    pm = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert value("kit_llm_calls_total", **pm, outcome="ok") == 1
    assert value("kit_llm_calls_total", **pm, outcome="error") == 1
    assert value("kit_llm_tokens_total", **pm, token_type="cache_read") == 4000
    assert value("kit_llm_unpriced_calls_total", **pm) == 1
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "anthropic",
        "gen_ai_request_model": "claude-sonnet-4-5",
    }
    assert value("gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="input") == 5300
    assert (
        value("gen_ai_client_operation_duration_seconds_count", **genai, error_type="TimeoutError")
        == 1
    )
    assert value("kit_tool_duration_seconds_bucket", tool="bash", le="0.04") == 1
    assert value("kit_agent_run_llm_calls_bucket", agent="coder", le="4.0") == 1
    assert value("kit_budget_limit_usd", budget="daily") == 50
    assert value("kit_budget_spent_usd", budget="daily", scope_key="global") == 12.5
    assert value("kit_budget_alerts_total", budget="daily", kind="warning", threshold="0.5") == 1

    # Values move between scrapes: the endpoint serves live state.
    metrics.record_llm_call(llm_event())
    _, body = scrape(server.url)
    found = parse(body)
    assert value("kit_llm_calls_total", **pm, outcome="ok") == 2


def test_a_scraper_that_asks_for_openmetrics_gets_openmetrics(
    metrics: KitMetrics, server: MetricsServer
) -> None:
    """Prometheus asks for OpenMetrics first; the answer is valid OpenMetrics, EOF included."""
    record_everything(metrics)
    content_type, body = scrape(server.url, accept=PROMETHEUS_2_ACCEPT)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith("# EOF\n")
    families = list(parse_openmetrics(body))  # type: ignore[no-untyped-call]
    names = {family.name for family in families}
    assert {"kit_llm_calls", "gen_ai_client_token_usage", "kit_budget_limit_usd"} <= names


def test_a_scraper_without_accept_gets_the_text_format(
    metrics: KitMetrics, server: MetricsServer
) -> None:
    """curl and older scrapers send no Accept: they get the Prometheus text format 0.0.4."""
    record_everything(metrics)
    content_type, body = scrape(server.url)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in body
    assert parse(body)["kit_llm_calls"].samples


def test_odd_label_values_survive_a_real_scrape(metrics: KitMetrics, server: MetricsServer) -> None:
    """Escaping holds end to end: the parsed scrape gives back the (truncated) values."""
    for odd in ODD_VALUES:
        metrics.record_tool_call(tool_event(odd))
    _, body = scrape(server.url)
    tools = {s.labels["tool"] for s in parse(body)["kit_tool_calls"].samples}
    assert 'quote " and backslash \\ and\nnewline' in tools
    assert "trailing backslash \\" in tools
    assert "x" * MAX_LABEL_VALUE_CHARS in tools
    assert "lone surrogate \ufffd here" in tools


def test_promtool_accepts_the_scrape(metrics: KitMetrics, server: MetricsServer) -> None:
    """Prometheus's own linter finds nothing wrong with the exposition."""
    record_everything(metrics)
    for odd in ODD_VALUES:
        metrics.record_llm_call(llm_event(model=odd))
    _, body = scrape(server.url)
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shutdown_is_idempotent_and_frees_the_port(metrics: KitMetrics) -> None:
    """After shutdown nothing listens; a second shutdown is harmless; the port can be reused."""
    server = start_metrics_server("127.0.0.1:0", registry=metrics.registry)
    port = server.port
    scrape(server.url)
    server.shutdown()
    server.shutdown()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    again = start_metrics_server(f"127.0.0.1:{port}", registry=metrics.registry)
    try:
        assert again.port == port
        scrape(again.url)
    finally:
        again.shutdown()


def test_taken_port_is_a_config_error(server: MetricsServer) -> None:
    """Listening on a port already in use names the address and the cause."""
    with pytest.raises(ConfigError, match=f"cannot listen on '127.0.0.1:{server.port}'"):
        start_metrics_server(f"127.0.0.1:{server.port}", registry=CollectorRegistry())


def test_context_manager_shuts_down(metrics: KitMetrics) -> None:
    """`with start_metrics_server(...)` stops the server on exit."""
    with start_metrics_server("0", registry=metrics.registry) as server:
        url = server.url
        scrape(url)
    with pytest.raises(OSError):
        scrape(url)


def test_gzip_is_served_when_accepted(metrics: KitMetrics, server: MetricsServer) -> None:
    """Prometheus asks for gzip; the compressed body is the same exposition."""
    import gzip

    record_everything(metrics)
    request = urllib.request.Request(server.url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(response.read()).decode("utf-8")
    assert "kit_llm_calls_total" in parse(body)["kit_llm_calls"].samples[0].name


def test_name_filter_restricts_the_answer(metrics: KitMetrics, server: MetricsServer) -> None:
    """?name[]=... answers with only those metrics, as prometheus-client's own server does."""
    record_everything(metrics)
    _, body = scrape(server.url + "?name[]=kit_llm_cost_usd_total")
    assert set(parse(body)) == {"kit_llm_cost_usd"}


def test_name_filter_answers_with_a_call_recorded_just_before(
    metrics: KitMetrics, server: MetricsServer
) -> None:
    """A record lands before its call returns: a restricted scrape right after sees it."""
    metrics.record_tool_call(tool_event())
    _, body = scrape(server.url + "?name[]=kit_tool_calls_total")
    samples = [s for family in parse(body).values() for s in family.samples]
    assert [(s.name, s.labels, s.value) for s in samples] == [
        ("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"}, 1.0)
    ]


def test_configured_endpoint_serves_the_last_run_to_a_restricted_scrape() -> None:
    """configure(prometheus=...) serves its own registry: the run just ended is in the answer."""
    with kt.Telemetry(exporters=(), prometheus="127.0.0.1:0") as tel:
        with tel.session("s-1") as session, session.run("hi", agent_name="coder") as run:
            with run.turn() as turn, turn.tool_call("grep"):
                pass
        assert tel.metrics_server is not None
        _, body = scrape(f"{tel.metrics_server.url}?name[]=kit_tool_calls_total")
    samples = [s for family in parse(body).values() for s in family.samples]
    assert [(s.labels, s.value) for s in samples] == [({"tool": "grep", "outcome": "ok"}, 1.0)]


# What a Prometheus 3.x server sends.
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


@pytest.mark.parametrize(
    "accept", ["application/openmetrics-text; version=1.0.0", PROMETHEUS_3_ACCEPT]
)
def test_exact_openmetrics_accept_header_is_answered_in_openmetrics(
    metrics: KitMetrics, server: MetricsServer, accept: str
) -> None:
    """A scraper that asks for OpenMetrics 1.0.0 (alone, or as Prometheus 3 does) gets it."""
    record_everything(metrics)
    content_type, body = scrape(server.url, accept=accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith("# EOF\n")
    names = {family.name for family in parse_openmetrics(body)}  # type: ignore[no-untyped-call]
    assert "kit_llm_calls" in names


def test_created_series_are_off_by_default_and_on_when_asked() -> None:
    """Neither format carries _created lines unless created_series=True asks for them."""
    for created in (False, True):
        registry = CollectorRegistry()
        metrics = KitMetrics(registry=registry, created_series=created, strict=True)
        record_everything(metrics)
        with start_metrics_server("127.0.0.1:0", registry=registry) as started:
            _, text = scrape(started.url)
            _, openmetrics = scrape(started.url, accept=PROMETHEUS_2_ACCEPT)
        for body in (text, openmetrics):
            assert ("kit_llm_calls_created{" in body) is created
            assert ("gen_ai_client_token_usage_created{" in body) is created
        assert "kit_llm_calls_total{" in text  # the counters themselves stay


def test_turning_created_off_leaves_the_applications_own_metrics_alone() -> None:
    """Our switch is ours: a counter the application registered keeps its _created line."""
    from prometheus_client import Counter

    registry = CollectorRegistry()
    own = Counter("app_requests", "The application's own counter.", registry=registry)
    own.inc()
    metrics = KitMetrics(registry=registry, strict=True)
    record_everything(metrics)
    with start_metrics_server("127.0.0.1:0", registry=registry) as started:
        _, body = scrape(started.url)
    assert "app_requests_created " in body
    assert "kit_llm_calls_created" not in body


def test_promtool_accepts_a_scrape_after_a_label_flood() -> None:
    """100 providers x 100 models: the scrape stays bounded and promtool still finds it clean."""
    registry = CollectorRegistry()
    metrics = KitMetrics(registry=registry, max_series=100)
    for p in range(100):
        for m in range(100):
            metrics.record_llm_call(llm_event(provider=f"provider-{p}", model=f"model-{m}"))
    with start_metrics_server("127.0.0.1:0", registry=registry) as started:
        _, body = scrape(started.url)
    sample_lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    # Without the limit this flood made 700,064 lines (with _created); 101 combinations
    # of each LLM metric is what is left.
    assert len(sample_lines) < 20_000
    assert "kit_metric_series_overflow_total" in body
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
