"""The extension runtime: loading, event order, handler order, error isolation, async
handlers, the handler context, notify, commands, raw span processors and reloads.

Extensions are real files: the small modules in ``tests/extensions_fixtures`` and files the
tests write (and rewrite) in a temporary folder. Handlers report what they see through
``notify``; the tests replace the notifier to read it, as a host would.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.testing import capture

FIXTURES = Path(__file__).parent / "extensions_fixtures"
ERRORS = "kit_extension_handler_errors_total"
Note = tuple[str, str, str]

# The events of `one_run`, in the documented order.
RUN_ORDER = [
    "session_start",
    "agent_start",
    "user_input",
    "turn_start",
    "llm_request",
    "llm_usage",
    "tool_call",
    "tool_result",
    "tool_call",
    "tool_result",
    "turn_end",
    "turn_start",
    "llm_request",
    "llm_usage",
    "turn_end",
    "agent_end",
    "session_end",
]


@pytest.fixture(autouse=True)
def _fixtures_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``extensions_fixtures.*`` is importable by module name whatever pytest's import mode."""
    monkeypatch.syspath_prepend(str(FIXTURES.parent))


def fixture(name: str) -> str:
    return str(FIXTURES / f"{name}.py")


def listen(tel: kt.Telemetry) -> list[Note]:
    """Route every notification of ``tel``'s extensions into a list, as a host UI would."""
    notes: list[Note] = []
    tel._extensions.notifier = lambda extension, message, kind: notes.append(
        (extension, message, kind)
    )
    return notes


def said(notes: list[Note], extension: str) -> list[str]:
    return [message for name, message, _ in notes if name == extension]


def write_extension(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def one_run(
    tel: kt.Telemetry, session_id: str = "s-1", *, between: Callable[[], None] | None = None
) -> kt.AgentEndEvent | None:
    """Two turns: gpt-4o asks for two tools, then answers. ``between`` runs between the calls."""
    with tel.session(session_id) as session, session.run("fix the test", agent_name="coder") as run:
        with run.turn() as turn:
            with turn.llm_call(provider="openai", model="gpt-4o") as call:
                call.record_usage(
                    input_tokens=1000,
                    output_tokens=100,
                    cache_read_tokens=200,
                    finish_reason="tool_calls",
                    response_id="r-0",
                )
            if between is not None:
                between()
            with turn.tool_call("bash", call_id="c-0", arguments={"cmd": "pytest"}) as tool:
                tool.set_result("1 failed")
            with turn.tool_call("read_file", call_id="c-1", arguments={"path": "a.py"}) as tool:
                tool.set_result("def f(): ...")
        with run.turn() as turn, turn.llm_call(provider="openai", model="gpt-4o") as call:
            call.record_usage(input_tokens=500, output_tokens=50, finish_reason="stop")
        run.set_response("fixed")
    return run.end_event


# --- loading ---------------------------------------------------------------------------------
def test_load_by_file_path_records_name_path_handlers_and_commands() -> None:
    """LoadedExtension says where an extension came from and what it registered."""
    with capture() as cap:
        recorder = cap.telemetry.load_extension(fixture("recorder"))
        commands = cap.telemetry.load_extension(Path(fixture("commands")))
        names = [e.name for e in cap.telemetry.extensions]
    assert recorder.name == "recorder"
    assert recorder.path == str(Path(fixture("recorder")).resolve())
    assert [event_type for event_type, _ in recorder.handlers] == list(kt.EventType)
    assert all(callable(handler) for _, handler in recorder.handlers)
    assert recorder.commands == ()
    assert [c.name for c in commands.commands] == ["echo", "later", "count"]
    assert names == ["kit_telemetry.testing", "recorder", "commands"]


def test_load_by_module_name_delivers_events() -> None:
    """An importable module name works like a path; its name is the dotted name."""
    with capture() as cap:
        notes = listen(cap.telemetry)
        loaded = cap.telemetry.load_extension("extensions_fixtures.recorder")
        one_run(cap.telemetry)
    assert loaded.name == "extensions_fixtures.recorder"
    assert Path(loaded.path).resolve() == Path(fixture("recorder")).resolve()
    assert said(notes, "extensions_fixtures.recorder") == RUN_ORDER


def test_configure_loads_extensions_in_the_order_given() -> None:
    """``configure(extensions=[...])`` loads at start-up, paths and module names alike."""
    tel = kt.configure(
        extensions=["extensions_fixtures.commands", fixture("recorder")],
        exporters=(),
        prometheus=CollectorRegistry(),
    )
    with tel:
        assert [e.name for e in tel.extensions] == ["extensions_fixtures.commands", "recorder"]
        notes = listen(tel)
        one_run(tel)
        assert tel.run_command("later", "x") == "later x"
    assert said(notes, "recorder") == RUN_ORDER


def test_async_setup_is_awaited_before_load_returns() -> None:
    """``async def setup`` runs to completion (on the runtime's loop) before events flow."""
    with capture() as cap:
        notes = listen(cap.telemetry)
        loaded = cap.telemetry.load_extension(fixture("async_setup"))
        assert said(notes, "async_setup") == ["setup ran on kit-telemetry-async"]
        one_run(cap.telemetry)
    assert [t for t, _ in loaded.handlers] == [kt.EventType.AGENT_END]
    assert said(notes, "async_setup")[-1] == "agent_end llm_calls=2"


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("missing", "does not exist"),
        ("syntax_error", "SyntaxError"),
        (
            "broken_import",
            "ModuleNotFoundError: No module named 'kit_telemetry_no_such_dependency'",
        ),
        ("no_setup", "has no setup(api) function"),
        ("setup_raises", "setup() raised RuntimeError: cannot reach the licence server"),
    ],
)
def test_load_errors_name_the_extension_and_the_cause(
    tmp_path: Path, name: str, cause: str
) -> None:
    """Each way an extension can fail to load is an ExtensionLoadError saying which and why."""
    path = fixture(name)
    if name == "missing":
        path = str(tmp_path / "missing.py")
    elif name == "syntax_error":
        path = str(write_extension(tmp_path, name, "def setup(api)\n    pass\n"))
    with capture() as cap:
        before = cap.telemetry.extensions
        with pytest.raises(kt.ExtensionLoadError) as raised:
            cap.telemetry.load_extension(path)
        assert cap.telemetry.extensions == before
    message = str(raised.value)
    assert f"extension {name!r}" in message
    assert cause in message
    assert isinstance(raised.value, ImportError)


