"""The ready-to-run configs in exporters/: the Grafana dashboard and the Collector config.

The dashboard's PromQL may only name metrics of the metric catalogue. The catalogue in
``kit_telemetry.metrics`` is the reference here; tests/test_metrics.py pins it to the README's metric table.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit_telemetry.cli.commands.demo import DEFAULT_PROMETHEUS, DEFAULT_TRACES
from kit_telemetry.metrics import CATALOGUE

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "exporters" / "grafana" / "kit-telemetry.json"
COLLECTOR = REPO / "exporters" / "otel-collector" / "config.yaml"
README = REPO / "exporters" / "README.md"


# --- PromQL: which metric names an expression reads ------------------------------------------

# Aggregation operators, binary operators and modifiers: words that are never metric names.
_PROMQL_WORDS = frozenset(
    {
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
        "and", "or", "unless", "atan2", "offset", "inf", "nan",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out)."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("", text)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors and subqueries
    text = _LABEL_LIST.sub(r"\1", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, is_call = match.group(1), match.group(2)
        if not is_call and word.lower() not in _PROMQL_WORDS:
            names.add(word)
    # A selector written as {__name__="..."} names its metric in a label.
    names.update(re.findall(r'__name__\s*=~?\s*"([^"]+)"', expr))
    return names


HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def catalogue_series() -> set[str]:
    """Every series name Prometheus can scrape for the catalogue's metrics."""
    series: set[str] = set()
    for spec in CATALOGUE:
        series.add(spec.name)
        if spec.kind == "counter":
            series.add(spec.name.removesuffix("_total") + "_created")
        elif spec.kind == "histogram":
            series.update(spec.name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return series


def test_metric_name_parser_reads_selectors_not_functions_labels_or_keywords() -> None:
    """The checker below is only as good as this parser: it must find real names, and only them."""
    expr = (
        "histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate("
        'gen_ai_client_operation_duration_seconds_bucket{gen_ai_request_model=~"$model"}'
        "[$__rate_interval]))) / on (budget) group_left () max by (budget) "
        '(kit_budget_limit_usd offset 1h) * 1e3 + count(up{job="kit"}) or vector(0)'
    )
    assert metric_names(expr) == {
        "gen_ai_client_operation_duration_seconds_bucket",
        "kit_budget_limit_usd",
        "up",
    }
    assert metric_names('{__name__="kit_llm_calls_total"}') == {"kit_llm_calls_total"}


def test_an_expression_with_a_metric_outside_the_catalogue_is_caught() -> None:
    """A typo (or a metric from another exporter) shows up as an unknown name."""
    known = catalogue_series()
    assert metric_names("sum(rate(kit_llm_cost_total[5m]))") - known == {"kit_llm_cost_total"}
    assert metric_names("sum(rate(kit_llm_cost_usd_total[5m]))") - known == set()
    assert "kit_llm_calls_created" in known  # counters' _created, but no _bucket
    assert "kit_llm_calls_total_bucket" not in known
    assert "gen_ai_client_token_usage_count" in known


# --- the Grafana dashboard -------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    with DASHBOARD.open(encoding="utf-8") as handle:
        dashboard: dict[str, Any] = json.load(handle)
    return dashboard


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())  # collapsed rows hold their panels


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    queries = [
        (f"panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", ())
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            # label_values(SELECTOR, label): the selector is PromQL, the label is not.
            match = re.fullmatch(r"label_values\((.+),\s*\w+\s*\)", text.strip())
            queries.append((f"variable {variable['name']!r}", match.group(1) if match else text))
    return queries


def test_dashboard_is_a_grafana_model_with_panels_and_a_prometheus_datasource_variable() -> None:
    """It imports as is: JSON with a title, uid, panels, and every query on ${datasource}."""
    dashboard = load_dashboard()
    assert dashboard["title"] and dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(all_panels(dashboard))
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 8
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in graphs:
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            assert source == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"]))
            assert {v for v in used if not v.startswith("__")} <= set(variables), panel["title"]


# Grafana's latest schema version for the classic dashboard JSON model (LATEST_VERSION in
# grafana/grafana apps/dashboard/pkg/migration/schemaversion/migrations.go; 42 is the last
# version of the v1 dashboard API). A dashboard below it is migrated on every load.
GRAFANA_SCHEMA_VERSION = 42
# Panel types of Grafana's current core plugins; "graph", "singlestat" and "table-old" were
# Angular panels, which Grafana 12 no longer renders.
CURRENT_PANEL_TYPES = frozenset({"row", "stat", "timeseries", "bargauge", "piechart", "gauge"})


def test_dashboard_is_at_grafanas_current_schema_with_current_panel_structure() -> None:
    """No migration on load: the schema version, panel types and query fields are today's."""
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] == GRAFANA_SCHEMA_VERSION
    assert isinstance(dashboard["refresh"], str)  # v40: refresh is always a string
    assert "time_options" not in dashboard.get("timepicker", {})  # v41: removed
    for panel in all_panels(dashboard):
        assert panel["type"] in CURRENT_PANEL_TYPES, panel["title"]
        if panel["type"] == "row":
            assert panel["panels"] == [] and panel["collapsed"] is False, panel["title"]
            continue
        assert set(panel["fieldConfig"]) == {"defaults", "overrides"}, panel["title"]
        assert isinstance(panel["options"], dict), panel["title"]
        for override in panel["fieldConfig"]["overrides"]:
            for prop in override["properties"]:  # v42: hidden from the graph, hidden from tooltips
                if prop["id"] == "custom.hideFrom" and prop["value"].get("viz"):
                    assert prop["value"].get("tooltip") is True, panel["title"]
        for target in panel["targets"]:
            assert target["editorMode"] == "code", panel["title"]
            # A stat, gauge or pie chart shows one value; a graph a range.
            one_value = panel["type"] in {"stat", "bargauge", "piechart", "gauge"}
            assert target["instant"] is one_value and target["range"] is not one_value, panel[
                "title"
            ]


