"""A real Prometheus server scrapes a real, paced `kit-telemetry demo` with the shipped config.

exporters/prometheus/prometheus.yml is copied with a 1 s scrape and evaluation interval and
the demo's port; the generated budget rules go with it. The demo runs as a subprocess for
``DEMO_S`` seconds at twenty times real pace (``--duration``, ``--pace``), so that
Prometheus sees rates rather than one jump, then holds its endpoint open (``--hold``)
until the fixture ends the hold with Ctrl-C (SIGINT), which the demo takes as a clean
exit. Once the last values are scraped and the rules evaluated, the tests query
Prometheus's HTTP API: instant queries at that moment (``time=``), range queries over the
demo's whole window, as Grafana would for a dashboard showing it.

The demo's budgets are examples/budgets.toml with the daily limit lowered to what a
demo of a few seconds spends, so that every shipped alert rule has something to fire on;
the shipped rule expressions read the limit from the metrics, so they are the same.
An extension whose handler fails now and then stands in for a broken user extension.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO / "exporters" / "prometheus" / "prometheus.yml"
RULES_DIR = REPO / "exporters" / "prometheus" / "rules"
DASHBOARD = REPO / "exporters" / "grafana" / "kit-telemetry.json"
BUDGETS = REPO / "examples" / "budgets.toml"
HOLD_S = 120  # long enough for a loaded machine; the fixture ends it with Ctrl-C
DEMO_S = 10
DEMO_PACE = 0.05
WARMUP_S = 3.0  # many scrapes of the demo's /metrics before its first run, even under load
DEMO_SEED = 41  # a seed whose first 20 runs cross every band of every budget below
DEADLINE_S = 30 + WARMUP_S + DEMO_S
SCRAPE_MS = 200  # a few scrapes per simulated call at DEMO_PACE
# A daily limit the paced demo crosses (50%, 80%, 100%) within DEMO_S, a run budget that
# more runs reach, a webhook for budget alerts that nobody answers
# (kit_telemetry_internal_errors_total), and an extension whose handler raises on some
# calls (kit_extension_handler_errors_total).
DAILY_LIMIT_USD = 0.15
RUN_MAX_LLM_CALLS = 4
FAILING_EXTENSION = """
import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    @api.on(kt.EventType.LLM_USAGE)
    def flaky(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> None:
        if event.step % 3 == 2:
            raise RuntimeError(f"flaky extension fails at step {event.step}")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Scraped:
    """A Prometheus that has scraped the demo's final values and evaluated its rules."""

    api: str
    at: float  # a time at which every query below sees the demo's final values
    start: float  # before the demo's first run
    demo_stdout: str

    def get(self, path: str, **params: str | float) -> Any:
        url = f"{self.api}{path}?{urllib.parse.urlencode(params)}" if params else self.api + path
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=promql, time=self.at)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, promql: str, step_s: float) -> list[dict[str, Any]]:
        """A range query over the demo's window, ``step_s`` apart, as a graph panel asks."""
        data = self.get(
            "/api/v1/query_range", query=promql, start=self.start, end=self.at, step=step_s
        )
        assert data["resultType"] == "matrix", data
        result: list[dict[str, Any]] = data["result"]
        return result


def try_get(url: str) -> Any:
    """The decoded JSON of a GET, or None while the server is not answering yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def is_ready(api: str) -> bool:
    """Prometheus answers its API before it scrapes; /-/ready says it is scraping."""
    try:
        with urllib.request.urlopen(f"{api}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def rfc3339_to_unix(text: str) -> float:
    """Prometheus writes nanoseconds; Python reads at most microseconds."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def demo_totals_by_model(stdout: str) -> dict[str, float]:
    """The cost column of the demo's closing summary table."""
    totals = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"(\S+)\s+\d+\s+\d+\s+[\d,]+\s+(\d+\.\d+)", line.strip())
        if match and match.group(1) != "total":
            totals[match.group(1)] = float(match.group(2))
    return totals