def test_unknown_module_name_is_a_load_error() -> None:
    """A module name that cannot be imported names the module."""
    with capture() as cap, pytest.raises(kt.ExtensionLoadError, match="no_such_extension_mod"):
        cap.telemetry.load_extension("no_such_extension_mod")


def test_bad_extension_fails_configure_at_start_up(tmp_path: Path) -> None:
    """By default a broken extension stops start-up instead of being silently skipped."""
    with pytest.raises(kt.ExtensionLoadError, match="'missing'"):
        kt.Telemetry(
            extensions=[fixture("recorder"), str(tmp_path / "missing.py")],
            exporters=(),
            prometheus=CollectorRegistry(),
        )


def test_setup_that_raises_leaves_no_handler_or_command_behind() -> None:
    """What a failing setup registered before it raised is removed with it."""
    with capture(strict=False) as cap:
        notes = listen(cap.telemetry)
        with pytest.raises(kt.ExtensionLoadError):
            cap.telemetry.load_extension(fixture("setup_raises"))
        one_run(cap.telemetry)
        with pytest.raises(kt.UnknownCommandError):
            cap.telemetry.run_command("half")
    assert said(notes, "setup_raises") == []


def test_extension_errors_log_loads_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """With extension_errors="log" the broken ones are logged and counted; the rest load."""
    registry = CollectorRegistry()
    tel = kt.Telemetry(
        extensions=[
            fixture("broken_import"),
            fixture("recorder"),
            fixture("no_setup"),
            "extensions_fixtures.commands",
        ],
        extension_errors="log",
        exporters=(),
        prometheus=registry,
    )
    with tel:
        assert [e.name for e in tel.extensions] == ["recorder", "extensions_fixtures.commands"]
        notes = listen(tel)
        one_run(tel)
    assert said(notes, "recorder") == RUN_ORDER
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "'broken_import'" in logged and "'no_setup'" in logged
    assert (
        registry.get_sample_value(
            "kit_telemetry_internal_errors_total", {"component": "extension_load"}
        )
        == 2
    )


def test_extension_errors_log_is_honoured_by_strict_telemetry() -> None:
    """capture() (strict) with extension_errors="log" still loads the good extensions.

    strict=True is how users test their agents; asking for "log" is an explicit choice that
    strict must not turn back into "raise".
    """
    with capture(
        extensions=[fixture("no_setup"), fixture("recorder")], extension_errors="log"
    ) as cap:
        names = [e.name for e in cap.telemetry.extensions]
    assert "recorder" in names and "no_setup" not in names


