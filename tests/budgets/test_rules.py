"""Prometheus alerting rules for budgets, checked and unit-tested by the real promtool."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kit_telemetry.budgets.config import Budget, BudgetConfig, load_budget_config
from kit_telemetry.rules import (
    RULES_FILENAME,
    RULES_TEST_FILENAME,
    generate_rule_tests,
    generate_rules,
    write_rules,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "budgets.toml"
COMMITTED_RULES = REPO / "exporters" / "prometheus" / "rules"
PROMETHEUS_YML = REPO / "exporters" / "prometheus" / "prometheus.yml"

# Every scope, unit, window kind and action, plus a name that needs escaping everywhere
# (PromQL string, YAML scalar and Go template).
EVERY_KIND = r"""
[ledger]
url = "memory"

[[budget]]
name = "global-usd-none"
scope = "global"
limit_usd = 100
warn_at = [0.25, 0.5, 0.75, 0.9]

[[budget]]
name = "model-usd-tokens-hour"
scope = "model"
limit_usd = 12.5
limit_tokens = 1_000_000
window = "hour"
warn_at = [0.8]
action = "warn"
match = { model = "gpt-*" }

[[budget]]
name = "model-usd-day"
scope = "model"
limit_usd = 40
window = "day"
warn_at = [0.5]

[[budget]]
name = "provider-week"
scope = "provider"
limit_usd = 250
window = "week"
timezone = "Europe/Paris"
warn_at = [0.333, 0.5]

[[budget]]
name = "session-month"
scope = "session"
limit_usd = 2
limit_tokens = 500000
window = "month"
timezone = "America/New_York"
warn_at = [0.5, 0.8]

[[budget]]
name = "run-calls"
scope = "run"
max_llm_calls = 25
max_tool_calls = 100
warn_at = [0.9]

[[budget]]
name = "user-rolling"
scope = "user"
limit_usd = 5
window = "rolling:24h"
warn_at = [0.5]
action = "observe"

[[budget]]
name = "team-rolling-short"
scope = "attribute:team"
limit_tokens = 20000
window = "rolling:90m"
action = "warn"

[[budget]]
name = "global-tokens-rolling"
scope = "global"
limit_tokens = 3000000
window = "rolling:7d"
warn_at = [0.6]

