"""``kit-telemetry rules`` and ``kit-telemetry check`` through the real CLI entry point."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kit_telemetry as kt
from kit_telemetry.cli import main
from kit_telemetry.rules import RULES_FILENAME, RULES_TEST_FILENAME

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "budgets.toml"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "budgets.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- rules --------------------------------------------------------------------------------


def test_rules_writes_both_files_and_prints_their_paths(tmp_path: Path) -> None:
    """The command's output is the list of files, ready for `xargs promtool check rules`."""
    out_dir = tmp_path / "rules"
    code, out, err = cli("rules", str(EXAMPLE), "-o", str(out_dir))
    assert (code, err) == (0, "")
    assert out.splitlines() == [str(out_dir / RULES_FILENAME), str(out_dir / RULES_TEST_FILENAME)]
    assert "KitBudgetExhausted" in (out_dir / RULES_FILENAME).read_text(encoding="utf-8")


def test_rules_output_passes_promtool(tmp_path: Path) -> None:
    """What the command writes is what CI feeds to promtool."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is required (Debian: apt-get install prometheus)")
    code, _, _ = cli("rules", str(EXAMPLE), "--output-dir", str(tmp_path))
    assert code == 0
    result = subprocess.run(
        [promtool, "test", "rules", RULES_TEST_FILENAME],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kit-telemetry rules budgets.toml` (no -o) writes beside the caller, as the README shows."""
    monkeypatch.chdir(tmp_path)
    code, _, _ = cli("rules", str(EXAMPLE))
    assert code == 0
    assert (tmp_path / RULES_FILENAME).is_file()
    assert (tmp_path / RULES_TEST_FILENAME).is_file()


def test_rules_with_an_invalid_file_exits_2_naming_budget_field_and_value(tmp_path: Path) -> None:
    """A bad budget is a usage error, reported on stderr, with nothing written."""
    path = write(tmp_path, '[[budget]]\nname = "daily"\nlimit_usd = 5\nwindow = "dayly"\n')
    out_dir = tmp_path / "out"
    code, out, err = cli("rules", path, "-o", str(out_dir))
    assert code == 2
    assert out == ""
    assert "budget 'daily'" in err and "window 'dayly'" in err
    assert "none, hour, day, week, month, rolling:<duration>" in err
    assert not out_dir.exists()


def test_rules_with_a_missing_file_exits_2(tmp_path: Path) -> None:
    """A typo in the path is reported with the path, not a traceback."""
    missing = str(tmp_path / "nope.toml")
    code, _, err = cli("rules", missing, "-o", str(tmp_path))
    assert code == 2
    assert missing in err


def test_rules_into_an_unwritable_place_exits_1(tmp_path: Path) -> None:
    """Valid budgets but a target that is a file: the command failed, exit 1."""
    target = tmp_path / "a-file"
    target.write_text("", encoding="utf-8")
    code, out, err = cli("rules", str(EXAMPLE), "-o", str(target))
    assert code == 1
    assert out == ""
    assert "cannot write" in err and str(target) in err


# --- check --------------------------------------------------------------------------------


def test_check_prints_a_table_of_the_budgets(tmp_path: Path) -> None:
    """A valid file exits 0 and lists each budget's scope, limits, window, action, warn_at."""
    code, out, err = cli("check", str(EXAMPLE))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (f"{EXAMPLE}: OK: 3 budgets, 1 alert sink, ledger memory (on error: allow)")
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == ["NAME", "SCOPE", "LIMITS", "WINDOW", "ACTION", "WARN_AT", "MATCH"]
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1 :] if line}
    assert rows["per-session"].split() == ["per-session", "session", "$0.05", "none", "raise",
                                          "50%,", "80%", "-"]  # fmt: skip
    assert "6 LLM calls, 20 tool calls" in rows["tool-loop"]
    assert "day (UTC)" in rows["daily"]
    assert any(line.split()[:2] == ["log", "logger"] for line in lines)


def test_check_shows_tokens_match_and_rolling_windows(tmp_path: Path) -> None:
    """Every kind of limit and filter is visible in the summary."""
    path = write(
        tmp_path,
        """
[[budget]]
name = "team-tokens"
scope = "attribute:team"
limit_tokens = 250000
window = "rolling:24h"
match = { model = "claude-*" }
action = "observe"
""",
    )
    code, out, _ = cli("check", path)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("team-tokens"))
    assert row.split() == ["team-tokens", "attribute:team", "250,000", "tokens", "rolling:24h",
                           "observe", "-", "model=claude-*"]  # fmt: skip