# --- event order and handler order -----------------------------------------------------------
def test_events_arrive_in_the_documented_order() -> None:
    """agent_start, user_input, per turn: turn_start, llm_usage, tool pairs, turn_end; agent_end."""
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("recorder"))
        one_run(cap.telemetry)
    assert said(notes, "recorder") == RUN_ORDER
    assert [e.type.value for e in cap.events] == RUN_ORDER


def test_implicit_turns_keep_turn_end_before_the_next_turn_start() -> None:
    """Run-level llm_call/tool_call open implicit turns; their events keep the same order."""
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("recorder"))
        with cap.telemetry.session("s-1") as session, session.run("go") as run:
            with run.llm_call(provider="openai", model="gpt-4o") as call:
                call.record_usage(input_tokens=10, output_tokens=5, finish_reason="tool_calls")
            with run.tool_call("bash", call_id="c-0") as tool:
                tool.set_result("ok")
            with run.llm_call(provider="openai", model="gpt-4o") as call:
                call.record_usage(input_tokens=20, output_tokens=5, finish_reason="stop")
    assert said(notes, "recorder") == [
        "session_start",
        "agent_start",
        "user_input",
        "turn_start",
        "llm_request",
        "llm_usage",
        "tool_call",
        "tool_result",
        "turn_end",
        "turn_start",
        "llm_request",
        "llm_usage",
        "turn_end",
        "agent_end",
        "session_end",
    ]


ALPHA = """
import kit_telemetry as kt

def setup(api):
    api.on(kt.EventType.LLM_USAGE, lambda e, ctx: ctx.notify(f"a1 {e.type.value} {e.step}"))
    api.on("agent_end", lambda e, ctx: ctx.notify(f"a2 {e.type.value}"))

    @api.on(kt.EventType.LLM_USAGE)
    def a3(e, ctx):
        ctx.notify(f"a3 {e.type.value} {e.step}")

    api.on(kt.EventType.TOOL_CALL, lambda e, ctx: ctx.notify(f"a4 {e.type.value} {e.call_id}"))
"""

BETA = """
import kit_telemetry as kt

def setup(api):
    api.on(kt.EventType.AGENT_END, lambda e, ctx: ctx.notify(f"b1 {e.type.value}"))
    api.on(kt.EventType.LLM_USAGE, lambda e, ctx: ctx.notify(f"b2 {e.type.value} {e.step}"))
"""

ALPHA_BETA_ORDER = [
    "a1 llm_usage 0",
    "a3 llm_usage 0",
    "b2 llm_usage 0",
    "a4 tool_call c-0",
    "a4 tool_call c-1",
    "a1 llm_usage 1",
    "a3 llm_usage 1",
    "b2 llm_usage 1",
    "a2 agent_end",
    "b1 agent_end",
]


def test_handlers_run_in_load_order_then_registration_order(tmp_path: Path) -> None:
    """For each event: every handler of the first-loaded extension, in registration order, first."""
    alpha = write_extension(tmp_path, "alpha", ALPHA)
    beta = write_extension(tmp_path, "beta", BETA)
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(alpha)
        cap.telemetry.load_extension(beta)
        one_run(cap.telemetry)
    assert [message for _, message, _ in notes] == ALPHA_BETA_ORDER


def test_llm_usage_is_delivered_before_the_next_call_starts() -> None:
    """A handler can act between two calls: the first call's usage is already delivered."""
    seen_between: list[list[str]] = []
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("recorder"))
        one_run(cap.telemetry, between=lambda: seen_between.append(said(notes, "recorder")))
    assert seen_between == [
        ["session_start", "agent_start", "user_input", "turn_start", "llm_request", "llm_usage"]
    ]


def test_bad_registrations_fail_the_load(tmp_path: Path) -> None:
    """An unknown event type or a non-callable handler is refused at set-up, by name."""
    unknown = write_extension(
        tmp_path, "unknown_event", "def setup(api):\n    api.on('llm_used', print)\n"
    )
    not_callable = write_extension(
        tmp_path, "not_callable", "def setup(api):\n    api.on('llm_usage', 42)\n"
    )
    with capture() as cap:
        with pytest.raises(
            kt.ExtensionLoadError, match=r"unknown event type 'llm_used'.*llm_usage"
        ):
            cap.telemetry.load_extension(unknown)
        with pytest.raises(kt.ExtensionLoadError, match="must be callable"):
            cap.telemetry.load_extension(not_callable)


