"""Budget configuration: the TOML format of the README and examples/budgets.toml, and an error naming every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit_telemetry.budgets.config import (
    AlertSinkConfig,
    Budget,
    BudgetConfig,
    load_budget_config,
    parse_budget_config,
    parse_ledger_url,
)
from kit_telemetry.budgets.windows import DURATION_UNITS, parse_duration
from kit_telemetry.errors import ConfigError

DESIGN_EXAMPLE = """
[[budget]]
name = "per-session"          # unique; becomes the `budget` label
scope = "session"
limit_usd = 2.00
window = "none"
timezone = "UTC"
warn_at = [0.5, 0.8]
action = "raise"
match = { model = "claude-*" }

[[alert]]
kind = "webhook"
url = "http://127.0.0.1:9000/hook"
events = ["warning", "exceeded"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    return path


def test_the_design_example_loads(tmp_path: Path) -> None:
    """The documented example is a valid file, read into frozen data."""
    config = load_budget_config(write(tmp_path, DESIGN_EXAMPLE))
    assert config == BudgetConfig(
        budgets=(
            Budget(
                name="per-session",
                scope="session",
                limit_usd=2.0,
                warn_at=(0.5, 0.8),
                match={"model": "claude-*"},
            ),
        ),
        alerts=(AlertSinkConfig(kind="webhook", url="http://127.0.0.1:9000/hook"),),
    )
    assert config.ledger == "memory" and config.on_ledger_error == "allow"


def test_ledger_table_and_every_budget_field(tmp_path: Path) -> None:
    """[ledger] sets url and on_ledger_error; every Budget field has a TOML key."""
    config = load_budget_config(
        write(
            tmp_path,
            """
[ledger]
url = "sqlite:/var/lib/agent/budgets.db"
on_ledger_error = "deny"

[[budget]]
name = "daily"
scope = "attribute:team"
limit_usd = 50
limit_tokens = 2_000_000
window = "rolling:24h"
timezone = "Europe/Paris"
action = "warn"
match = { provider = "openai", "attribute:env" = "prod-*" }

[[budget]]
name = "tool-loop"
scope = "run"
max_llm_calls = 25
max_tool_calls = 100

[[alert]]
kind = "callback"
callback = "myapp.alerts:notify"
events = ["exceeded"]

[[alert]]
kind = "log"
""",
        )
    )
    daily, loop = config.budgets
    assert (config.ledger, config.on_ledger_error) == ("sqlite:/var/lib/agent/budgets.db", "deny")
    assert (daily.limit_usd, daily.limit_tokens, daily.window, daily.timezone) == (
        50,
        2_000_000,
        "rolling:24h",
        "Europe/Paris",
    )
    assert dict(daily.match) == {"provider": "openai", "attribute:env": "prod-*"}
    assert daily.units == ("usd", "tokens") and loop.units == ("llm_calls", "tool_calls")
    assert [a.kind for a in config.alerts] == ["callback", "log"]
    assert config.alerts[0].events == ("exceeded",)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[budget]]\nname = "daily"\nlimit_usd = 5\nwindow = "dayly"',
            "budget 'daily': window 'dayly' is not one of none, hour, day, week, month, "
            "rolling:<duration>",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 5\nscope = "team"',
            "budget 'a': scope 'team' is not one of global, session, run, model, provider, "
            "user, attribute:<key>",
        ),
        ('[[budget]]\nname = "a"', "budget 'a': no limit set; set at least one of limit_usd"),
        (
            '[[budget]]\nname = "a"\nlimit_usd = -1',
            "budget 'a': limit_usd -1 must be a number greater",
        ),
        ('[[budget]]\nname = "a"\nlimit_usd = "2"', "budget 'a': limit_usd '2' must be a number"),
        (
            '[[budget]]\nname = "a"\nlimit_tokens = 1.5',
            "budget 'a': limit_tokens 1.5 must be an integer",
        ),
        (
            '[[budget]]\nname = "a"\nmax_llm_calls = 3',
            "budget 'a': max_llm_calls counts calls per agent run, so it needs scope 'run', "
            "not 'global'",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\nwarn_at = [0.8, 0.5]',
            "budget 'a': warn_at [0.8, 0.5] must be strictly increasing",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\nwarn_at = [1.0]',
            "budget 'a': warn_at value 1.0 must be a fraction between 0 and 1",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\nwarn_at = 0.5',
            "budget 'a': warn_at 0.5 must be a list",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\naction = "stop"',
            "budget 'a': action 'stop' is not one of raise, warn, observe",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\nmatch = { modle = "x" }',
            "budget 'a': match key 'modle' is not one of provider, model, agent, user, "
            "attribute:<key>",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\nlimit = 5',
            "budget 'a': unknown key 'limit'; allowed keys: name, scope, limit_usd",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\ntimezone = "Paris"',
            "budget 'a': timezone 'Paris' is not an IANA timezone name",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[[budget]]\nname = "a"\nlimit_usd = 2',
            "budget 'a': name is used by more than one budget",
        ),
        ("[[budget]]\nlimit_usd = 1", "budget #1: name is missing"),
        ("", "no [[budget]] tables"),
        (
            '[[budgets]]\nname = "a"',
            "top level: unknown key 'budgets'; allowed keys: budget, alert, ledger",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[[alert]]\nkind = "email"',
            "alert #1: kind 'email' is not one of log, webhook, callback",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[[alert]]\nkind = "webhook"\nurl = "ftp://x"',
            "alert #1 (webhook): url 'ftp://x' must be an http:// or https:// URL",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[[alert]]\nkind = "log"\nevents = ["oops"]',
            "alert #1 (log): event 'oops' is not one of warning, exceeded",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[[alert]]\nkind = "callback"\ncallback = "mod"',
            "alert #1 (callback): callback 'mod' must be 'pkg.module:function'",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[ledger]\nurl = "postgres://db"',
            "ledger: url 'postgres://db' is not one of memory, sqlite:PATH, redis://HOST:PORT/DB",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[ledger]\non_ledger_error = "ignore"',
            "ledger: on_ledger_error 'ignore' is not one of allow, deny",
        ),
        (
            '[[budget]]\nname = "a"\nlimit_usd = 1\n[ledger]\nurl = "memory"\nttl = 3',
            "ledger: unknown key 'ttl'",
        ),
    ],
)
def test_every_mistake_names_the_budget_field_value_and_choices(
    tmp_path: Path, toml: str, message: str
) -> None:
    """One ConfigError, prefixed with the file, for the first mistake found."""
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_budget_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreadable_or_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    """Missing files and TOML syntax errors are reported the same way."""
    with pytest.raises(ConfigError, match="cannot read budgets file"):
        load_budget_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_budget_config(write(tmp_path, "[[budget]\nname ="))


