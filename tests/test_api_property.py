"""Property: any value of any type, at every parameter of the API, never breaks the agent.

A lenient ``Telemetry`` is driven through sessions, runs, LLM calls, usage, tool calls,
results, responses, state and budgets with arbitrary values (valid ones mixed in). Whatever
it is given: nothing is raised into the agent; the spans it made serialise to OTLP protobuf
and parse back; ``/metrics`` parses; and every call is counted, its tokens exactly when its
usage was well-formed. The session state API, given any key and value, raises nothing and
its file stays valid JSON holding what the store holds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import kit_telemetry as kt
from kit_telemetry.state import STATE_SUFFIX, SessionState
from kit_telemetry.testing import capture
from kit_telemetry.tokens import MAX_TOKENS, TOKEN_KINDS
from kit_telemetry.validation import is_count

# Text of every kind: lone surrogates, NUL and very long strings included, and often.
TEXT = st.one_of(
    st.text(
        st.one_of(
            st.characters(codec=None, exclude_categories=()),
            st.sampled_from(["\x00", "\udc80", "\ud83d", "\ude00", "é"]),
        ),
        max_size=60,
    ),
    st.sampled_from(["x" * 5000, "\ud83d\ude00" * 3000]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80),
    st.floats(),
    TEXT,
    st.binary(max_size=20),
)
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=3),
    ),
    max_leaves=6,
)
COUNT = st.one_of(st.integers(0, 5000), st.integers(0, MAX_TOKENS))
NAME = st.sampled_from(["anthropic", "openai", "claude-sonnet-4-5", "gpt-4o", "bash"])


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A good value most of the time, anything otherwise."""
    return st.one_of(good, good, ANYTHING)


# Counts near the int64 limit, either side of it, as often as anything else.
TOKENS = st.one_of(COUNT, COUNT, st.integers(MAX_TOKENS - 2, MAX_TOKENS + 2), ANYTHING)


@dataclass
class Call:
    provider: Any
    model: Any
    max_tokens: Any
    estimate: Any
    usage: dict[str, Any] | None


@dataclass
class Tool:
    name: Any
    call_id: Any
    arguments: Any
    result: Any
    is_error: Any
    fails: bool


@dataclass
class RunScript:
    prompt: Any
    agent_name: Any
    steps: list[Call | Tool]
    response: Any
    fails: bool


@dataclass
class SessionScript:
    session_id: Any
    user: Any
    subscription: Any
    attributes: Any
    file_name: Any
    runs: list[RunScript] = field(default_factory=list)


USAGE = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": TOKENS,
        "output_tokens": TOKENS,
        "cache_read_tokens": TOKENS,
        "cache_write_tokens": TOKENS,
        "reasoning_tokens": st.one_of(st.just(0), st.just(0), st.just(0), ANYTHING),
        "finish_reason": maybe(st.sampled_from(["stop", "tool_use", None])),
        "response_id": maybe(TEXT),
        "cost_usd": maybe(st.one_of(st.none(), st.floats(0, 10))),
    },
)
CALL = st.builds(
    Call,
    provider=maybe(NAME),
    model=maybe(NAME),
    max_tokens=maybe(st.one_of(st.none(), COUNT)),
    estimate=maybe(st.one_of(st.none(), COUNT)),
    usage=st.one_of(st.none(), USAGE),
)
TOOL = st.builds(
    Tool,
    name=maybe(NAME),
    call_id=maybe(st.one_of(st.none(), TEXT)),
    arguments=ANYTHING,
    result=ANYTHING,
    is_error=maybe(st.booleans()),
    fails=st.booleans(),
)
RUN = st.builds(
    RunScript,
    prompt=maybe(st.one_of(st.none(), TEXT)),
    agent_name=maybe(NAME),
    steps=st.lists(st.one_of(CALL, TOOL), max_size=4),
    response=maybe(st.one_of(st.none(), TEXT)),
    fails=st.booleans(),
)
SESSION = st.builds(
    SessionScript,
    session_id=maybe(st.one_of(st.none(), TEXT)),
    user=maybe(st.one_of(st.none(), TEXT)),
    subscription=maybe(st.booleans()),
    attributes=maybe(st.dictionaries(TEXT, TEXT, max_size=2)),
    file_name=maybe(st.one_of(st.none(), TEXT)),
    runs=st.lists(RUN, min_size=1, max_size=2),
)


class AgentFailure(Exception):
    """What the scripted agent raises on purpose (its message is any text)."""


@dataclass
class Expected:
    calls: int = 0
    tokens: dict[str, int] = field(
        default_factory=lambda: {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}
    )
    session_calls: list[int] = field(default_factory=list)
    session_input: list[int] = field(default_factory=list)


def _well_formed(usage: dict[str, Any]) -> bool:
    """Usage that record_usage must count in full."""
    counts = [usage.get(kind, 0) for kind in TOKEN_KINDS]
    if not all(is_count(count) for count in counts):
        return False
    if usage.get("reasoning_tokens", 0) > usage.get("output_tokens", 0):
        return False
    cost = usage.get("cost_usd")
    return cost is None or (type(cost) in (int, float) and 0 <= cost < math.inf)


def _run_call(run: Any, call: Call, expected: Expected) -> None:
    with run.llm_call(
        call.provider, call.model, max_tokens=call.max_tokens, estimated_input_tokens=call.estimate
    ) as handle:
        expected.calls += 1
        expected.session_calls[-1] += 1
        if call.usage is not None:
            handle.record_usage(**call.usage)
            if _well_formed(call.usage):
                for kind in ("input", "output", "cache_read", "cache_write"):
                    expected.tokens[kind] += call.usage.get(f"{kind}_tokens", 0)
                expected.session_input[-1] += call.usage.get("input_tokens", 0)