# --- error isolation -------------------------------------------------------------------------
def test_raising_handler_is_logged_counted_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """A failing handler never reaches the agent; the next handler and extension still run."""
    with capture(strict=False) as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("raising"))
        cap.telemetry.load_extension(fixture("recorder"))
        end = one_run(cap.telemetry)
        errors = cap.metric(ERRORS, extension="raising", event="llm_usage")
    assert end is not None and end.llm_call_count == 2 and end.stop_reason == "stop"
    assert errors == 2
    assert said(notes, "raising") == ["after step 0", "after step 1"]
    assert said(notes, "recorder") == RUN_ORDER
    failures = [r for r in caplog.records if r.name == "kit_telemetry" and "boom" in r.getMessage()]
    assert len(failures) == 2
    assert "'raising'" in failures[0].getMessage() and "llm_usage" in failures[0].getMessage()
    assert failures[0].exc_info is not None


def test_strict_mode_reraises_a_handler_error() -> None:
    """strict=True (tests) surfaces the handler's exception instead of hiding it."""
    with capture() as cap:
        cap.telemetry.load_extension(fixture("raising"))
        with pytest.raises(RuntimeError, match="boom at step 0"):
            one_run(cap.telemetry)
        assert cap.metric(ERRORS, extension="raising", event="llm_usage") == 1


def test_a_handler_cannot_mutate_the_event() -> None:
    """Events are frozen: an attempt to change one is a handler error; others see the original."""
    with capture(strict=False) as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("mutating"))
        one_run(cap.telemetry)
        errors = cap.metric(ERRORS, extension="mutating", event="llm_usage")
        usage = cap.events_of(kt.EventType.LLM_USAGE)
    assert errors == 2
    assert said(notes, "mutating") == ["input_tokens=1000", "input_tokens=500"]
    assert [e.input_tokens for e in usage if isinstance(e, kt.LLMUsageEvent)] == [1000, 500]
    with capture() as cap:
        cap.telemetry.load_extension(fixture("mutating"))
        with pytest.raises(dataclasses.FrozenInstanceError):
            one_run(cap.telemetry)


# --- async handlers --------------------------------------------------------------------------
def five_tools(tel: kt.Telemetry, session_id: str) -> None:
    with tel.session(session_id) as session, session.run("go") as run, run.turn() as turn:
        with turn.llm_call(provider="openai", model="gpt-4o") as call:
            call.record_usage(input_tokens=10, output_tokens=5, finish_reason="tool_calls")
        for i in range(5):
            with turn.tool_call("bash", call_id=f"c-{i}") as tool:
                tool.set_result("ok")


def test_async_handlers_run_on_the_background_loop_in_order_per_session() -> None:
    """Async handlers run on the runtime's loop and see each session's events in order."""
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("async_handlers"))
        five_tools(cap.telemetry, "s-a")
        five_tools(cap.telemetry, "s-b")
        assert cap.telemetry.force_flush() is True
        messages = said(notes, "async_handlers")
    for session in ("s-a", "s-b"):
        mine = [m for m in messages if m.startswith(session + " ")]
        assert mine == [
            *(f"{session} c-{i} on kit-telemetry-async" for i in range(5)),
            f"{session} agent_end tools=5",
        ]


def test_ending_a_session_does_not_wait_for_async_handlers() -> None:
    """The agent's thread waits for async handlers only where they may decide.

    ``tool_call`` is a decision point: its handlers are awaited. ``agent_end`` is not: its
    handler sleeps 0.1 s, so code right after the session block runs before it has
    finished, unless something waited for it.
    """
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("async_handlers"))
        five_tools(cap.telemetry, "s-a")
        notes.append(("main", "session ended", "info"))
        assert cap.telemetry.force_flush() is True
    assert [n[1].split(" on ")[0] for n in notes[:5]] == [f"s-a c-{i}" for i in range(5)]
    assert notes[5] == ("main", "session ended", "info")
    assert notes[6][1] == "s-a agent_end tools=5"


def test_force_flush_waits_for_async_handlers() -> None:
    """After force_flush() every async handler has finished."""
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("async_handlers"))
        one_run(cap.telemetry, "s-f")
        assert cap.telemetry.force_flush() is True
        messages = said(notes, "async_handlers")
    assert messages == [
        "s-f c-0 on kit-telemetry-async",
        "s-f c-1 on kit-telemetry-async",
        "s-f agent_end tools=2",
    ]


