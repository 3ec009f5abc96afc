"""Session state through the extension API: ``ctx.get_state/set_state/delete_state/list_state``.

The store itself (atomic writes, corrupt files, durability, crashes) has its own tests in
test_state.py; these check what an extension sees: the JSON-only rule, key rules, where
the sidecar lands, persistence across a restart (a real child process) and across reloads.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.testing import capture

FIXTURES = Path(__file__).parent / "extensions_fixtures"
CONTEXT_COMMAND = str(FIXTURES / "context_command.py")

# An extension that counts LLM calls and tokens of a session in its state.
COUNTER = """
import kit_telemetry as kt

def setup(api):
    @api.on(kt.EventType.LLM_USAGE)
    def count(event, ctx):
        ctx.set_state("calls", ctx.get_state("calls", 0) + 1)
        tokens = ctx.get_state("tokens", {"input": 0, "output": 0})
        tokens["input"] += event.input_tokens
        tokens["output"] += event.output_tokens
        ctx.set_state("tokens", tokens)
        ctx.set_state("last_model", event.model)

    api.register_command(kt.CommandDefinition(
        name="calls", handler=lambda ctx, args: ctx.get_state("calls", 0)))
"""


def write_extension(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def one_call(session: kt.Session, input_tokens: int = 100, output_tokens: int = 10) -> None:
    with (
        session.run("go") as run,
        run.llm_call(provider="openai", model="gpt-4o") as call,
    ):
        call.record_usage(input_tokens=input_tokens, output_tokens=output_tokens)


def context(tel: kt.Telemetry, session: kt.Session) -> kt.ExtensionContext:
    """A real ExtensionContext for ``session``, from the ``ctx`` command."""
    ctx = tel.run_command("ctx", session=session)
    assert isinstance(ctx, kt.ExtensionContext)
    return ctx


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- the four methods --------------------------------------------------------------------------
def test_set_get_delete_and_list_through_the_context(tmp_path: Path) -> None:
    """The store round-trips JSON values; delete says whether the key existed."""
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("s-1", session_file=tmp_path / "s-1.jsonl") as session:
            ctx = context(cap.telemetry, session)
            assert ctx.get_state("missing") is None
            assert ctx.get_state("missing", "fallback") == "fallback"
            value = {"list": [1, 2.5, "three", None, True], "nested": {"a": {"b": []}}}
            ctx.set_state("doc", value)
            ctx.set_state("n", 3)
            ctx.set_state("n", 4)  # last write wins
            assert ctx.get_state("doc") == value
            assert ctx.list_state() == {"doc": value, "n": 4}
            assert ctx.delete_state("n") is True
            assert ctx.delete_state("n") is False
            assert ctx.list_state() == {"doc": value}
            assert read_json(tmp_path / "s-1.ext-state.json") == {"doc": value}


def test_values_read_back_are_copies() -> None:
    """Changing what get_state/list_state returned does not change the store."""
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("s-copy") as session:
            ctx = context(cap.telemetry, session)
            original = {"items": [1, 2]}
            ctx.set_state("doc", original)
            original["items"].append(99)
            got = ctx.get_state("doc")
            got["items"].append(3)
            listing = ctx.list_state()
            listing["doc"]["items"].clear()
            listing["other"] = 1
            assert ctx.get_state("doc") == {"items": [1, 2]}
            assert ctx.list_state() == {"doc": {"items": [1, 2]}}


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        (1, 2),
        b"bytes",
        math.nan,
        math.inf,
        {1: "int key"},
        {"nested": [1, {"deep": object()}]},
    ],
    ids=["object", "set", "tuple", "bytes", "nan", "inf", "int-key", "nested-object"],
)
def test_non_json_values_raise_usage_error_and_change_nothing(
    tmp_path: Path, value: object
) -> None:
    """Only JSON values are stored; anything else is a UsageError with memory and file untouched."""
    sidecar = tmp_path / "s.ext-state.json"
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("s", session_file=tmp_path / "s.jsonl") as session:
            ctx = context(cap.telemetry, session)
            ctx.set_state("key", {"kept": True})
            before = sidecar.read_bytes()
            with pytest.raises(kt.UsageError, match=r"state\.value: .* is not a JSON value"):
                ctx.set_state("key", value)
            with pytest.raises(kt.UsageError):
                ctx.set_state("new", value)
            assert ctx.list_state() == {"key": {"kept": True}}
            assert sidecar.read_bytes() == before


@pytest.mark.parametrize(
    "key", ["", None, 1, b"k", ("a",)], ids=["empty", "none", "int", "bytes", "tuple"]
)
def test_keys_must_be_non_empty_strings(key: Any) -> None:
    """Every state method refuses an empty or non-string key, and nothing is stored."""
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("s-keys") as session:
            ctx = context(cap.telemetry, session)
            with pytest.raises(kt.UsageError, match=r"state\.key: "):
                ctx.set_state(key, 1)
            with pytest.raises(kt.UsageError):
                ctx.get_state(key)
            with pytest.raises(kt.UsageError):
                ctx.delete_state(key)
            assert ctx.list_state() == {}


def test_a_handler_storing_a_bad_value_is_dropped_and_counted_when_lenient(
    tmp_path: Path,
) -> None:
    """Lenient: a bad set_state in a handler is a dropped write counted as bad API input."""
    ext = write_extension(
        tmp_path,
        "bad_value",
        """
        import kit_telemetry as kt

        def setup(api):
            @api.on(kt.EventType.LLM_USAGE)
            def store(event, ctx):
                ctx.set_state("event", event)
                ctx.set_state("after", 1)
        """,
    )
    with capture(strict=False) as cap:
        cap.telemetry.load_extension(ext)
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("s-bad") as session:
            one_call(session)
            assert context(cap.telemetry, session).list_state() == {"after": 1}
        handler_errors = cap.metric(
            "kit_extension_handler_errors_total", extension="bad_value", event="llm_usage"
        )
        api_errors = cap.metric("kit_telemetry_internal_errors_total", component="api")
    assert handler_errors in (None, 0)
    assert api_errors == 1


def test_state_is_shared_by_the_extensions_of_a_session_and_not_across_sessions(
    tmp_path: Path,
) -> None:
    """One store per session, shared by every extension; another session sees its own."""
    counter = write_extension(tmp_path, "counter", COUNTER)
    with capture() as cap:
        tel = cap.telemetry
        tel.load_extension(counter)
        tel.load_extension(CONTEXT_COMMAND)
        with tel.session("s-a") as a, tel.session("s-b") as b:
            one_call(a, 100, 10)
            one_call(a, 50, 5)
            one_call(b, 7, 1)
            assert context(tel, a).list_state() == {
                "calls": 2,
                "tokens": {"input": 150, "output": 15},
                "last_model": "gpt-4o",
            }
            assert context(tel, b).get_state("tokens") == {"input": 7, "output": 1}
            assert tel.run_command("calls", session=a) == 2
            assert tel.run_command("calls", session=b) == 1


# --- where the sidecar lives -------------------------------------------------------------------
def test_sidecar_replaces_jsonl_beside_the_session_file(tmp_path: Path) -> None:
    """``sessions/abc.jsonl`` keeps its state in ``sessions/abc.ext-state.json``."""
    folder = tmp_path / "sessions"
    folder.mkdir()
    with capture(state_dir=tmp_path / "state-dir") as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("abc", session_file=folder / "abc.jsonl") as session:
            context(cap.telemetry, session).set_state("k", "v")
    assert read_json(folder / "abc.ext-state.json") == {"k": "v"}
    # The session file wins over state_dir, and nothing else was written anywhere.
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["abc.ext-state.json"]


def test_sidecar_is_appended_when_the_session_file_is_not_jsonl(tmp_path: Path) -> None:
    """``abc.log`` keeps its state in ``abc.log.ext-state.json``."""
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("abc", session_file=tmp_path / "abc.log") as session:
            context(cap.telemetry, session).set_state("k", 1)
    assert read_json(tmp_path / "abc.log.ext-state.json") == {"k": 1}


def test_session_file_with_a_tilde_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~/s.jsonl`` puts the sidecar in the home folder, not in a folder named ``~``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("home", session_file="~/s.jsonl") as session:
            context(cap.telemetry, session).set_state("k", 1)
    assert read_json(tmp_path / "s.ext-state.json") == {"k": 1}
    assert not (tmp_path / "~").exists()


def test_sessions_without_a_file_use_state_dir(tmp_path: Path) -> None:
    """Without a session file the sidecar is ``<state_dir>/<id>.ext-state.json``, id made safe."""
    state_dir = tmp_path / "state"
    with capture(state_dir=state_dir) as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("plain") as session:
            context(cap.telemetry, session).set_state("k", "plain")
        with cap.telemetry.session("team/../escape") as session:
            context(cap.telemetry, session).set_state("k", "escaped?")
    assert read_json(state_dir / "plain.ext-state.json") == {"k": "plain"}
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 2 and all(f.startswith("state/") for f in files)
    assert "/" not in files[1].removeprefix("state/")


def test_sessions_without_file_or_state_dir_stay_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No session file and no state_dir: state works for the session but writes no file."""
    monkeypatch.chdir(tmp_path)
    with capture() as cap:
        cap.telemetry.load_extension(CONTEXT_COMMAND)
        with cap.telemetry.session("mem") as session:
            ctx = context(cap.telemetry, session)
            ctx.set_state("k", [1, 2])
            assert ctx.get_state("k") == [1, 2]
    assert list(tmp_path.iterdir()) == []