def _run_tool(run: Any, tool: Tool) -> None:
    with run.tool_call(tool.name, call_id=tool.call_id, arguments=tool.arguments) as handle:
        handle.set_result(tool.result, is_error=tool.is_error)
        if tool.fails:
            raise AgentFailure(tool.name if isinstance(tool.name, str) else "tool failed")


def _drive(tel: kt.Telemetry, sessions: list[SessionScript], folder: Path) -> Expected:
    expected = Expected()
    for script in sessions:
        expected.session_calls.append(0)
        expected.session_input.append(0)
        file = folder / script.file_name if isinstance(script.file_name, str) else script.file_name
        if isinstance(script.file_name, str) and "\x00" in script.file_name:
            file = script.file_name  # a NUL is no path: the edge must say so, not pathlib
        with tel.session(
            script.session_id,
            session_file=file,
            user=script.user,
            subscription=script.subscription,
            attributes=script.attributes,
        ) as session:
            for run_script in script.runs:
                try:
                    with session.run(run_script.prompt, agent_name=run_script.agent_name) as run:
                        for step in run_script.steps:
                            try:
                                if isinstance(step, Call):
                                    _run_call(run, step, expected)
                                else:
                                    _run_tool(run, step)
                            except AgentFailure:
                                pass
                        run.set_response(run_script.response)
                        if run_script.fails:
                            raise AgentFailure(str(run_script.prompt)[:50])
                except AgentFailure:
                    pass
    return expected


def _count_state(event: kt.Event, ctx: kt.ExtensionContext) -> None:
    ctx.set_state("runs", ctx.get_state("runs", 0) + 1)


def _state_extension(api: kt.ExtensionAPI) -> None:
    api.on(kt.EventType.AGENT_END, _count_state)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    # In memory where there is a tmpfs: the state's fsyncs would be most of the run time.
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix="kit-property-", dir=where))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sessions=st.lists(SESSION, min_size=1, max_size=2))
def test_any_value_at_any_parameter_never_breaks_the_agent_nor_the_data(
    sessions: list[SessionScript], folder: Path
) -> None:
    """Whatever the agent passes: no exception, valid OTLP and /metrics, exact counts."""
    budgets = [kt.Budget(name="wide", scope="run", max_llm_calls=10**6)]
    logging.getLogger("kit_telemetry").disabled = True
    try:
        with capture(
            strict=False,
            capture_content=True,
            max_series=8,
            state_dir=folder,
            state_durability="batched",
            budgets=budgets,
        ) as cap:
            cap.telemetry.extension_processor.load_setup("counter", _state_extension)
            expected = _drive(cap.telemetry, sessions, folder)
            assert cap.telemetry.force_flush()
            spans = cap.spans()
            metrics_text = generate_latest(cap.registry).decode("utf-8")
            session_ends = cap.events_of(kt.EventType.SESSION_END)
    finally:
        logging.getLogger("kit_telemetry").disabled = False

    request = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())
    exported = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(exported) == len(spans)
    for made, sent in zip(spans, exported, strict=True):
        # The encoder drops (and logs) an attribute it cannot encode: none may be missing.
        assert len(sent.attributes) == len(made.attributes or {}), made.name
        assert [len(e.attributes) for e in sent.events] == [
            len(e.attributes or {}) for e in made.events
        ], made.name
        assert sent.name == made.name

    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    calls = sum(s.value for s in families["kit_llm_calls"].samples if s.name.endswith("_total"))
    assert calls == expected.calls
    for kind, total in expected.tokens.items():
        counted = sum(
            s.value
            for s in families["kit_llm_tokens"].samples
            if s.name.endswith("_total") and s.labels["token_type"] == kind
        )
        assert counted == pytest.approx(float(total), rel=1e-9)

    assert [e.llm_call_count for e in session_ends] == expected.session_calls  # type: ignore[attr-defined]
    assert [e.input_tokens for e in session_ends] == [  # type: ignore[attr-defined]
        min(total, MAX_TOKENS) for total in expected.session_input
    ]


STATE_OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "set", "get", "delete"]),
        st.one_of(st.sampled_from(["a", "b", "runs"]), TEXT, ANYTHING),
        ANYTHING,
    ),
    min_size=1,
    max_size=8,
)


@settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=STATE_OPS)
def test_any_key_and_value_at_the_state_api_never_raises_and_the_file_stays_json(
    ops: list[tuple[str, Any, Any]], folder: Path
) -> None:
    """Lenient state: a bad write is dropped, never raised; the file reads back as the store."""
    state_dir = Path(tempfile.mkdtemp(dir=folder))
    logging.getLogger("kit_telemetry").disabled = True
    try:
        with capture(strict=False, state_dir=state_dir) as cap:
            with cap.telemetry.session("s") as session:
                state = session.state
                state.set("a", 1)
                for op, key, value in ops:
                    if op == "set":
                        state.set(key, value)
                    elif op == "get":
                        state.get(key, value)
                    else:
                        state.delete(key)
                held = state.items()
            bad = cap.metric("kit_telemetry_internal_errors_total", component="api") or 0
    finally:
        logging.getLogger("kit_telemetry").disabled = False
    [sidecar] = [p for p in state_dir.iterdir() if p.name.endswith(STATE_SUFFIX)]
    on_disk = json.loads(sidecar.read_text(encoding="utf-8"))
    assert on_disk == held
    assert all(type(key) is str and key for key in on_disk)
    assert SessionState(sidecar).items() == held
    # Each operation is refused at most once (a bad key stops it before its value), and
    # one whose key is not even a string always is.
    assert sum(not isinstance(key, str) for _, key, _ in ops) <= bad <= len(ops)