def test_async_handler_past_the_timeout_is_abandoned_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hanging handler is cut off at handler_timeout_s; the session's later handlers still run."""
    with capture(handler_timeout_s=0.2) as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(fixture("hanging"))
        one_run(cap.telemetry)
        assert cap.telemetry.force_flush() is True
        timed_out = cap.metric(ERRORS, extension="hanging", event="agent_start")
        failed = cap.metric(ERRORS, extension="hanging", event="agent_end")
        # Longer than the handler's own sleep: it was cancelled, not merely left running.
        threading.Event().wait(0.6)
        messages = said(notes, "hanging")
    assert messages == ["async agent_end ran"]
    assert timed_out == 1
    assert failed == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "kit_telemetry"]
    assert any("'hanging'" in m and "agent_start" in m and "timed out" in m for m in logged)
    assert any("'hanging'" in m and "async handler failed" in m for m in logged)


# --- the handler context ---------------------------------------------------------------------
USAGE_PROBE = """
import kit_telemetry as kt

def setup(api):
    @api.on(kt.EventType.LLM_USAGE)
    def call(e, ctx):
        u = ctx.usage
        ctx.notify(f"llm calls={u.llm_call_count} in={u.input_tokens} "
                   f"cache_read={u.cache_read_tokens} out={u.output_tokens} cost={u.cost_usd:.8f}")

    @api.on(kt.EventType.AGENT_END)
    def run(e, ctx):
        u = ctx.usage
        ctx.notify(f"run runs={u.run_count} tools={u.tool_call_count} calls={u.llm_call_count}")

    @api.on(kt.EventType.SESSION_END)
    def session(e, ctx):
        u = ctx.usage
        ctx.notify(f"session runs={u.run_count} calls={u.llm_call_count} out={u.output_tokens}")
"""


def test_ctx_usage_holds_the_session_totals_so_far(tmp_path: Path) -> None:
    """ctx.usage includes the call being reported, and at the end everything."""
    probe = write_extension(tmp_path, "usage_probe", USAGE_PROBE)
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(probe)
        one_run(cap.telemetry)
        costs = [e.cost_usd for e in cap.events_of(kt.EventType.LLM_USAGE)]
    assert all(isinstance(c, float) for c in costs)
    first, second = costs
    assert said(notes, "usage_probe") == [
        f"llm calls=1 in=1000 cache_read=200 out=100 cost={first:.8f}",
        f"llm calls=2 in=1500 cache_read=200 out=150 cost={first + second:.8f}",
        "run runs=1 tools=2 calls=2",
        "session runs=1 calls=2 out=150",
    ]


SPAN_PROBE = """
import kit_telemetry as kt

def setup(api):
    def probe(e, ctx):
        ctx.notify(f"{e.type.value}|{ctx.span.name}|{ctx.span.context.span_id:016x}|{ctx.session_id}|{ctx.cwd}")

    for event_type in kt.EventType:
        api.on(event_type, probe)
"""


def test_ctx_span_is_the_span_the_event_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each handler sees the very span its event was built from, the session id and the cwd."""
    (tmp_path / "ext").mkdir()
    probe = write_extension(tmp_path / "ext", "span_probe", SPAN_PROBE)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(probe)
        one_run(cap.telemetry, "s-span")
        ids: dict[str, set[str]] = {}
        for span in cap.spans():
            ids.setdefault(span.name, set()).add(f"{span.context.span_id:016x}")
    expected_span = {
        "session_start": "kit.session.start",
        "agent_start": "invoke_agent coder",
        "user_input": "invoke_agent coder",
        "turn_start": "turn",
        "turn_end": "turn",
        "llm_request": "turn",  # before the call's span: the enclosing turn's
        "llm_usage": "chat gpt-4o",
        "tool_call": "execute_tool",
        "tool_result": "execute_tool",
        "agent_end": "invoke_agent coder",
        "session_end": "kit.session.end",
    }
    seen = [m.split("|") for m in said(notes, "span_probe")]
    assert [s[0] for s in seen] == RUN_ORDER
    for event_type, span_name, span_id, session_id, cwd in seen:
        assert span_name.startswith(expected_span[event_type])
        assert span_id in ids[span_name]
        assert session_id == "s-span"
        assert cwd == str(workdir)
    # The two tool events of one call share one span; the two calls have different ones.
    tool_spans = [s[2] for s in seen if s[0] in ("tool_call", "tool_result")]
    assert tool_spans[0] == tool_spans[1] != tool_spans[2] == tool_spans[3]


# --- notify ------------------------------------------------------------------------------------
NOTIFIER = """
import kit_telemetry as kt