def test_nothing_is_returned_from_a_half_valid_file() -> None:
    """A mistake in the last table fails the whole file, not just that budget."""
    data = {
        "budget": [
            {"name": "ok", "limit_usd": 1.0},
            {"name": "bad", "limit_usd": 1.0, "window": "x"},
        ]
    }
    with pytest.raises(ConfigError, match="budget 'bad'"):
        parse_budget_config(data, source="inline")


def test_python_budgets_are_checked_and_immutable() -> None:
    """kt.Budget(...) validates like the file does; lists become tuples, match is read-only."""
    match = {"model": "gpt-*"}
    budget = Budget(name="b", limit_usd=1, warn_at=[0.5], match=match)  # type: ignore[arg-type]
    match["model"] = "changed"
    assert budget.warn_at == (0.5,)
    assert budget.match["model"] == "gpt-*"
    with pytest.raises(TypeError):
        budget.match["model"] = "x"  # type: ignore[index]
    with pytest.raises(ConfigError, match="budget name '' must be a non-empty string"):
        Budget(name="", limit_usd=1)
    with pytest.raises(ConfigError, match="limit_tokens True must be an integer"):
        Budget(name="b", limit_tokens=True)
    with pytest.raises(ConfigError, match="not a Budget"):
        BudgetConfig(budgets=({"name": "b"},))  # type: ignore[arg-type]
    config = BudgetConfig(budgets=[budget])  # type: ignore[arg-type]
    assert isinstance(config.budgets, tuple)


def test_ledger_urls() -> None:
    """The three ledger forms (and sqlite:/// for absolute paths)."""
    assert parse_ledger_url("memory") == ("memory", "")
    assert parse_ledger_url("sqlite:budgets.db") == ("sqlite", "budgets.db")
    assert parse_ledger_url("sqlite:///var/lib/b.db") == ("sqlite", "/var/lib/b.db")
    assert parse_ledger_url("redis://10.0.0.1:6379/2") == ("redis", "redis://10.0.0.1:6379/2")
    with pytest.raises(ConfigError, match="needs a file path"):
        parse_ledger_url("sqlite:")


@given(
    st.lists(
        st.tuples(st.integers(1, 500), st.sampled_from(sorted(DURATION_UNITS))),
        min_size=1,
        max_size=4,
    )
)
def test_durations_add_up_their_parts(parts: list[tuple[int, str]]) -> None:
    """Any run of <n><unit> parts parses to the sum of its parts."""
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == sum(n * DURATION_UNITS[unit] for n, unit in parts)
    budget = Budget(name="r", limit_usd=1, window=f"rolling:{text}")
    assert budget.window == f"rolling:{text}"
