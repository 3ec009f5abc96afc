"""Tests for ``kit-telemetry state``: a session's sidecar state from the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kit_telemetry.cli import main
from kit_telemetry.state import SessionState


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["state", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def session(tmp_path: Path) -> Path:
    """A session file whose sidecar holds some state, as an extension would have left it."""
    session_file = tmp_path / "s-1.jsonl"
    session_file.write_text('{"type": "session_start"}\n')
    store = SessionState(tmp_path / "s-1.ext-state.json")
    store.set("cost_usd", 0.25)
    store.set("seen", ["bash", "edit"])
    store.close()
    return session_file


def sidecar_of(session_file: Path) -> Path:
    return session_file.with_name("s-1.ext-state.json")


def test_list_is_the_default_and_prints_json(session: Path) -> None:
    """`state FILE` alone shows everything, as JSON a script can parse."""
    code, out, err = cli(str(session))
    assert (code, err) == (0, "")
    assert json.loads(out) == {"cost_usd": 0.25, "seen": ["bash", "edit"]}
    assert cli(str(session), "list")[:2] == (0, out)


def test_sidecar_path_itself_is_accepted(session: Path) -> None:
    """Users may point at the .ext-state.json they found beside the session."""
    code, out, _ = cli(str(sidecar_of(session)), "get", "cost_usd")
    assert code == 0
    assert json.loads(out) == 0.25


def test_get_prints_the_value_as_json(session: Path) -> None:
    """Strings come out quoted, so `get` output is always valid JSON."""
    assert cli(str(session), "set", "name", '"coder"')[0] == 0
    code, out, _ = cli(str(session), "get", "name")
    assert (code, out) == (0, '"coder"\n')
    code, out, _ = cli(str(session), "get", "seen")
    assert json.loads(out) == ["bash", "edit"]


def test_get_missing_key_exits_1(session: Path) -> None:
    """A missing key is a finding (1), not a usage error (2)."""
    code, out, err = cli(str(session), "get", "nope")
    assert code == 1
    assert out == ""
    assert "'nope' is not set" in err


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("3", 3),
        ("-1.5", -1.5),
        ("true", True),
        ("null", None),
        ('{"a": [1, "b"]}', {"a": [1, "b"]}),
    ],
)
def test_set_writes_the_sidecar(session: Path, raw: str, value: Any) -> None:
    """`set` parses JSON and lands in the sidecar the session will load next time."""
    code, out, err = cli(str(session), "set", "k", raw)
    assert (code, out, err) == (0, "", "")
    assert json.loads(sidecar_of(session).read_text())["k"] == value
    reloaded = SessionState(sidecar_of(session))
    assert reloaded.get("k") == value
    assert reloaded.get("cost_usd") == 0.25  # the rest of the state is kept


@pytest.mark.parametrize("raw", ["coder", "{'a': 1}", "[1,", "NaN", "Infinity", ""])
def test_set_with_bad_json_exits_2_and_changes_nothing(session: Path, raw: str) -> None:
    """A bare word or Python literal is refused with a hint, and the file is left alone."""
    before = sidecar_of(session).read_bytes()
    code, _, err = cli(str(session), "set", "k", raw)
    assert code == 2
    assert "not valid JSON" in err and "strings need quotes" in err
    assert sidecar_of(session).read_bytes() == before


def test_set_value_json_cannot_store_exits_2(session: Path) -> None:
    """Valid JSON the store still refuses (a lone surrogate) is bad input too."""
    code, _, err = cli(str(session), "set", "k", '"\\ud800"')
    assert code == 2
    assert "surrogate" in err
    assert "k" not in json.loads(sidecar_of(session).read_text())


def test_empty_key_exits_2(session: Path) -> None:
    """Keys are non-empty strings everywhere."""
    for argv in (("get", ""), ("set", "", "1"), ("delete", "")):
        code, _, err = cli(str(session), *argv)
        assert code == 2
        assert "KEY must not be empty" in err


def test_delete(session: Path) -> None:
    """`delete` removes the key from the file; deleting it again is "not found"."""
    assert cli(str(session), "delete", "seen")[0] == 0
    assert json.loads(sidecar_of(session).read_text()) == {"cost_usd": 0.25}
    code, _, err = cli(str(session), "delete", "seen")
    assert code == 1
    assert "'seen' is not set" in err


def test_session_without_state_lists_empty_and_set_creates_it(tmp_path: Path) -> None:
    """A session that never stored anything has an empty state, and `set` may start one."""
    session_file = tmp_path / "fresh.jsonl"
    session_file.write_text("")
    assert cli(str(session_file)) == (0, "{}\n", "")
    assert cli(str(session_file), "set", "k", "1")[0] == 0
    assert json.loads((tmp_path / "fresh.ext-state.json").read_text()) == {"k": 1}


def test_missing_session_is_an_error_not_an_empty_state(tmp_path: Path) -> None:
    """A typo in the path must not look like a session with no state, nor create files."""
    for argv in ((), ("get", "k"), ("set", "k", "1"), ("delete", "k")):
        code, out, err = cli(str(tmp_path / "typo.jsonl"), *argv)
        assert code == 1
        assert out == ""
        assert "no session file or state file" in err
    assert list(tmp_path.iterdir()) == []


def test_corrupt_sidecar_is_reported_and_left_in_place(session: Path) -> None:
    """The CLI only reads: a corrupt file is shown as such, never moved or overwritten."""
    sidecar = sidecar_of(session)
    sidecar.write_bytes(b"[1, 2]")
    for argv in ((), ("get", "k"), ("set", "k", "1"), ("delete", "k")):
        code, out, err = cli(str(session), *argv)
        assert code == 1
        assert out == ""
        assert "is corrupt" in err and "array" in err
    assert sidecar.read_bytes() == b"[1, 2]"
    assert sorted(p.name for p in session.parent.iterdir()) == [
        "s-1.ext-state.json",
        "s-1.jsonl",
    ]


def test_unwritable_sidecar_exits_1(session: Path) -> None:
    """A failed write is reported with the path and a non-zero exit, the old file kept."""
    sidecar = sidecar_of(session)
    sidecar.unlink()
    sidecar.mkdir()
    code, _, err = cli(str(session), "set", "k", "1")
    assert code == 1
    assert str(sidecar) in err
    assert sidecar.is_dir()


def test_console_script_runs_state(session: Path) -> None:
    """The real entry point, in a real process, prints the state and exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "kit_telemetry", "state", str(session), "get", "cost_usd"],
        cwd=session.parent,  # the installed package, not a source tree in the working directory
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == 0.25


def test_set_may_create_a_sidecar_named_explicitly(tmp_path: Path) -> None:
    """Naming the .ext-state.json itself is a clear intent to create it (its folder must exist)."""
    sidecar = tmp_path / "s-9.ext-state.json"
    assert cli(str(sidecar), "get", "k")[0] == 1
    assert cli(str(sidecar), "set", "k", "[1]")[0] == 0
    assert json.loads(sidecar.read_text()) == {"k": [1]}
    code, _, err = cli(str(tmp_path / "missing" / "s.ext-state.json"), "set", "k", "1")
    assert code == 1 and "no session file or state file" in err
    assert not (tmp_path / "missing").exists()