def setup(api):
    api.notify("loaded")

    @api.on(kt.EventType.AGENT_END)
    def end(e, ctx):
        ctx.notify(f"run of {e.agent_name} cost {e.cost_usd:.4f}", type="warning")
        ctx.notify("and an error", type="error")
        ctx.notify("bad type", type="debug")
"""


def test_notify_goes_to_the_kit_telemetry_logger_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a host notifier, notifications are log records of the kit_telemetry logger."""
    caplog.set_level(logging.INFO, logger="kit_telemetry")
    ext = write_extension(tmp_path, "notifier_ext", NOTIFIER)
    with capture(strict=False) as cap:
        cap.telemetry.load_extension(ext)
        end = one_run(cap.telemetry)
        bad_type = cap.metric(ERRORS, extension="notifier_ext", event="agent_end")
    assert end is not None
    records = [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "kit_telemetry" and r.getMessage().startswith("[notifier_ext]")
    ]
    assert records == [
        (logging.INFO, "[notifier_ext] loaded"),
        (logging.WARNING, f"[notifier_ext] run of coder cost {end.cost_usd:.4f}"),
        (logging.ERROR, "[notifier_ext] and an error"),
    ]
    # A type other than info/warning/error is a ValueError in the handler: counted, isolated.
    assert bad_type == 1