def stop(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
        raise


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus server is required (Debian: apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus")
    demo_port, prometheus_port = free_port(), free_port()

    config = SHIPPED_CONFIG.read_text(encoding="utf-8")
    for old, new in (
        ("scrape_interval: 15s", f"scrape_interval: {SCRAPE_MS}ms"),
        ("evaluation_interval: 15s", f"evaluation_interval: {SCRAPE_MS}ms"),
        ("127.0.0.1:9464", f"127.0.0.1:{demo_port}"),
    ):
        assert old in config, f"prometheus.yml no longer has {old!r}"
        config = config.replace(old, new)
    (tmp / "prometheus.yml").write_text(config, encoding="utf-8")
    shutil.copytree(RULES_DIR, tmp / "rules")  # rule_files are relative to the config
    budgets = BUDGETS.read_text(encoding="utf-8")
    for old, new in (
        ("limit_usd = 5.00", f"limit_usd = {DAILY_LIMIT_USD}"),
        ("max_llm_calls = 6", f"max_llm_calls = {RUN_MAX_LLM_CALLS}"),
        # Unsized calls reserve nothing, so the first call of a run can overshoot and a
        # session's spend reaches its limit within seconds (KitBudgetExhausted). With
        # conservative reservations a `raise` budget stops just short of its limit instead.
        ("default_max_tokens = 256", "default_max_tokens = 0\ndefault_input_estimate = 0"),
    ):
        assert old in budgets, f"examples/budgets.toml no longer has {old!r}"
        budgets = budgets.replace(old, new)
    budgets += (
        '\n[[alert]]\nkind = "webhook"\n'
        f'url = "http://127.0.0.1:{free_port()}/alerts"\n'  # closed: every delivery fails
        "max_attempts = 1\ntimeout_s = 1.0\n"
    )
    (tmp / "budgets.toml").write_text(budgets, encoding="utf-8")
    (tmp / "flaky_extension.py").write_text(FAILING_EXTENSION, encoding="utf-8")

    api = f"http://127.0.0.1:{prometheus_port}"
    prometheus_log = (tmp / "prometheus.log").open("wb")
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=prometheus_log,
        cwd=tmp,
    )
    demo_out = (tmp / "demo.out").open("wb")
    demo: subprocess.Popen[bytes] | None = None

    def failure(message: str) -> str:
        log = (tmp / "prometheus.log").read_text(errors="replace")[-3000:]
        out = (tmp / "demo.out").read_text(errors="replace")
        return f"{message}\n--- demo ---\n{out}\n--- prometheus ---\n{log}"

    try:
        deadline = time.monotonic() + DEADLINE_S
        while try_get(f"{api}/api/v1/status/runtimeinfo") is None or not is_ready(api):
            assert prometheus.poll() is None, failure("prometheus exited")
            assert time.monotonic() < deadline, failure("prometheus did not start")
            time.sleep(0.1)

        start = time.time()
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kit_telemetry",
                "demo",
                "--prometheus",
                f"127.0.0.1:{demo_port}",
                "--hold",
                str(HOLD_S),
                "--warmup",
                str(WARMUP_S),
                "--duration",
                str(DEMO_S),
                "--pace",
                str(DEMO_PACE),
                "--seed",
                str(DEMO_SEED),
                "--budgets",
                str(tmp / "budgets.toml"),
                "--extension",
                str(tmp / "flaky_extension.py"),
                "--traces",
                str(tmp / "traces.jsonl"),
            ],
            stdout=demo_out,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        # The demo prints "holding ..." once its runs are done and its metrics final.
        while "holding" not in (tmp / "demo.out").read_text(errors="replace"):
            assert demo.poll() is None, failure("the demo exited early")
            assert time.monotonic() < deadline, failure("the demo did not finish its runs")
            time.sleep(0.1)
        expected = demo_totals_by_model((tmp / "demo.out").read_text())
        assert expected, failure("no summary table in the demo's output")

        # Wait for a scrape of the final values, then for a rule evaluation after it.
        seen_at = None
        while seen_at is None:
            assert demo.poll() is None, failure("the demo stopped before Prometheus saw it")
            assert time.monotonic() < deadline, failure("Prometheus never scraped the demo")
            time.sleep(0.2)
            body = try_get(
                f"{api}/api/v1/query?"
                + urllib.parse.urlencode({"query": "sum by (model) (kit_llm_cost_usd_total)"})
            )
            results = body["data"]["result"] if body else []
            got = {r["metric"]["model"]: float(r["value"][1]) for r in results}
            # An unpriced model's cost is 0, and its row in the summary says "unpriced".
            if results and all(
                math.isclose(got.get(m, 0.0), expected.get(m, 0.0), abs_tol=1e-5)
                for m in got.keys() | expected.keys()
            ):
                seen_at = float(results[0]["value"][0])
        while True:
            assert demo.poll() is None, failure("the demo stopped before the rules ran")
            assert time.monotonic() < deadline, failure("the rules were never evaluated")
            body = try_get(f"{api}/api/v1/rules")
            groups = body["data"]["groups"] if body else []
            if groups and all(
                rfc3339_to_unix(g["lastEvaluation"]) > seen_at + 2 for g in groups
            ):  # two evaluations later: rate() windows hold several samples
                break
            time.sleep(0.2)
        yield Scraped(
            api=api, at=time.time(), start=start, demo_stdout=(tmp / "demo.out").read_text()
        )

        # Ctrl-C ends the demo's hold early and cleanly; it is only killed if it hangs.
        demo.send_signal(signal.SIGINT)
        assert demo.wait(20) == 0, failure("the demo failed")
        demo = None
        assert stop(prometheus, 30) == 0, failure("prometheus did not shut down cleanly")
    finally:
        if demo is not None:
            stop(demo, 10)
        if prometheus.poll() is None:
            stop(prometheus, 30)
        demo_out.close()
        prometheus_log.close()


