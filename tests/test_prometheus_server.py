"""A real Prometheus server scrapes a real `kit-telemetry demo` with the shipped config.

exporters/prometheus/prometheus.yml is copied with a 1 s scrape interval and the demo's
port; the generated budget rules go with it. The demo runs as a subprocess with
a long ``--hold`` so that Prometheus can scrape it after its runs, however loaded the
machine; the fixture ends the hold with Ctrl-C (SIGINT), which the demo takes as a clean
exit. Once the last values are scraped and the rules evaluated, the tests query
Prometheus's HTTP API *at that moment* (``time=``).
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
DEADLINE_S = 30


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


def try_get(url: str) -> Any:
    """The decoded JSON of a GET, or None while the server is not answering yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


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
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ("127.0.0.1:9464", f"127.0.0.1:{demo_port}"),
    ):
        assert old in config, f"prometheus.yml no longer has {old!r}"
        config = config.replace(old, new)
    (tmp / "prometheus.yml").write_text(config, encoding="utf-8")
    shutil.copytree(RULES_DIR, tmp / "rules")  # rule_files are relative to the config

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
        while try_get(f"{api}/api/v1/status/buildinfo") is None:
            assert prometheus.poll() is None, failure("prometheus exited")
            assert time.monotonic() < deadline, failure("prometheus did not start")
            time.sleep(0.1)

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
                "--runs",
                "6",
                "--budgets",
                str(BUDGETS),
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
            if got.keys() == expected.keys() and all(
                math.isclose(got[m], expected[m], abs_tol=1e-5) for m in got
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
        yield Scraped(api=api, at=time.time(), demo_stdout=(tmp / "demo.out").read_text())

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
        assert float(series["value"][1]) > 0
    providers = {series["metric"]["provider"] for series in results}
    assert {"anthropic", "openai"} <= providers
    by_model = {s["metric"]["model"]: float(s["value"][1]) for s in results}
    expected = demo_totals_by_model(scraped.demo_stdout)
    assert by_model == pytest.approx(expected, abs=1e-5)


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


def dashboard_queries() -> list[tuple[str, str]]:
    fill = {"$__rate_interval": "5s", "$__range": "5m", "$model": ".*", "$agent": ".*"}
    with DASHBOARD.open(encoding="utf-8") as handle:
        dashboard = json.load(handle)
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            expr = target["expr"]
            for variable, value in fill.items():
                expr = expr.replace(variable, value)
            queries.append((f"{panel['title']} {target['refId']}", expr))
    return queries


# Queries on metrics the demo never produces (no extension fails, nothing goes wrong).
ALLOWED_EMPTY = ("kit_extension_handler_errors_total", "kit_telemetry_internal_errors_total")


def test_every_dashboard_query_runs_on_the_demos_data(scraped: Scraped) -> None:
    """The dashboard's PromQL evaluates (no many-to-many matches) and its panels get data."""
    empty = []
    for where, expr in dashboard_queries():
        if not scraped.query(expr) and not any(name in expr for name in ALLOWED_EMPTY):
            empty.append(where)
    assert empty == []


def test_dashboard_budget_use_matches_the_demos_budget_status(scraped: Scraped) -> None:
    """spent / limit on the dashboard is the demo's own figure for the daily budget."""
    (expr,) = [
        expr
        for where, expr in dashboard_queries()
        if where.startswith("Budget use") and "kit_budget_spent_usd" in expr
    ]
    use = {s["metric"]["budget"]: float(s["value"][1]) for s in scraped.query(expr)}
    match = re.search(r"daily\s+global\s+spent (\S+) of (\S+) usd", scraped.demo_stdout)
    assert match is not None, scraped.demo_stdout
    assert use["daily"] == pytest.approx(float(match.group(1)) / float(match.group(2)), rel=1e-3)
    assert "per-session" not in use  # many-keyed: shown by its most used key instead
