"""``import kit_telemetry`` loads the SDK and nothing else: the offline tools stay out.

An agent that imports the SDK pays, at start-up, only for what runs beside it. The
command line, the demo, the trace report and the rule generation are imported when the
``kit-telemetry`` command (or a user) asks for them; optional backends and the price data
when configured or first needed. Checked in a fresh interpreter, since this test process
has imported everything already.

The facade's budget names load on first access (a module ``__getattr__``).

Imported today and not asserted against: ``http.server`` and ``wsgiref`` (by
``prometheus_client``, a dependency); ``hashlib`` and ``tempfile`` (text digests, state
writes), kept at import on purpose: imported at first use on the agent's thread they would
be read from disk after the process may have dropped privileges or changed ``sys.path``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OFFLINE_PACKAGES = ("kit_telemetry.cli", "kit_telemetry.report", "kit_telemetry.rules")

# Optional backends (redis, sqlite3, the OTLP exporter and its protobuf), the price data
# (genai_prices, with pydantic), what only the command line uses (argparse), and asyncio.
NOT_IMPORTED = (
    "argparse",
    "asyncio",  # only for async extension handlers, on first use
    "genai_prices",
    "google.protobuf",
    "opentelemetry.exporter",
    "pydantic",
    "redis",
    "requests",
    "sqlite3",
    "opentelemetry.sdk.trace.export",  # by configure(), when exporters are given
)

# Our own modules that only budgets need; the facade loads them on first access of
# ``kt.Budget``, ``kt.BudgetConfig``, ``kt.AlertSinkConfig`` or ``kt.BudgetStatus``, and
# ``configure(budgets=...)`` when it builds the gate.
DEFERRED = ("kit_telemetry.budgets",)


def modules_after(code: str, cwd: Path) -> set[str]:
    """Every module loaded by a fresh interpreter after it ran ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        cwd=cwd,  # the installed package, not a source tree in the working directory
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.split())


def within(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``names`` or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


def test_importing_the_sdk_imports_no_offline_tool(tmp_path: Path) -> None:
    """The CLI, demo, report and rule generation are never loaded into the agent's process."""
    modules = modules_after("import kit_telemetry", tmp_path)
    assert "kit_telemetry.telemetry" in modules  # the SDK itself did load
    assert within(modules, OFFLINE_PACKAGES) == []


def test_importing_the_sdk_imports_no_optional_or_heavy_dependency(tmp_path: Path) -> None:
    """Backends, price data and argparse load when used, not with ``import kit_telemetry``.

    What the OpenTelemetry SDK imports by itself is its own (1.30 imports asyncio, for one).
    """
    modules = modules_after("import kit_telemetry", tmp_path)
    sdk = modules_after("import opentelemetry.sdk.trace, opentelemetry.sdk.resources", tmp_path)
    assert within(modules - sdk, NOT_IMPORTED) == []


def test_importing_the_sdk_imports_no_budget_code(tmp_path: Path) -> None:
    """An agent without budgets does not pay for the budget model when it imports the SDK."""
    modules = modules_after("import kit_telemetry", tmp_path)
    assert within(modules, DEFERRED) == []


def test_the_lazy_facade_names_load_their_modules_on_first_access(tmp_path: Path) -> None:
    """``kt.Budget`` and the others still work; the deferred names checked above are real."""
    modules = modules_after(
        "import kit_telemetry as kt\n"
        "assert kt.Budget.__module__ == 'kit_telemetry.budgets.config'\n"
        "assert kt.BudgetStatus.__module__ == 'kit_telemetry.budgets.status'\n"
        "assert kt.AlertSinkConfig.__module__ == kt.BudgetConfig.__module__\n"
        "assert {'AlertSinkConfig', 'Budget', 'BudgetConfig', 'BudgetStatus'} <= set(dir(kt))",
        tmp_path,
    )
    for module in ("kit_telemetry.budgets.config", "kit_telemetry.budgets.status"):
        assert module in modules


def test_a_budgeted_call_loads_the_budget_code_it_needs(tmp_path: Path) -> None:
    """The admission path's own imports happen, and the call is admitted and charged."""
    code = """
import kit_telemetry as kt
tel = kt.configure(exporters=("none",), budgets=[kt.Budget(name="b", limit_usd=1.0)])
with tel.session("s") as session, session.run("go") as run:
    with run.llm_call("anthropic", "claude-sonnet-4-5", max_tokens=10) as call:
        call.record_usage(input_tokens=10, output_tokens=5, cost_usd=0.005)
[status] = tel.budget_status()
assert abs(status.spent - 0.005) < 1e-9, status
tel.shutdown()
"""
    modules = modules_after(code, tmp_path)
    assert "kit_telemetry.budgets.calls" in modules


def test_the_offline_tools_are_where_the_import_path_check_looks(tmp_path: Path) -> None:
    """The names checked above are real: importing the tools loads them (and argparse)."""
    modules = modules_after(
        "import kit_telemetry.cli.commands.demo, kit_telemetry.cli.demo.agent, "
        "kit_telemetry.report, kit_telemetry.rules",
        tmp_path,
    )
    for package in OFFLINE_PACKAGES:
        assert package in modules
    assert "kit_telemetry.cli.demo.agent" in modules
    assert "argparse" in modules