def test_prometheus_scrapes_the_demos_cost_with_provider_and_model(scraped: Scraped) -> None:
    """kit_llm_cost_usd_total reaches Prometheus as the demo counted it, labelled per model."""
    results = scraped.query("kit_llm_cost_usd_total")
    assert results
    for series in results:
        labels = series["metric"]
        assert labels["__name__"] == "kit_llm_cost_usd_total"
        assert labels["provider"] and labels["model"]
        assert labels["job"] == "kit-telemetry-demo"
    providers = {series["metric"]["provider"] for series in results}
    assert {"anthropic", "openai"} <= providers
    by_model = {s["metric"]["model"]: float(s["value"][1]) for s in results}
    expected = demo_totals_by_model(scraped.demo_stdout)
    assert expected and all(cost > 0 for cost in expected.values())
    # The unpriced model's row says "unpriced"; its cost series, if any, stays at 0.
    assert {m: c for m, c in by_model.items() if m in expected} == pytest.approx(expected, abs=1e-5)
    assert all(c == 0 for m, c in by_model.items() if m not in expected)


def test_prometheus_loads_the_generated_budget_rules(scraped: Scraped) -> None:
    """Every group and alert of the committed rule file is loaded and evaluates without error."""
    text = (RULES_DIR / "kit-telemetry-budgets.rules.yml").read_text(encoding="utf-8")
    file_groups = re.findall(r'^  - name: "?([^"\n]+)"?$', text, flags=re.MULTILINE)
    assert file_groups
    groups = scraped.get("/api/v1/rules", type="alert")["groups"]
    assert sorted(g["name"] for g in groups) == sorted(file_groups)
    loaded = [rule for group in groups for rule in group["rules"]]
    assert len(loaded) == text.count("- alert: ")
    assert {rule["name"] for rule in loaded} >= {
        "KitBudgetThresholdCrossed",
        "KitBudgetExhausted",
        "KitBudgetCallsDenied",
    }
    assert all(group["file"].endswith("kit-telemetry-budgets.rules.yml") for group in groups)
    bad = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert bad == []


def test_budget_alerts_fire_on_the_demos_real_budget_gauges(scraped: Scraped) -> None:
    """Which per-session threshold alert fires follows the utilisation the demo exported."""
    (series,) = scraped.query('kit_budget_max_utilization_ratio{budget="per-session"}')
    utilization = float(series["value"][1])
    assert utilization > 0
    firing = {
        (a["metric"]["alertname"], a["metric"].get("threshold", ""))
        for a in scraped.query('ALERTS{alertstate="firing", budget="per-session"}')
    }
    wanted = set()
    if 0.5 <= utilization < 0.8:
        wanted.add(("KitBudgetThresholdCrossed", "0.5"))
    if 0.8 <= utilization < 1:
        wanted.add(("KitBudgetThresholdCrossed", "0.8"))
    if utilization >= 1:
        wanted.add(("KitBudgetExhausted", ""))
    assert wanted, f"the demo left per-session at {utilization:.2f}: below every threshold"
    assert {a for a in firing if a[0] != "KitBudgetCallsDenied"} == wanted


@dataclass(frozen=True)
class PanelQuery:
    """One target of a dashboard panel, its variables filled in as Grafana fills them."""

    where: str
    expr: str
    instant: bool  # a stat, gauge or pie chart: one value at the end of the range


def grafana_variables(scraped: Scraped) -> dict[str, str]:
    """Grafana's values for the dashboard's variables, on a view of the demo's window.

    ``$__interval`` is the range over the panel's points, never below the data source's
    scrape interval (set to the scrape interval, as the exporters README says); a view of a
    few seconds gets the floor. ``$__rate_interval`` is max(``$__interval`` + scrape
    interval, 4 x scrape interval), ``$__range`` the view's length in whole seconds, and
    "All" of a multi-value variable its ``allValue``.
    """
    interval_ms = SCRAPE_MS
    rate_interval_ms = max(interval_ms + SCRAPE_MS, 4 * SCRAPE_MS)
    return {
        "__interval": f"{interval_ms}ms",
        "__rate_interval": f"{rate_interval_ms}ms",
        "__range": f"{round(scraped.at - scraped.start)}s",
        "model": ".*",
        "agent": ".*",
    }