def test_check_hides_webhook_and_ledger_secrets(tmp_path: Path) -> None:
    """Webhook paths and Redis passwords often are credentials; the summary never prints them."""
    path = write(
        tmp_path,
        """
[ledger]
url = "redis://:hunter2@127.0.0.1:6379/0"

[[budget]]
name = "g"
limit_usd = 1

[[alert]]
kind = "webhook"
url = "https://hooks.example.com/services/T000/B000/XXXXSECRET"
events = ["exceeded"]
""",
    )
    code, out, _ = cli("check", path)
    assert code == 0
    assert "hunter2" not in out and "XXXXSECRET" not in out
    assert "redis://:***@127.0.0.1:6379/0" in out
    assert "https://hooks.example.com/..." in out


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[[budget]]\nname = "daily"\nlimit_usd = 5\nwindow = "dayly"\n',
            ["budget 'daily'", "window 'dayly'", "rolling:<duration>"],
        ),
        (
            '[[budget]]\nname = "s"\nscope = "team"\nlimit_usd = 1\n',
            ["budget 's'", "scope 'team'", "attribute:<key>"],
        ),
        (
            '[[budget]]\nname = "s"\nlimit_usd = 1\nwarn_at = [0.8, 0.5]\n',
            ["budget 's'", "warn_at", "strictly increasing"],
        ),
        (
            '[[budget]]\nname = "s"\nlimit_usd = 1\naction = "stop"\n',
            ["budget 's'", "action 'stop'", "raise, warn, observe"],
        ),
        (
            '[[budget]]\nname = "s"\nlimit_usd = -1\n',
            ["budget 's'", "limit_usd -1", "greater than 0"],
        ),
        (
            '[[budget]]\nname = "s"\nlimit_usd = 1\nlimt_tokens = 5\n',
            ["budget 's'", "unknown key 'limt_tokens'"],
        ),
        (
            '[[budget]]\nname = "s"\nlimit_usd = 1\n[[alert]]\nkind = "webhook"\n'
            'url = "ftp://x/hook"\n',
            ["alert #1", "url 'ftp://x/hook'", "http://"],
        ),
        ('[[budget]]\nname = "s"\nlimit_usd = \n', ["not valid TOML"]),
    ],
)
def test_check_rejects_mistakes_with_exit_2_and_a_precise_message(
    tmp_path: Path, toml: str, expected: list[str]
) -> None:
    """Each mistake names the budget (or alert), the field, the value and what is allowed."""
    path = write(tmp_path, toml)
    code, out, err = cli("check", path)
    assert code == 2
    assert out == ""
    assert err.startswith(f"kit-telemetry check: {path}: ")
    for fragment in expected:
        assert fragment in err


def test_help_lists_rules_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Both commands register from the one module."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert "write Prometheus alerting rules" in help_text
    assert "validate a budgets file" in help_text


def test_rules_help_describes_the_output_option(capsys: pytest.CaptureFixture[str]) -> None:
    """`kit-telemetry rules --help` documents -o and its default."""
    with pytest.raises(SystemExit):
        main(["rules", "--help"])
    help_text = capsys.readouterr().out
    assert "-o DIR, --output-dir DIR" in help_text
    assert RULES_FILENAME in help_text


# --- check validates what configure validates -----------------------------------------------

CALLBACK_FILE = """
[[budget]]
name = "g"
limit_usd = 1

[[alert]]
kind = "callback"
callback = "{target}"
events = ["exceeded"]
"""


def _configure_error(path: str) -> str | None:
    """What configure(budgets=path) says about the file (None: it accepts it)."""
    try:
        tel = kt.Telemetry(exporters=(), budgets=path)
    except kt.ConfigError as exc:
        return str(exc)
    tel.shutdown()
    return None


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("kit_telemetry_no_such_module:on_alert", "cannot import module"),
        ("kit_telemetry.budgets.alerts:no_such_function", "has no attribute"),
        ("kit_telemetry.budgets.alerts:__all__", "not a callable"),
    ],
)
def test_check_refuses_a_callback_that_configure_refuses(
    tmp_path: Path, target: str, fragment: str
) -> None:
    """`check` said OK for a callback configure() could not import; now both refuse it."""
    path = write(tmp_path, CALLBACK_FILE.format(target=target))
    refused = _configure_error(path)
    assert refused is not None and fragment in refused
    code, out, err = cli("check", path)
    assert code == 2
    assert out == ""
    assert err == f"kit-telemetry check: {path}: {refused}\n"


