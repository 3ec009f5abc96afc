"""Prometheus alerting rules for budgets, with a ``promtool test rules`` file that proves them.

For each budget, from the budget gauges of the metric catalogue (``kit_telemetry.metrics``):

- ``KitBudgetThresholdCrossed``, one rule per ``warn_at`` fraction, holding while usage is
  in ``[threshold, next threshold or 1)`` so that only the highest crossed one fires;
- ``KitBudgetExhausted`` when usage reaches the limit;
- ``KitBudgetForecastExhausted`` for windowed budgets: at the rate of the recent past the
  limit will be reached before the window ends (calendar windows, using
  ``kit_budget_window_end_timestamp_seconds``) or within a horizon (rolling windows);
- ``KitBudgetCallsDenied`` for ``raise`` budgets: calls were refused in the last 5 minutes.
  ``increase()`` sees the first refusal because the enforcer exports every budget's
  decision and alert counters at 0 from the moment the budgets load.

USD budgets of the few-keyed scopes (``global``, ``model``, ``provider``) have their spend
exported per scope key, so their rules divide ``kit_budget_spent_usd`` by
``kit_budget_limit_usd`` and alert per key. Every other budget (many-keyed scopes, token
and call limits) is watched through ``kit_budget_max_utilization_ratio``, the highest
spent/limit over its keys and units. Series are reduced with ``max`` first, so several
scraped processes sharing a ledger do not duplicate alerts.

The rules are specified in ``specs``, proved by the promtool tests of ``promtool_tests``
and written as YAML by ``yaml_writer``. Offline tooling (``kit-telemetry rules``):
``import kit_telemetry`` does not import this package.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..budgets.config import BudgetConfig
from .promtool_tests import generate_rule_tests
from .specs import (
    ALERT_CALLS_DENIED,
    ALERT_EXHAUSTED,
    ALERT_FORECAST,
    ALERT_THRESHOLD,
    RULES_FILENAME,
    RULES_TEST_FILENAME,
    duration,
    rules_of,
    template,
)
from .yaml_writer import YamlValue, file_header, yaml_document

__all__ = [
    "ALERT_CALLS_DENIED",
    "ALERT_EXHAUSTED",
    "ALERT_FORECAST",
    "ALERT_THRESHOLD",
    "RULES_FILENAME",
    "RULES_TEST_FILENAME",
    "generate_rule_tests",
    "generate_rules",
    "write_rules",
]


def generate_rules(config: BudgetConfig) -> str:
    """A Prometheus rules file (YAML) with the alerts of every budget in ``config``.

    One rule group per budget, named ``kit-telemetry-budget:<name>``. Each alert has the
    labels ``severity`` (``critical``, ``warning`` or ``info``), ``budget`` and ``scope``
    (plus ``unit`` and ``threshold`` where they apply) and ``summary``/``description``
    annotations. ``promtool check rules`` accepts the output.
    """
    groups: list[YamlValue] = []
    for budget in config.budgets:
        rules: list[YamlValue] = []
        for rule in rules_of(budget):
            entry: dict[str, YamlValue] = {"alert": rule.alert, "expr": rule.expr}
            if rule.for_s:
                entry["for"] = duration(rule.for_s)
            entry["labels"] = {k: template([v]) for k, v in rule.labels.items()}
            entry["annotations"] = {
                "summary": template(rule.summary),
                "description": template(rule.description),
            }
            rules.append(entry)
        groups.append({"name": f"kit-telemetry-budget:{budget.name}", "rules": rules})
    header = file_header("Prometheus alerting rules for kit-telemetry budgets.")
    return yaml_document(header, {"groups": groups})


def write_rules(config: BudgetConfig, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the rules file and its promtool test file into ``out_dir`` (created if needed).

    Each file is written to a temporary file in ``out_dir`` and renamed over the old one,
    so Prometheus never loads a half-written rules file.

    Returns:
        The paths of the rules file and the test file.

    Raises:
        OSError: the directory or a file cannot be written.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    outputs = [
        (directory / RULES_FILENAME, generate_rules(config)),
        (directory / RULES_TEST_FILENAME, generate_rule_tests(config)),
    ]
    for path, text in outputs:
        _write_atomically(path, text)
    return [path for path, _ in outputs]


def _write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; a rules file is read by the Prometheus user too.
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