def test_the_notifier_is_replaceable_by_the_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A host (a TUI, a chat) takes notifications over; nothing then goes to the log."""
    caplog.set_level(logging.INFO, logger="kit_telemetry")
    ext = write_extension(tmp_path, "notifier_ext", NOTIFIER)
    with capture(strict=False) as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(ext)
        end = one_run(cap.telemetry)
    assert end is not None
    assert notes == [
        ("notifier_ext", "loaded", "info"),
        ("notifier_ext", f"run of coder cost {end.cost_usd:.4f}", "warning"),
        ("notifier_ext", "and an error", "error"),
    ]
    assert not [r for r in caplog.records if "[notifier_ext]" in r.getMessage()]


def test_a_failing_notifier_never_breaks_the_agent(tmp_path: Path) -> None:
    """A host notifier that raises is counted as an internal error; the run completes."""
    ext = write_extension(tmp_path, "notifier_ext", NOTIFIER)

    def broken(extension: str, message: str, kind: str) -> None:
        raise OSError("the terminal went away")

    with capture(strict=False) as cap:
        cap.telemetry.load_extension(ext)
        cap.telemetry._extensions.notifier = broken
        end = one_run(cap.telemetry)
        internal = cap.metric("kit_telemetry_internal_errors_total", component="notifier")
    assert end is not None and end.llm_call_count == 2
    assert internal == 2


def test_a_notice_that_is_not_text_is_refused_with_what_is_allowed(tmp_path: Path) -> None:
    """notify(123): a TypeError at set-up (the load fails) and in a handler (counted)."""
    at_setup = write_extension(tmp_path, "loud", "def setup(api):\n    api.notify(123)\n")
    in_handler = write_extension(
        tmp_path,
        "loud_handler",
        """
        import kit_telemetry as kt

        def setup(api):
            api.on(kt.EventType.AGENT_END, lambda e, ctx: ctx.notify(["not", "text"]))
            api.on(kt.EventType.AGENT_END, lambda e, ctx: ctx.notify("still said"))
        """,
    )
    with capture(strict=False) as cap:
        notes = listen(cap.telemetry)
        with pytest.raises(kt.ExtensionLoadError, match="notify message must be a string, got 123"):
            cap.telemetry.load_extension(at_setup)
        cap.telemetry.load_extension(in_handler)
        end = one_run(cap.telemetry)
        errors = cap.metric(ERRORS, extension="loud_handler", event="agent_end")
    assert end is not None
    assert errors == 1
    assert notes == [("loud_handler", "still said", "info")]  # the next handler still ran
    with capture(strict=True) as cap:
        cap.telemetry.load_extension(in_handler)
        with pytest.raises(TypeError, match=r"notify message must be a string, got \['not'"):
            one_run(cap.telemetry)


# --- commands ----------------------------------------------------------------------------------
def test_run_command_calls_the_handler_with_a_context() -> None:
    """Commands get a context for the given session, or the current one; async ones too."""
    with capture() as cap:
        tel = cap.telemetry
        loaded = tel.load_extension(fixture("commands"))
        explicit = tel.session("s-explicit")
        with explicit:
            pass
        assert (
            tel.run_command("echo", "a b", session=explicit)
            == "session=s-explicit extension=commands span=none args=a b"
        )
        with tel.session("s-current"):
            assert tel.run_command("echo", "x") == (
                "session=s-current extension=commands span=none args=x"
            )
            assert tel.run_command("count") == 1
            assert tel.run_command("count") == 2
        assert tel.run_command("later", "soon") == "later soon"
    assert {c.name: c.description for c in loaded.commands} == {
        "echo": "echo",
        "later": "async",
        "count": "state",
    }


def test_unknown_command_lists_the_known_ones() -> None:
    """A typo gets an error that says what exists."""
    with capture() as cap:
        cap.telemetry.load_extension(fixture("commands"))
        with pytest.raises(kt.UnknownCommandError) as raised:
            cap.telemetry.run_command("ecko")
    assert isinstance(raised.value, LookupError)
    assert "'ecko'" in str(raised.value)
    assert "count, echo, later" in str(raised.value)


def test_run_command_refuses_arguments_of_the_wrong_kind_by_name() -> None:
    """A name, args or session of the wrong type: an error naming it, before any handler runs."""
    with capture() as cap:
        tel = cap.telemetry
        tel.load_extension(fixture("commands"))
        with pytest.raises(kt.UnknownCommandError, match="command names are strings, got 5"):
            tel.run_command(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="run_command args must be a string, got 7"):
            tel.run_command("count", 7)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="session must be a Session or None, got 's-1'"):
            tel.run_command("count", session="s-1")  # type: ignore[arg-type]
        with pytest.raises(kt.ExtensionLoadError, match="extension names are strings, got 3"):
            tel.reload_extension(3)  # type: ignore[arg-type]
        assert tel.run_command("count") == 1  # none of the refused calls ran it


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"name": ""}, ValueError, "command name must be a non-empty string, got ''"),
        ({"name": 5}, TypeError, "command name must be a non-empty string, got 5"),
        ({"description": None}, TypeError, "description must be a string, got None"),
        ({"handler": "echo"}, TypeError, "handler must be callable, got 'echo'"),
    ],
)
def test_a_command_definition_checks_its_fields(
    fields: dict[str, object], error: type[Exception], message: str
) -> None:
    """A command is refused where it is defined, with the field and what it must be."""
    values: dict[str, object] = {"name": "echo", "handler": lambda ctx, args: args, **fields}
    with pytest.raises(error, match=message):
        kt.CommandDefinition(**values)  # type: ignore[arg-type]


def test_a_command_name_taken_by_another_extension_fails_the_load(tmp_path: Path) -> None:
    """Two extensions cannot both own a command; the second one's load says who has it."""
    clash = write_extension(
        tmp_path,
        "clash",
        """
        import kit_telemetry as kt

        def setup(api):
            api.register_command(kt.CommandDefinition(name="echo", handler=lambda ctx, a: a))
        """,
    )
    with capture() as cap:
        cap.telemetry.load_extension(fixture("commands"))
        with pytest.raises(
            kt.ExtensionLoadError, match="'echo' is already registered by extension 'commands'"
        ):
            cap.telemetry.load_extension(clash)
        assert cap.telemetry.run_command("echo", "still mine").endswith("args=still mine")


# --- raw span processors -----------------------------------------------------------------------
def test_add_span_processor_receives_raw_spans(caplog: pytest.LogCaptureFixture) -> None:
    """An extension's processor sees every span, foreign ones too; it is flushed and shut down."""
    with capture(strict=False) as cap:
        tel = cap.telemetry
        notes = listen(tel)
        loaded = tel.load_extension(fixture("raw_spans"))
        tracer = tel.tracer_provider.get_tracer("http-client")
        with (
            tel.session("s-raw") as session,
            session.run("go") as run,
            run.llm_call(provider="openai", model="gpt-4o") as call,
        ):
            with tracer.start_as_current_span("POST /v1/chat/completions"):
                pass
            call.record_usage(input_tokens=10, output_tokens=5, finish_reason="stop")
        tel.force_flush()
        # Whatever event label a processor failure gets, it is counted for its extension.
        broken = sum(
            sample.value
            for metric in cap.registry.collect()
            for sample in metric.samples
            if sample.name == ERRORS and sample.labels.get("extension") == "raw_spans"
        )
        spans_ended = len(cap.spans())
    messages = said(notes, "raw_spans")
    assert len(loaded.span_processors) == 2
    assert messages[:3] == [
        "start kit.session.start",
        "end kit.session.start",
        "start invoke_agent agent",
    ]
    assert "start POST /v1/chat/completions" in messages
    assert messages.index("end POST /v1/chat/completions") < messages.index("end chat gpt-4o")
    assert messages.index("end chat gpt-4o") < messages.index("end invoke_agent agent")
    assert [m for m in messages if m.startswith("end ")] == [f"end {s.name}" for s in cap.spans()]
    assert messages[-2:] == ["force_flush", "shutdown"]
    # The broken processor raised on every span end: counted, and the other still ran.
    assert broken == spans_ended