# --- persistence ---------------------------------------------------------------------------------
CHILD = """
import sys
import kit_telemetry as kt

extension, session_file = sys.argv[1], sys.argv[2]
tel = kt.Telemetry(exporters=(), extensions=[extension])
with tel, tel.session("restart", session_file=session_file) as session:
    with session.run("go") as run, run.llm_call(provider="openai", model="gpt-4o") as call:
        call.record_usage(input_tokens=100, output_tokens=10)
    print(tel.run_command("calls", session=session))
"""


def test_state_persists_across_a_restart_for_the_same_session_file(tmp_path: Path) -> None:
    """Two real processes in turn, then this one: the count goes on from the file."""
    counter = write_extension(tmp_path, "counter", COUNTER)
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    session_file = tmp_path / "restart.jsonl"
    for expected in ("1", "2"):
        done = subprocess.run(
            [sys.executable, str(child), str(counter), str(session_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
    assert read_json(tmp_path / "restart.ext-state.json")["calls"] == 2
    tel = kt.Telemetry(
        exporters=(), prometheus=CollectorRegistry(), extensions=[counter], strict=True
    )
    with tel, tel.session("restart", session_file=session_file) as session:
        assert tel.run_command("calls", session=session) == 2
        one_call(session, 1, 1)
        assert tel.run_command("calls", session=session) == 3
    assert read_json(tmp_path / "restart.ext-state.json") == {
        "calls": 3,
        "tokens": {"input": 201, "output": 21},
        "last_model": "gpt-4o",
    }


def test_batched_durability_writes_the_state_by_session_end(tmp_path: Path) -> None:
    """In "batched" mode the sidecar holds every change once the session has ended."""
    counter = write_extension(tmp_path, "counter", COUNTER)
    with capture(state_durability="batched") as cap:
        cap.telemetry.load_extension(counter)
        with cap.telemetry.session("b", session_file=tmp_path / "b.jsonl") as session:
            for _ in range(5):
                one_call(session)
        assert read_json(tmp_path / "b.ext-state.json")["calls"] == 5


VERSIONED = """
import kit_telemetry as kt

VERSION = "{version}"

def setup(api):
    @api.on(kt.EventType.LLM_USAGE)
    def remember(event, ctx):
        ctx.set_state(VERSION, ctx.get_state(VERSION, 0) + 1)

    api.register_command(kt.CommandDefinition(
        name="state", handler=lambda ctx, args: ctx.list_state()))
"""


def test_state_survives_reload_extension(tmp_path: Path) -> None:
    """Reloading an extension keeps what the old version stored, in memory and on disk."""
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(version="v1"))
    with capture() as cap:
        tel = cap.telemetry
        tel.load_extension(path)
        with tel.session("s-r", session_file=tmp_path / "s-r.jsonl") as session:
            one_call(session)
            one_call(session)
            path.write_text(VERSIONED.format(version="second"))
            tel.reload_extension("versioned")
            one_call(session)
            assert tel.run_command("state", session=session) == {"v1": 2, "second": 1}
    assert read_json(tmp_path / "s-r.ext-state.json") == {"v1": 2, "second": 1}


LATE_WRITER = """
import asyncio
import kit_telemetry as kt

def setup(api):
    @api.on(kt.EventType.SESSION_END)
    async def summary(event, ctx):
        await asyncio.sleep(0.05)
        ctx.set_state("summary", {"runs": event.run_count, "calls": event.llm_call_count})
"""


def test_async_handler_finishing_after_session_end_writes_the_sessions_sidecar(
    tmp_path: Path,
) -> None:
    """An async session_end handler runs after the session closed: its state still lands beside
    the session file, not in a stray in-memory store."""
    ext = write_extension(tmp_path, "late_writer", LATE_WRITER)
    with capture() as cap:
        cap.telemetry.load_extension(ext)
        with cap.telemetry.session("late", session_file=tmp_path / "late.jsonl") as session:
            one_call(session)
        assert cap.telemetry.force_flush() is True
    assert read_json(tmp_path / "late.ext-state.json") == {"summary": {"runs": 1, "calls": 1}}


def test_run_command_for_an_ended_session_reads_its_sidecar(tmp_path: Path) -> None:
    """A command run for a session that has ended (a report after the run) sees its state."""
    counter = write_extension(tmp_path, "counter", COUNTER)
    with capture() as cap:
        cap.telemetry.load_extension(counter)
        with cap.telemetry.session("ended", session_file=tmp_path / "ended.jsonl") as session:
            one_call(session)
            one_call(session)
        assert cap.telemetry.run_command("calls", session=session) == 2


def test_a_corrupt_sidecar_counts_as_a_state_error(tmp_path: Path) -> None:
    """A session that lost its state to a corrupt file shows up in the internal-errors metric."""
    registry = CollectorRegistry()
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "s-1.ext-state.json").write_text('{"calls": 3,')
    labels = {"component": "state"}
    with (
        kt.configure(exporters=(), prometheus=registry, state_dir=state_dir) as tel,
        tel.session("s-1") as session,
    ):
        assert registry.get_sample_value("kit_telemetry_internal_errors_total", labels) in (
            None,
            0.0,
        )
        assert session.state.get("calls") is None
        assert registry.get_sample_value("kit_telemetry_internal_errors_total", labels) == 1.0
        session.state.set("calls", 1)
    assert read_json(state_dir / "s-1.ext-state.json") == {"calls": 1}
    assert [p.read_text() for p in state_dir.glob("s-1.ext-state.json.corrupt-*")] == [
        '{"calls": 3,'
    ]
