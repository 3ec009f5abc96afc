"""The ``kit-telemetry`` command itself: --version, the exit-status epilog, broken pipes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import kit_telemetry
from kit_telemetry.cli import EXIT_BROKEN_PIPE, main

SCRIPT = Path(sys.executable).with_name("kit-telemetry")


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`kit-telemetry --version` answers bug reports' first question."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"kit-telemetry {kit_telemetry.__version__}\n"


def test_console_script_version_matches_the_installed_package() -> None:
    """The installed script, not only main(), knows its version."""
    result = subprocess.run(
        [str(SCRIPT), "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kit-telemetry {kit_telemetry.__version__}"


def test_help_epilog_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """Scripts branch on exit codes, so --help says what each means."""
    text = _help(capsys)
    assert "exit status:" in text
    lines = {
        line.split()[0]: line
        for line in text.splitlines()
        if line[:2] == "  " and line.split()[0].isdigit()
    }
    assert set(lines) == {"0", "1", "2", "130", "141"}
    assert "ok" in lines["0"]
    assert "found a problem" in lines["1"]
    assert "usage error" in lines["2"]
    assert "| head" in lines["141"]


@pytest.mark.parametrize("command", ["report", "prices", "check"])
def test_json_option_is_offered_by_each_reporting_command(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """--json exists on the three commands whose output scripts consume."""
    assert "--json" in _help(capsys, command)


def test_no_command_prints_help_and_exits_2() -> None:
    """A bare `kit-telemetry` is a usage error, as the epilog says."""
    out = io.StringIO()
    assert main([], out=out, err=io.StringIO()) == 2
    assert "exit status:" in out.getvalue()


@pytest.mark.parametrize("argv", [["prices"], ["prices", "--json"]])
def test_broken_pipe_exits_quietly(argv: list[str]) -> None:
    """`kit-telemetry prices | head -1`: no traceback, exit 141 like other Unix tools."""
    proc = subprocess.Popen(
        [str(SCRIPT), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert first  # the command did start writing
    # The table is far larger than a pipe buffer: the command is still writing when the
    # reader goes away, which is exactly `| head -1`.
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=60)
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
    assert stderr == ""
    assert code == EXIT_BROKEN_PIPE


def test_reader_that_reads_everything_sees_exit_0() -> None:
    """The broken-pipe path must not change the status of a complete run."""
    result = subprocess.run(
        [str(SCRIPT), "prices", "claude-sonnet-4-5"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert "claude-sonnet-4-5" in result.stdout