# --- reloads -----------------------------------------------------------------------------------
VERSIONED = """
import kit_telemetry as kt

VERSION = "{version}"

def setup(api):
    @api.on(kt.EventType.LLM_USAGE)
    def seen(e, ctx):
        count = ctx.get_state("seen", 0) + 1
        ctx.set_state("seen", count)
        ctx.notify(f"{{VERSION}} seen={{count}}")

    api.register_command(kt.CommandDefinition(name="version", handler=lambda ctx, a: VERSION))
"""


def test_reload_reruns_a_changed_file_and_keeps_session_state(tmp_path: Path) -> None:
    """Editing an extension and reloading it swaps its handlers; the session's state stays."""
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(version="v1"))
    with capture() as cap:
        tel = cap.telemetry
        notes = listen(tel)
        tel.load_extension(path)
        with tel.session("s-reload") as session:
            for _ in range(2):
                with (
                    session.run("go") as run,
                    run.llm_call(provider="openai", model="gpt-4o") as call,
                ):
                    call.record_usage(input_tokens=10, output_tokens=5)
            path.write_text(VERSIONED.format(version="version-2"))
            reloaded = tel.reload_extension("versioned")
            with session.run("go") as run, run.llm_call(provider="openai", model="gpt-4o") as call:
                call.record_usage(input_tokens=10, output_tokens=5)
            assert tel.run_command("version") == "version-2"
            state = session.state.items()
    assert said(notes, "versioned") == ["v1 seen=1", "v1 seen=2", "version-2 seen=3"]
    assert reloaded.name == "versioned" and len(reloaded.handlers) == 1
    assert state == {"seen": 3}


def test_reload_keeps_the_extension_in_its_load_position(tmp_path: Path) -> None:
    """Reloading the first extension must not move its handlers behind the others'."""
    write_extension(tmp_path, "alpha", ALPHA)
    beta = write_extension(tmp_path, "beta", BETA)
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(tmp_path / "alpha.py")
        cap.telemetry.load_extension(beta)
        cap.telemetry.reload_extension("alpha")
        assert [e.name for e in cap.telemetry.extensions][1:] == ["alpha", "beta"]
        one_run(cap.telemetry)
    assert [message for _, message, _ in notes] == ALPHA_BETA_ORDER


def test_reload_sees_an_edit_of_the_same_size_within_the_same_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quick edit (same size, same mtime second) is not hidden by a stale bytecode cache."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # what a default interpreter does
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(version="v1"))
    stat = path.stat()
    with capture() as cap:
        cap.telemetry.load_extension(path)
        assert cap.telemetry.run_command("version") == "v1"
        path.write_text(VERSIONED.format(version="v2"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        cap.telemetry.reload_extension("versioned")
        assert cap.telemetry.run_command("version") == "v2"


def test_reload_of_a_broken_edit_keeps_the_working_version(tmp_path: Path) -> None:
    """A syntax error in the edited file fails the reload and leaves the old handlers running."""
    path = tmp_path / "versioned.py"
    path.write_text(VERSIONED.format(version="v1"))
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(path)
        path.write_text("def setup(api)\n")
        with pytest.raises(kt.ExtensionLoadError, match="SyntaxError"):
            cap.telemetry.reload_extension("versioned")
        one_run(cap.telemetry)
        assert cap.telemetry.run_command("version") == "v1"
        with pytest.raises(kt.ExtensionLoadError, match=r"no extension named 'nope'.*versioned"):
            cap.telemetry.reload_extension("nope")
    assert said(notes, "versioned") == ["v1 seen=1", "v1 seen=2"]