def test_every_dashboard_expression_names_only_metrics_of_the_catalogue() -> None:
    """A dashboard panel on a metric we do not export would stay empty forever."""
    known = catalogue_series()
    queries = dashboard_queries(load_dashboard())
    assert len(queries) >= 20
    unknown = {
        where: sorted(metric_names(expr) - known)
        for where, expr in queries
        if metric_names(expr) - known
    }
    assert unknown == {}
    for where, expr in queries:
        assert metric_names(expr), f"{where} reads no metric: {expr}"


def test_dashboard_shows_cost_tokens_latency_tool_errors_budgets_and_stop_reasons() -> None:
    """The panels the issue asks for, each reading the right metric in the right way."""
    exprs = [re.sub(r"\s+", " ", expr) for _, expr in dashboard_queries(load_dashboard())]

    def some(*parts: str) -> bool:
        return any(all(part in expr for part in parts) for expr in exprs)

    assert some("rate(kit_llm_cost_usd_total", "by (provider, model)")
    assert some("rate(kit_llm_tokens_total", "by (token_type)")
    for quantile in ("0.5", "0.95"):
        assert some(
            f"histogram_quantile({quantile},", "gen_ai_client_operation_duration_seconds_bucket"
        )
    assert some('kit_tool_calls_total{outcome="error"}', "/", "by (tool)")
    assert some("kit_budget_spent_usd", "/", "kit_budget_limit_usd")
    assert some("kit_budget_max_utilization_ratio")
    assert some("kit_agent_runs_total", "by (stop_reason)")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is required (Debian: apt-get install prometheus)")
    return path


def test_every_dashboard_expression_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule) once Grafana's variables are filled in."""
    fill = {"$__rate_interval": "1m", "$__range": "1h", "$model": ".*", "$agent": ".*"}
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    queries = dashboard_queries(load_dashboard())
    for i, (_, query) in enumerate(queries):
        expr = query
        for variable, value in fill.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        # A JSON string is a valid YAML double-quoted scalar.
        rules += [f"      - record: dashboard:query_{i}", f"        expr: {json.dumps(expr)}"]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text("\n".join(rules) + "\n", encoding="utf-8")
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert f"SUCCESS: {len(queries)} rules found" in output


# --- the OpenTelemetry Collector config --------------------------------------------------------
#
# PyYAML is not a dependency of the package or of its tests, so the config is read with the
# small block-YAML reader below (mappings, sequences of scalars, flow lists, comments), which
# rejects what it does not understand. Where PyYAML is installed the two must agree.


