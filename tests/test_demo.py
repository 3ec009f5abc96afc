"""``kit-telemetry demo`` as a user runs it: a real process, real files, a real /metrics port."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kit_telemetry import semconv as sc
from kit_telemetry.exporters.otlp_json_reader import read_otlp_json

TIMEOUT_S = 60


def _demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kit_telemetry", "demo", *args]


def _demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _demo_command(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _run_rows(stdout: str) -> list[list[str]]:
    """The per-run table: the lines between the column header and the first blank line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["session", "model"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def _summary_total(stdout: str) -> tuple[int, int, int, float]:
    """(runs, llm calls, tokens, cost) from the closing summary's ``total`` line."""
    [line] = [line for line in stdout.splitlines() if line.startswith("total ")]
    _, runs, calls, tokens, cost = line.split()
    # "≥": a run of the unpriced model makes the total a lower bound.
    return int(runs), int(calls), int(tokens.replace(",", "")), float(cost.lstrip("≥"))


def test_demo_prints_each_run_and_a_summary_and_writes_readable_traces(tmp_path: Path) -> None:
    """The README's first command: it runs offline, explains itself and leaves a trace file."""
    done = _demo(
        tmp_path, "--runs", "4", "--seed", "3", "--traces", "t.jsonl", "--prometheus", "none"
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert f"writing traces to {tmp_path / 't.jsonl'}" in out

    rows = _run_rows(out)
    assert len(rows) == 4
    for row in rows:
        assert row[0].startswith("demo-3-"), row
    # Columns: session model turns llm tools [(n!)] input cache-rd cache-wr output cost stop
    llm_calls = [int(row[3]) for row in rows]
    costs = [float(row[-2].lstrip("≥")) for row in rows]
    assert all(n >= 1 for n in llm_calls)

    runs, total_calls, total_tokens, total_cost = _summary_total(out)
    assert runs == 4
    assert total_calls == sum(llm_calls)
    assert total_tokens > 0
    assert total_cost == pytest.approx(sum(costs), abs=1e-4)

    traces = read_otlp_json(tmp_path / "t.jsonl")
    assert traces.errors == []
    run_spans = [s for s in traces.spans if s.name.startswith("invoke_agent ")]
    assert len(run_spans) == 4
    assert len({s.trace_id for s in run_spans}) == 4  # one trace per run
    assert all(s.parent_span_id is None for s in run_spans)
    assert sorted(s.attributes[sc.KIT_RUN_PREFIX + "llm_call_count"] for s in run_spans) == sorted(
        llm_calls
    )
    chats = [s for s in traces.spans if s.name.startswith("chat ")]
    assert len(chats) == sum(llm_calls)
    assert all(isinstance(s.attributes.get(sc.GEN_AI_CONVERSATION_ID), str) for s in chats)


def test_demo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    """Same seed, same output (apart from where the traces go); another seed, another demo."""
    folders = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    seeds = ["3", "3", "4"]
    procs = []
    for folder, seed in zip(folders, seeds, strict=True):
        folder.mkdir()
        args = ("--runs", "4", "--seed", seed, "--traces", "t.jsonl", "--prometheus", "none")
        procs.append(
            subprocess.Popen(
                _demo_command(*args),
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for folder, proc in zip(folders, procs, strict=True):
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, stderr
        outputs.append(stdout.replace(str(folder), "<tmp>"))
    first, second, other = outputs
    assert first == second
    assert _run_rows(first) != _run_rows(other)


def test_demo_serves_metrics_while_it_holds(tmp_path: Path) -> None:
    """``--prometheus HOST:0 --hold`` serves /metrics with the demo's numbers on a free port."""
    proc = subprocess.Popen(
        _demo_command(
            "--runs",
            "3",
            "--seed",
            "5",
            "--traces",
            "t.jsonl",
            "--prometheus",
            "127.0.0.1:0",
            "--hold",
            "2",
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    url = None
    try:
        # The "holding" line is written (and flushed) after the runs, before the pause.
        while True:
            line = lines.get(timeout=TIMEOUT_S)
            assert line is not None, "demo exited before holding: " + "".join(seen)
            seen.append(line)
            match = re.match(r"serving metrics on (\S+)", line)
            if match:
                url = match.group(1)
            if line.startswith("holding "):
                break
        assert url is not None, "".join(seen)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", url)
        assert not url.endswith(":0/metrics")  # the real port, not the one asked for
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            body = response.read().decode("utf-8")
    finally:
        try:
            code = proc.wait(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
    reader.join(timeout=10)
    while True:
        line = lines.get(timeout=10)
        if line is None:
            break
        seen.append(line)
    assert code == 0
    assert "kit_llm_calls_total" in body
    calls = sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "kit_llm_calls_total"
    )
    _, total_calls, _, _ = _summary_total("".join(seen))
    assert calls == total_calls


def test_zero_runs_is_a_usage_error(tmp_path: Path) -> None:
    """Bad options exit 2 with a message, before any file is written."""
    done = _demo(tmp_path, "--runs", "0", "--traces", "t.jsonl", "--prometheus", "none")
    assert done.returncode == 2
    assert "--runs" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "t.jsonl").exists()


def test_unwritable_traces_path_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    """A traces file in a missing folder is reported plainly, not as a traceback."""
    target = tmp_path / "no-such-folder" / "t.jsonl"
    done = _demo(tmp_path, "--runs", "1", "--traces", str(target), "--prometheus", "none")
    assert done.returncode == 2
    assert str(target) in done.stderr
    assert "Traceback" not in done.stderr


def test_each_demo_starts_its_trace_file_afresh_unless_appending(tmp_path: Path) -> None:
    """Two demos with one seed must not merge into one session in the report."""
    for _ in range(2):
        done = _demo(tmp_path, "--runs", "2", "--traces", "t.jsonl", "--prometheus", "none")
        assert done.returncode == 0, done.stderr
    once = read_otlp_json(tmp_path / "t.jsonl")
    assert (
        _demo(
            tmp_path, "--runs", "2", "--traces", "t.jsonl", "--prometheus", "none", "--append"
        ).returncode
        == 0
    )
    twice = read_otlp_json(tmp_path / "t.jsonl")
    assert len(once.spans) > 0
    assert len(twice.spans) == 2 * len(once.spans)


def test_demo_rows_and_summary_never_show_an_unpriced_run_as_free() -> None:
    """A run with an unpriced call reads ≥ (lower bound), one with no priced call 'unpriced'."""
    from kit_telemetry.cli.commands.demo import _format_run, _summary
    from kit_telemetry.cli.demo.agent import RunOutcome
    from kit_telemetry.events import AgentEndEvent

    def outcome(model: str, calls: int, unpriced: int, cost_usd: float) -> RunOutcome:
        end = AgentEndEvent(
            session_id=f"demo-{model}",
            timestamp_ns=1,
            agent_name="demo",
            llm_call_count=calls,
            cost_usd=cost_usd,
            unpriced_call_count=unpriced,
            cost_complete=not unpriced,
        )
        return RunOutcome(
            session_id=end.session_id, model=model, end=end, failed_tools=0, budget_stop=None
        )

    priced, partial, unpriced = (
        outcome("m-priced", 1, 0, 0.5),
        outcome("m-partial", 2, 1, 0.25),
        outcome("m-none", 1, 1, 0.0),
    )
    assert _format_run(priced).split()[-2] == "0.50000"
    assert _format_run(partial).split()[-2] == "≥0.25000"
    assert _format_run(unpriced).split()[-2] == "unpriced"
    lines = {
        line.split()[0]: line.split()[-1]
        for line in _summary([priced, partial, unpriced]).splitlines()[1:4]
    }
    assert lines == {
        "m-none": "unpriced",
        "m-partial": "≥0.25000",
        "m-priced": "0.50000",
    }
    total = _summary([priced, partial, unpriced]).splitlines()[4]
    assert total.split()[0] == "total" and total.split()[-1] == "≥0.75000"
    assert _summary([priced]).splitlines()[2].split()[-1] == "0.50000"


def test_a_demo_with_a_duration_keeps_starting_runs_and_rotates_sessions(tmp_path: Path) -> None:
    """``--duration`` runs until the time is up, not ``--runs``; used-up sessions make way."""
    done = _demo(
        tmp_path,
        "--duration",
        "2",
        "--pace",
        "0.01",
        "--seed",
        "3",
        "--traces",
        "t.jsonl",
        "--prometheus",
        "none",
    )
    assert done.returncode == 0, done.stderr
    assert "running at pace 0.01 until 2 s" in done.stdout
    rows = _run_rows(done.stdout)
    runs, _, _, _ = _summary_total(done.stdout)
    assert runs == len(rows) > 8  # more than the 6 runs of a plain demo, paced or not
    # Two sessions at a time, each ended after a few runs: later runs are in new sessions.
    assert len({row[0] for row in rows}) > 2
    traces = read_otlp_json(tmp_path / "t.jsonl")
    assert traces.errors == []
    assert len([s for s in traces.spans if s.name.startswith("invoke_agent ")]) == len(rows)


def test_a_demo_run_forever_ends_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """``--forever`` stops at Ctrl-C between telemetry calls: summary printed, every span ended."""
    proc = subprocess.Popen(
        _demo_command("--forever", "--pace", "0.01", "--traces", "t.jsonl", "--prometheus", "none"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        rows = 0
        for line in proc.stdout:  # wait for a few runs, so that Ctrl-C lands mid-demo
            rows += line.startswith("demo-")
            if rows == 3:
                break
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    runs, _, _, _ = _summary_total(rest)
    assert runs >= 3
    traces = read_otlp_json(tmp_path / "t.jsonl")
    assert traces.errors == []
    run_spans = [s for s in traces.spans if s.name.startswith("invoke_agent ")]
    assert len(run_spans) == runs  # no run left open, none lost


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--duration", "0"), "--duration"),
        (("--duration", "5", "--pace", "-1"), "--pace"),
        (("--warmup", "-1"), "--warmup"),
        (("--runs", "3", "--forever"), "--forever"),
    ],
)
def test_bad_pacing_options_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], named: str
) -> None:
    """A paced demo's options are checked before anything runs, naming the option."""
    done = _demo(tmp_path, *args, "--traces", "t.jsonl", "--prometheus", "none")
    assert done.returncode == 2
    assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_a_stopped_pacing_waits_no_more_and_a_negative_pace_is_refused() -> None:
    """Ctrl-C cuts any wait short; a pace below 0 is a configuration error naming it."""
    from kit_telemetry.cli.demo.pacing import Pacing
    from kit_telemetry.errors import ConfigError

    slow = Pacing(1.0, seed=4)
    assert not slow.stopped
    slow.stop()
    assert slow.stopped
    slow.model_call(3600.0)  # returns: a stopped pacing waits no more
    slow.tool_call("run_tests")
    slow.between_runs()
    slow.pause(3600.0)
    with pytest.raises(ConfigError, match="pace -1"):
        Pacing(-1.0, seed=4)