[[budget]]
name = "odd \"name\" {{ .x }} \\ \u03b1"
scope = "global"
limit_usd = 0.03
window = "day"
warn_at = [0.1, 0.2]
"""


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is required (Debian: apt-get install prometheus)")
    return path


def run_promtool(promtool: str, *args: str | Path, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [promtool, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def every_kind_config(tmp_path: Path) -> BudgetConfig:
    path = tmp_path / "every-kind.toml"
    path.write_text(EVERY_KIND, encoding="utf-8")
    return load_budget_config(path)


def rule_blocks(text: str) -> list[dict[str, Any]]:
    """The alert rules of a generated file, read just far enough for these tests."""
    rules: list[dict[str, Any]] = []
    group = ""
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if line.startswith("  - name: "):
            group = line.split(": ", 1)[1].strip("\"'")
        elif line.startswith("      - alert: "):
            rules.append(
                {"group": group, "alert": line.split(": ", 1)[1], "expr": "", "labels": {}}
            )
            section = ""
        elif line.startswith("        ") and not line.startswith("          "):
            section = stripped.split(":", 1)[0]
            if section == "for":
                rules[-1]["for"] = stripped.split(": ", 1)[1].strip('"')
        elif line.startswith("          ") and rules:
            if section == "expr":
                rules[-1]["expr"] += stripped + "\n"
            elif section == "labels":
                key, value = stripped.split(": ", 1)
                rules[-1]["labels"][key] = value.strip("\"'")
    return rules


# --- promtool -----------------------------------------------------------------------------


def test_sample_rules_pass_promtool_check_and_test(promtool: str, tmp_path: Path) -> None:
    """The rules of examples/budgets.toml load in Prometheus and fire as their tests say."""
    rules, tests = write_rules(load_budget_config(EXAMPLE), tmp_path)
    assert (rules.name, tests.name) == (RULES_FILENAME, RULES_TEST_FILENAME)
    checked = run_promtool(promtool, "check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout + checked.stderr
    tested = run_promtool(promtool, "test", "rules", tests.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_scope_unit_and_window_passes_promtool(promtool: str, tmp_path: Path) -> None:
    """Each scope, unit, window kind and action yields rules promtool accepts and proves."""
    rules, tests = write_rules(every_kind_config(tmp_path), tmp_path / "out")
    checked = run_promtool(promtool, "check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run_promtool(promtool, "test", "rules", tests.name, cwd=tests.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (">= 0.5 < 0.8", ">= 0.5 <= 1.0", "threshold bands overlap"),
        (") >= 1\n        labels:", ") > 1\n        labels:", "exhaustion missed at exactly 100%"),
        ("- time())", "- time() - 86400)", "forecast horizon wrong"),
        ('decision="denied"', 'decision="allowed"', "denials read from the wrong series"),
        ("humanizePercentage", "humanize", "annotation renders differently"),
        ("for: 15m", "for: 1h", "forecast waits too long"),
    ],
)
def test_promtool_tests_catch_a_broken_rule(
    promtool: str, tmp_path: Path, old: str, new: str, why: str
) -> None:
    """The generated tests are not vacuous: each kind of mistake in a rule makes them fail."""
    config = load_budget_config(EXAMPLE)
    rules = generate_rules(config)
    assert old in rules, f"mutation for {why!r} does not apply"
    (tmp_path / RULES_FILENAME).write_text(rules.replace(old, new, 1), encoding="utf-8")
    (tmp_path / RULES_TEST_FILENAME).write_text(generate_rule_tests(config), encoding="utf-8")
    tested = run_promtool(promtool, "test", "rules", RULES_TEST_FILENAME, cwd=tmp_path)
    assert tested.returncode != 0, f"promtool missed: {why}"


def test_committed_rules_match_the_example_config() -> None:
    """exporters/prometheus/rules/ is regenerated whenever examples/budgets.toml changes."""
    config = load_budget_config(EXAMPLE)
    assert (COMMITTED_RULES / RULES_FILENAME).read_text(encoding="utf-8") == generate_rules(config)
    assert (COMMITTED_RULES / RULES_TEST_FILENAME).read_text(
        encoding="utf-8"
    ) == generate_rule_tests(config)


def test_prometheus_config_is_valid_and_loads_the_rules(promtool: str) -> None:
    """The shipped prometheus.yml scrapes the demo and its rule file path resolves."""
    checked = run_promtool(promtool, "check", "config", PROMETHEUS_YML)
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert "1 rule files found" in output
    text = PROMETHEUS_YML.read_text(encoding="utf-8")
    assert "127.0.0.1:9464" in text
    assert f"rules/{RULES_FILENAME}" in text


# --- what the rules say -------------------------------------------------------------------


def test_each_budget_gets_thresholds_exhaustion_forecast_and_denials(tmp_path: Path) -> None:
    """Per budget: one alert per warn_at, exhausted, forecast if windowed, denied if raise."""
    config = every_kind_config(tmp_path)
    rules = rule_blocks(generate_rules(config))
    for budget in config.budgets:
        alerts = [r["alert"] for r in rules if r["group"] == f"kit-telemetry-budget:{budget.name}"]
        expected = ["KitBudgetThresholdCrossed"] * len(budget.warn_at) + ["KitBudgetExhausted"]
        if budget.window != "none":
            expected.append("KitBudgetForecastExhausted")
        if budget.action == "raise":
            expected.append("KitBudgetCallsDenied")
        assert alerts == expected, budget.name


def test_few_keyed_usd_budgets_alert_per_scope_key_and_others_on_utilization(
    tmp_path: Path,
) -> None:
    """The metric read matches what the enforcer exports for each scope (the metric catalogue)."""
    rules = rule_blocks(generate_rules(every_kind_config(tmp_path)))
    by_group: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        by_group.setdefault(rule["group"].split(":", 1)[1], []).append(rule)
    for name in ("global-usd-none", "model-usd-day", "provider-week"):
        exhausted = next(r for r in by_group[name] if r["alert"] == "KitBudgetExhausted")
        assert "max by (budget, scope_key) (kit_budget_spent_usd{" in exhausted["expr"]
        assert "kit_budget_limit_usd{" in exhausted["expr"]
    for name in (
        "session-month",
        "run-calls",
        "user-rolling",
        "team-rolling-short",
        "model-usd-tokens-hour",
        "global-tokens-rolling",
    ):
        exhausted = next(r for r in by_group[name] if r["alert"] == "KitBudgetExhausted")
        assert "kit_budget_max_utilization_ratio{" in exhausted["expr"]
        assert "kit_budget_spent_usd" not in exhausted["expr"]


def test_forecast_uses_window_end_for_calendar_windows_and_a_horizon_for_rolling(
    tmp_path: Path,
) -> None:
    """Calendar windows forecast to their end; rolling windows have none to forecast to."""
    rules = rule_blocks(generate_rules(every_kind_config(tmp_path)))
    forecasts = {
        r["group"].split(":", 1)[1]: r for r in rules if r["alert"] == "KitBudgetForecastExhausted"
    }
    daily = forecasts["model-usd-day"]["expr"]
    assert 'predict_linear(kit_budget_spent_usd{budget="model-usd-day"}[1h]' in daily
    assert (
        'scalar(max(kit_budget_window_end_timestamp_seconds{budget="model-usd-day"})) - time()'
        in daily
    )
    assert "unless on (budget, scope_key)" in daily
    assert forecasts["model-usd-day"]["for"] == "15m"
    rolling = forecasts["user-rolling"]["expr"]
    assert "kit_budget_window_end_timestamp_seconds" not in rolling
    assert "[6h], 21600)" in rolling
    assert "global-usd-none" not in forecasts, "no window, nothing to forecast"


def test_severity_follows_scope_and_action(tmp_path: Path) -> None:
    """A shared counter running dry pages; one session at its cap or a dry run does not."""
    rules = rule_blocks(generate_rules(every_kind_config(tmp_path)))

    def severity(group: str, alert: str) -> str:
        rule = next(r for r in rules if r["group"].endswith(":" + group) and r["alert"] == alert)
        labels: dict[str, str] = rule["labels"]
        assert labels["budget"] == group and labels["scope"]
        return labels["severity"]

    assert severity("global-usd-none", "KitBudgetExhausted") == "critical"
    assert severity("global-usd-none", "KitBudgetCallsDenied") == "critical"
    assert severity("global-usd-none", "KitBudgetThresholdCrossed") == "warning"
    assert severity("model-usd-tokens-hour", "KitBudgetExhausted") == "warning"  # action warn
    assert severity("session-month", "KitBudgetExhausted") == "warning"
    assert severity("session-month", "KitBudgetThresholdCrossed") == "info"
    assert severity("user-rolling", "KitBudgetExhausted") == "info"  # action observe


def test_threshold_alerts_carry_their_threshold_label(tmp_path: Path) -> None:
    """Alertmanager can route or inhibit on the crossed fraction."""
    rules = rule_blocks(generate_rules(every_kind_config(tmp_path)))
    crossed = [
        r["labels"]["threshold"]
        for r in rules
        if r["group"].endswith(":global-usd-none") and r["alert"] == "KitBudgetThresholdCrossed"
    ]
    assert crossed == ["0.25", "0.5", "0.75", "0.9"]


def test_generation_is_deterministic() -> None:
    """The same budgets give byte-identical files, so committed rules diff cleanly."""
    config = load_budget_config(EXAMPLE)
    assert generate_rules(config) == generate_rules(config)
    assert generate_rule_tests(config) == generate_rule_tests(config)


def test_budgets_from_python_generate_rules_too(promtool: str, tmp_path: Path) -> None:
    """kt.Budget objects built in code need no TOML file to get alert rules."""
    config = BudgetConfig(
        budgets=(
            Budget(name="code", scope="provider", limit_usd=3, window="month", warn_at=(0.7,)),
        )
    )
    _, tests = write_rules(config, tmp_path)
    tested = run_promtool(promtool, "test", "rules", tests.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- write_rules --------------------------------------------------------------------------


def test_write_rules_replaces_files_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """Prometheus may reload at any moment: a rules file is never seen half-written."""
    out = tmp_path / "new" / "dir"
    (out).mkdir(parents=True)
    (out / RULES_FILENAME).write_text("stale", encoding="utf-8")
    paths = write_rules(load_budget_config(EXAMPLE), out)
    assert paths == [out / RULES_FILENAME, out / RULES_TEST_FILENAME]
    assert sorted(p.name for p in out.iterdir()) == sorted([RULES_FILENAME, RULES_TEST_FILENAME])
    assert (out / RULES_FILENAME).read_text(encoding="utf-8").startswith("# Prometheus")
    assert (out / RULES_FILENAME).stat().st_mode & 0o777 == 0o644


def test_write_rules_creates_the_directory(tmp_path: Path) -> None:
    """-o may name a folder that does not exist yet."""
    paths = write_rules(load_budget_config(EXAMPLE), tmp_path / "a" / "b")
    assert all(p.is_file() for p in paths)


def test_write_rules_fails_cleanly_when_the_target_is_a_file(tmp_path: Path) -> None:
    """An unwritable target raises OSError and leaves nothing behind."""
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OSError):
        write_rules(load_budget_config(EXAMPLE), target)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


# --- a real Prometheus scraping the real metrics ------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("the prometheus server is required (Debian: apt-get install prometheus)")
    return path


@pytest.fixture
def metrics_endpoint() -> Iterator[tuple[Any, str]]:
    from kit_telemetry.exporters.prometheus import start_metrics_server
    from kit_telemetry.metrics import KitMetrics

    metrics = KitMetrics(registry=CollectorRegistry(), strict=True)
    server = start_metrics_server("127.0.0.1:0", registry=metrics.registry)
    try:
        yield metrics, f"127.0.0.1:{server.port}"
    finally:
        server.shutdown()


def test_rules_fire_in_a_real_prometheus_scraping_kit_metrics(
    prometheus_binary: str, metrics_endpoint: tuple[Any, str], tmp_path: Path
) -> None:
    """The rules read the series KitMetrics really exports, with the labels it really sets."""
    metrics, target = metrics_endpoint
    config = load_budget_config(EXAMPLE)
    write_rules(config, tmp_path / "rules")
    # What the enforcer reports mid-demo: one session at 90%, the daily budget spent.
    metrics.set_budget_limit("per-session", "usd", 0.05)
    metrics.set_budget_max_utilization("per-session", 0.9)
    metrics.set_budget_limit("daily", "usd", 5.0)
    metrics.set_budget_usage("daily", "global", 5.0, 0.0)
    metrics.set_budget_window_end("daily", time.time() + 3600)
    metrics.record_budget_decision("daily", "denied")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - rules/{RULES_FILENAME}\n"
        f"scrape_configs:\n  - job_name: kit\n    static_configs:\n"
        f"      - targets: ['{target}']\n",
        encoding="utf-8",
    )
    log_file = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        cwd=tmp_path,
    )
    firing: set[tuple[str, str, str]] = set()
    wanted = {
        ("KitBudgetThresholdCrossed", "per-session", "0.8"),
        ("KitBudgetExhausted", "daily", ""),
        ("KitBudgetCallsDenied", "daily", ""),
    }
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not wanted <= firing:
            time.sleep(0.5)
            # Counter increases need two scrapes; bump the denial count between them.
            metrics.record_budget_decision("daily", "denied")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/alerts", timeout=2
                ) as r:
                    alerts = json.load(r)["data"]["alerts"]
            except OSError:
                continue
            firing = {
                (a["labels"]["alertname"], a["labels"]["budget"], a["labels"].get("threshold", ""))
                for a in alerts
                if a["state"] == "firing"
            }
    finally:
        process.terminate()
        process.wait(30)
        log_file.close()
    log = (tmp_path / "prometheus.log").read_text(errors="replace")
    assert wanted <= firing, f"firing: {sorted(firing)}\n{log[-3000:]}"
    assert ("KitBudgetThresholdCrossed", "per-session", "0.5") not in firing
    assert ("KitBudgetThresholdCrossed", "daily", "0.8") not in firing