def _scalar(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item.strip()) for item in text[1:-1].split(",") if item.strip()]
    if text == "{}":
        return {}
    if text[:1] in "\"'" and text[-1:] == text[:1] and len(text) > 1:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text[:1] in "{[&*!|>%@`":
        raise ValueError(f"unsupported YAML scalar {text!r}")
    return text


def _strip_comment(line: str) -> str:
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _block(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[Any, int]:
    if lines[pos][1].startswith("- "):
        items = []
        while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
            items.append(_scalar(lines[pos][1][2:].strip()))
            pos += 1
        return items, pos
    mapping: dict[str, Any] = {}
    while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
        key, colon, rest = lines[pos][1].partition(":")
        key, rest = key.strip(), rest.strip()
        if not colon or not key:
            raise ValueError(f"not a 'key: value' line: {lines[pos][1]!r}")
        if key in mapping:
            raise ValueError(f"duplicate key {key!r}")
        pos += 1
        if rest:
            mapping[key] = _scalar(rest)
        elif pos < len(lines) and lines[pos][0] > indent:
            mapping[key], pos = _block(lines, pos, lines[pos][0])
        elif pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
            mapping[key], pos = _block(lines, pos, indent)
        else:
            mapping[key] = None
    return mapping, pos


def parse_block_yaml(text: str) -> Any:
    """Read the block-style YAML subset that config files use; raise on anything else."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        indentation = line[: len(line) - len(line.lstrip())]
        if "\t" in indentation:
            raise ValueError(f"line {number}: tab in indentation")
        lines.append((len(indentation), line.strip()))
    value, pos = _block(lines, 0, lines[0][0])
    if pos != len(lines):
        raise ValueError(f"unexpected indentation at {lines[pos][1]!r}")
    return value


def test_block_yaml_reader_reads_nesting_and_rejects_bad_indentation() -> None:
    """The reader the Collector test relies on sees structure, and fails on broken files."""
    good = "a:\n  b: [x, 'y']  # note\n  c:\n    - 1\n    - \"#2\"\nd: {}\ne:\n- z\n"
    assert parse_block_yaml(good) == {"a": {"b": ["x", "y"], "c": [1, "#2"]}, "d": {}, "e": ["z"]}
    with pytest.raises(ValueError):
        parse_block_yaml("a:\n    b: 1\n  c: 2\n")
    with pytest.raises(ValueError):
        parse_block_yaml("a: 1\na: 2\n")


def load_collector() -> dict[str, Any]:
    text = COLLECTOR.read_text(encoding="utf-8")
    config: dict[str, Any] = parse_block_yaml(text)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        assert yaml.safe_load(text) == config
    return config


def test_collector_config_receives_otlp_and_reads_the_demo_trace_file() -> None:
    """An otlp receiver on loopback, and otlpjsonfile reading what `kit-telemetry demo` writes."""
    config = load_collector()
    assert set(config) == {"receivers", "exporters", "service"}
    otlp = config["receivers"]["otlp"]["protocols"]
    assert otlp["grpc"]["endpoint"] == "127.0.0.1:4317"
    assert otlp["http"]["endpoint"] == "127.0.0.1:4318"  # the OTLP/HTTP exporter's default port
    jsonfile = config["receivers"]["otlpjsonfile"]
    assert any(Path(pattern).name == DEFAULT_TRACES for pattern in jsonfile["include"])
    assert jsonfile["start_at"] == "beginning"
    exporters = config["exporters"]
    assert "debug" in exporters
    # Not the demo's own /metrics port: both can run on one machine.
    assert exporters["prometheus"]["endpoint"] != DEFAULT_PROMETHEUS
    assert exporters["prometheus"]["endpoint"].startswith("127.0.0.1:")


def test_collector_pipelines_use_exactly_the_components_defined() -> None:
    """The Collector refuses to start on an undefined component, and warns on unused ones."""
    config = load_collector()
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] and pipeline["exporters"], name
        for section, ids in used.items():
            for component in pipeline.get(section, []):
                assert component in config.get(section, {}), (
                    f"{name}: {section} {component!r} undefined"
                )
                ids.add(component)
    for section, ids in used.items():
        defined = set(config.get(section, {}))
        assert ids == defined, f"{section}: unused {defined - ids}"
    assert {"otlp", "otlpjsonfile"} <= set(pipelines["traces"]["receivers"])
    assert "prometheus" in pipelines["metrics"]["exporters"]


# Options the Collector's own docs mark deprecated, by component type (the part of a
# component id before any "/name"), with what replaced them. The Collector still starts
# with most of them, logging a warning; then they go. Read from the component READMEs
# and changelogs of opentelemetry-collector and -contrib.
DEPRECATED_COLLECTOR_OPTIONS: dict[tuple[str, str], dict[str, str]] = {
    ("exporters", "logging"): {"": "the debug exporter"},
    ("exporters", "debug"): {"loglevel": "verbosity"},
    ("exporters", "prometheus"): {
        "add_metric_suffixes": "translation_strategy",
        "resource_to_telemetry_conversion": "resource_constant_labels",
    },
    ("exporters", "otlp"): {"batcher": "sending_queue.batch"},
    ("exporters", "otlphttp"): {"batcher": "sending_queue.batch"},
    ("processors", "batch"): {"": "the exporters' sending_queue.batch"},
}


def deprecated_options(config: dict[str, Any]) -> list[str]:
    """Every deprecated component or option in a Collector config, with its replacement."""
    found = []
    for section in ("receivers", "processors", "exporters", "extensions", "connectors"):
        for component_id, settings in (config.get(section) or {}).items():
            kind = component_id.split("/", 1)[0]
            for path, instead in DEPRECATED_COLLECTOR_OPTIONS.get((section, kind), {}).items():
                value: Any = settings or {}
                for key in path.split(".") if path else ():
                    value = value.get(key) if isinstance(value, dict) else None
                if value is not None:
                    where = f"{section}.{component_id}" + (f".{path}" if path else "")
                    found.append(f"{where}: use {instead}")
    telemetry = (config.get("service") or {}).get("telemetry") or {}
    if "address" in (telemetry.get("metrics") or {}):
        found.append("service.telemetry.metrics.address: use service.telemetry.metrics.readers")
    return found


def test_deprecated_option_finder_sees_components_options_and_named_instances() -> None:
    """The check below is only as good as this finder."""
    old = {
        "exporters": {
            "logging": {"loglevel": "debug"},
            "debug/verbose": {"loglevel": "debug"},
            "prometheus": {"endpoint": "x:1", "add_metric_suffixes": True},
            "otlp/backend": {"endpoint": "x:4317", "batcher": {"enabled": True}},
        },
        "processors": {"batch/traces": {}},
        "service": {"telemetry": {"metrics": {"address": ":8888"}}},
    }
    assert deprecated_options(old) == [
        "processors.batch/traces: use the exporters' sending_queue.batch",
        "exporters.logging: use the debug exporter",
        "exporters.debug/verbose.loglevel: use verbosity",
        "exporters.prometheus.add_metric_suffixes: use translation_strategy",
        "exporters.otlp/backend.batcher: use sending_queue.batch",
        "service.telemetry.metrics.address: use service.telemetry.metrics.readers",
    ]
    current = {"exporters": {"debug": {"verbosity": "basic"}, "prometheus": {"endpoint": "x:1"}}}
    assert deprecated_options(current) == []


def test_collector_config_uses_no_deprecated_component_or_option() -> None:
    """A config that starts with warnings today stops starting after the next removals."""
    config = load_collector()
    assert deprecated_options(config) == []
    prometheus = config["exporters"]["prometheus"]
    # The names of the README's metric table: escaped to underscores, unit and _total added.
    assert prometheus["translation_strategy"] == "UnderscoreEscapingWithSuffixes"


# --- exporters/README.md ---------------------------------------------------------------------


def test_readme_says_how_to_run_each_config() -> None:
    """Each config comes with the command that runs it, with paths that exist."""
    text = README.read_text(encoding="utf-8")
    assert "prometheus --config.file=exporters/prometheus/prometheus.yml" in text
    assert "otelcol-contrib --config exporters/otel-collector/config.yaml" in text
    assert "exporters/grafana/kit-telemetry.json" in text
    for path in re.findall(r"exporters/[\w./-]+\.(?:yml|yaml|json)", text):
        assert (REPO / path).exists(), path