def test_check_json_reports_the_callback_error(tmp_path: Path) -> None:
    """--json says valid=false with the same message, so CI can show it."""
    path = write(tmp_path, CALLBACK_FILE.format(target="kit_telemetry_no_such_module:f"))
    code, out, _ = cli("check", "--json", path)
    assert code == 2
    doc = json.loads(out)
    assert doc["file"] == path
    assert doc["valid"] is False
    assert doc["error"] == f"{path}: {_configure_error(path)}"


def test_check_imports_callbacks_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hooks.py beside the budgets file imports, as it does for the agent run from there."""
    module = f"kt_hooks_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text("def on_alert(event):\n    pass\n", encoding="utf-8")
    path = write(tmp_path, CALLBACK_FILE.format(target=f"{module}:on_alert"))
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    try:
        code, out, err = cli("check", path)
        assert (code, err) == (0, "")
        assert f"{module}:on_alert" in out
        assert sys.path == path_before  # the CLI leaves the import path as it found it
        monkeypatch.syspath_prepend(str(tmp_path))
        assert _configure_error(path) is None
    finally:
        sys.modules.pop(module, None)


def test_check_does_not_open_the_ledger(tmp_path: Path) -> None:
    """Validation creates no SQLite file and contacts no Redis server."""
    db = tmp_path / "ledger.db"
    path = write(
        tmp_path,
        f'[ledger]\nurl = "sqlite:{db}"\n[[budget]]\nname = "g"\nlimit_usd = 1\n'
        '[[alert]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/hook"\n',
    )
    code, _, err = cli("check", path)
    assert (code, err) == (0, "")
    assert not db.exists()


# --- check --json ---------------------------------------------------------------------------


def test_check_json_describes_every_budget_and_alert() -> None:
    """The documented keys, with numbers as numbers and unset limits as null."""
    code, out, err = cli("check", "--json", str(EXAMPLE))
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert set(doc) == {
        "file",
        "valid",
        "error",
        "ledger",
        "on_ledger_error",
        "budgets",
        "alerts",
    }
    assert (doc["file"], doc["valid"], doc["error"]) == (str(EXAMPLE), True, None)
    assert (doc["ledger"], doc["on_ledger_error"]) == ("memory", "allow")
    budgets = {b["name"]: b for b in doc["budgets"]}
    assert set(budgets) == {"per-session", "tool-loop", "daily"}
    session = budgets["per-session"]
    assert set(session) == {
        "name",
        "scope",
        "limit_usd",
        "limit_tokens",
        "max_llm_calls",
        "max_tool_calls",
        "window",
        "timezone",
        "action",
        "warn_at",
        "match",
    }
    assert session["limit_usd"] == 0.05
    assert session["limit_tokens"] is None
    assert session["warn_at"] == [0.5, 0.8]
    assert (budgets["tool-loop"]["max_llm_calls"], budgets["tool-loop"]["max_tool_calls"]) == (
        6,
        20,
    )
    assert doc["alerts"] == [
        {"kind": "log", "target": "logger kit_telemetry", "events": ["warning", "exceeded"]}
    ]


def test_check_json_hides_secrets(tmp_path: Path) -> None:
    """Redis passwords and webhook paths stay out of the JSON as out of the table."""
    path = write(
        tmp_path,
        '[ledger]\nurl = "redis://:hunter2@127.0.0.1:6379/0"\n'
        '[[budget]]\nname = "g"\nlimit_usd = 1\n'
        '[[alert]]\nkind = "webhook"\nurl = "https://hooks.example.com/services/XXXXSECRET"\n',
    )
    code, out, _ = cli("check", "--json", path)
    assert code == 0
    assert "hunter2" not in out and "XXXXSECRET" not in out
    doc = json.loads(out)
    assert doc["ledger"] == "redis://:***@127.0.0.1:6379/0"
    assert doc["alerts"][0]["target"] == "https://hooks.example.com/..."


def test_check_json_for_an_invalid_file_names_the_error(tmp_path: Path) -> None:
    """An invalid file still yields one JSON object, valid=false, exit 2."""
    path = write(tmp_path, '[[budget]]\nname = "daily"\nlimit_usd = 5\nwindow = "dayly"\n')
    code, out, err = cli("check", "--json", path)
    assert code == 2
    doc = json.loads(out)
    assert set(doc) == {"file", "valid", "error"}
    assert doc["valid"] is False
    assert "window 'dayly'" in doc["error"]
    assert doc["error"] in err


# --- budgets status -----------------------------------------------------------------------

# gpt-4o at OpenAI's published prices: $2.50 per million input tokens, $10 per million output.
_GPT_4O_CALL_USD = (1_000 * 2.50 + 100 * 10.0) / 1_000_000


def _spend_one_call(budgets: str) -> None:
    tel = kt.configure(exporters=("none",), budgets=budgets)
    try:
        with tel.session("s-status") as session, session.run("hi") as run:
            with run.llm_call(provider="openai", model="gpt-4o", max_tokens=100) as call:
                call.record_usage(input_tokens=1_000, output_tokens=100, response_id="r-1")
    finally:
        tel.shutdown()


def _status_budgets(url: str, tmp_path: Path) -> str:
    return write(
        tmp_path,
        f'[ledger]\nurl = "{url}"\n\n'
        '[[budget]]\nname = "daily"\nscope = "global"\nlimit_usd = 5\nwindow = "day"\n\n'
        '[[budget]]\nname = "calls"\nscope = "run"\nmax_llm_calls = 10\n',
    )


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_budgets_status_reads_what_an_agent_spent(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Another process's spend, read back from the shared ledger, as text and as JSON."""
    if backend == "sqlite":
        url = f"sqlite:{tmp_path / 'ledger.db'}"
    else:
        url = f"{request.getfixturevalue('redis_server').url}#status-{tmp_path.name}"
    budgets = _status_budgets(url, tmp_path)
    _spend_one_call(budgets)

    code, out, err = cli("budgets", "status", "--json", budgets)
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["file"] == budgets
    rows = {row["name"]: row for row in document["budgets"]}
    daily = rows["daily"]
    assert (daily["scope_key"], daily["unit"], daily["limit"]) == ("global", "usd", 5.0)
    assert daily["spent"] == pytest.approx(_GPT_4O_CALL_USD, abs=1e-6)
    assert daily["remaining"] == pytest.approx(5.0 - _GPT_4O_CALL_USD, abs=1e-6)
    assert daily["reserved"] == 0.0
    assert daily["window_end"] is not None and daily["window_end"] % 86_400 == 0
    assert (rows["calls"]["unit"], rows["calls"]["spent"]) == ("llm_calls", 1.0)

    code, out, err = cli("budgets", "status", budgets)
    assert code == 0
    [daily_line] = [line for line in out.splitlines() if line.startswith("daily ")]
    assert f"{_GPT_4O_CALL_USD:.6f}" in daily_line.split()


def test_budgets_status_of_an_unreachable_ledger_is_a_finding(tmp_path: Path) -> None:
    """A Redis ledger nobody listens on: exit 1 and why, never a table of zeros."""
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    budgets = _status_budgets(f"redis://127.0.0.1:{port}/0", tmp_path)
    code, out, err = cli("budgets", "status", budgets)
    assert code == 1
    assert out == ""
    assert "cannot" in err and f"127.0.0.1:{port}" in err


def test_budgets_status_says_a_memory_ledger_is_read_in_the_agent(tmp_path: Path) -> None:
    budgets = write(tmp_path, '[[budget]]\nname = "g"\nscope = "global"\nlimit_usd = 1\n')
    code, out, err = cli("budgets", "status", budgets)
    assert code == 0
    assert "tel.budget_status()" in err
    assert out.splitlines()[3].split()[:4] == ["g", "global", "usd", "1.000000"]


def test_budgets_status_of_an_invalid_file_is_a_usage_error(tmp_path: Path) -> None:
    budgets = write(tmp_path, '[[budget]]\nname = "g"\nlimit_usd = -1\n')
    code, out, err = cli("budgets", "status", budgets)
    assert (code, out) == (2, "")
    assert "limit_usd" in err