def dashboard_queries(variables: dict[str, str]) -> list[PanelQuery]:
    with DASHBOARD.open(encoding="utf-8") as handle:
        dashboard = json.load(handle)

    def fill(match: re.Match[str]) -> str:
        return variables[match.group(1) or match.group(2)]

    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            expr = re.sub(r"\$\{(\w+)\}|\$(\w+)", fill, target["expr"])
            where = f"{panel['title']} {target['refId']}"
            queries.append(PanelQuery(where=where, expr=expr, instant=bool(target.get("instant"))))
    return queries


def what_is_shown(result: list[dict[str, Any]]) -> str:
    """'data', or why a panel would look broken: 'no series', 'only NaN' or 'only 0'."""
    if not result:
        return "no series"
    values = [
        float(value)
        for series in result
        for _, value in (series["values"] if "values" in series else [series["value"]])
    ]
    if all(math.isnan(v) for v in values):
        return "only NaN"
    if all(v == 0 or math.isnan(v) for v in values):
        return "only 0"
    return "data"


def test_what_is_shown_tells_an_empty_or_flat_panel_from_one_with_data() -> None:
    """The check below is only as good as this classifier."""
    assert what_is_shown([]) == "no series"
    assert what_is_shown([{"value": [1, "NaN"]}, {"value": [1, "NaN"]}]) == "only NaN"
    assert what_is_shown([{"values": [[1, "0"], [2, "NaN"]]}]) == "only 0"
    assert what_is_shown([{"values": [[1, "0"], [2, "0.5"]]}]) == "data"
    assert what_is_shown([{"value": [1, "+Inf"]}]) == "data"


def test_every_dashboard_panel_shows_data_from_the_paced_demo(scraped: Scraped) -> None:
    """Each of the dashboard's queries, as Grafana runs it over the demo, is neither empty,
    nor only NaN, nor only 0: the demo exercises what each panel shows."""
    variables = grafana_variables(scraped)
    step_s = float(variables["__interval"].removesuffix("ms")) / 1000
    queries = dashboard_queries(variables)
    assert len(queries) >= 30
    shown = {}
    for query in queries:
        assert "$" not in query.expr, query
        result = (
            scraped.query(query.expr) if query.instant else scraped.query_range(query.expr, step_s)
        )
        shown[query.where] = what_is_shown(result)
    broken = [f"{where}: {what}" for where, what in shown.items() if what != "data"]
    assert broken == [], "\n".join(broken)


def test_every_shipped_rule_expression_returns_data_over_the_demo(scraped: Scraped) -> None:
    """Every alert of the shipped rule files fires at some point of the demo: none of them
    is dead on arrival (a wrong metric, label or comparison would keep it silent)."""
    groups = scraped.get("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    shipped = sum(
        text.count("- alert: ") + text.count("- record: ")
        for text in (p.read_text(encoding="utf-8") for p in RULES_DIR.glob("*.rules.yml"))
    )
    assert len(rules) == shipped > 0
    silent = []
    for group in groups:
        for rule in group["rules"]:
            what = what_is_shown(scraped.query_range(rule["query"], SCRAPE_MS / 1000))
            if what != "data":
                silent.append(f"{group['name']} {rule['name']} {rule.get('labels', {})}: {what}")
    if silent:  # what Prometheus saw of the budgets, from its first scrape on
        for series in scraped.query_range("kit_budget_max_utilization_ratio", SCRAPE_MS / 1000):
            seen = [(round(float(t) - scraped.start, 1), v[:5]) for t, v in series["values"]]
            silent.append(f"  {series['metric']['budget']} utilisation (s, ratio): {seen[:12]}")
    assert silent == [], "\n".join(silent)


def test_dashboard_budget_use_matches_the_demos_budget_status(scraped: Scraped) -> None:
    """spent / limit on the dashboard is the demo's own figure for the daily budget."""
    (expr,) = [
        query.expr
        for query in dashboard_queries(grafana_variables(scraped))
        if query.where.startswith("Budget use") and "kit_budget_spent_usd" in query.expr
    ]
    use = {s["metric"]["budget"]: float(s["value"][1]) for s in scraped.query(expr)}
    match = re.search(r"daily\s+global\s+spent (\S+) of (\S+) usd", scraped.demo_stdout)
    assert match is not None, scraped.demo_stdout
    assert use["daily"] == pytest.approx(float(match.group(1)) / float(match.group(2)), rel=1e-3)
    assert "per-session" not in use  # many-keyed: shown by its most used key instead
