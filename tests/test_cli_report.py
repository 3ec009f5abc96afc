"""``kit-telemetry report --json``: the report's figures as one JSON document."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from kit_telemetry.cli import main
from kit_telemetry.exporters.otlp_json_reader import read_otlp_json
from kit_telemetry.report import build_report
from kit_telemetry.tokens import TOKEN_KINDS

FIXTURES = Path(__file__).parent / "fixtures" / "traces"
SESSIONS = FIXTURES / "sessions.jsonl"
TRUNCATED = FIXTURES / "truncated.jsonl"

TOTALS_KEYS = {
    "turn_count",
    "llm_call_count",
    "budget_denied_count",
    "failed_llm_call_count",
    "tool_call_count",
    "failed_tool_call_count",
    "tool_names",
    "tokens",
    "cost_usd",
    "unpriced_call_count",
    "cost_complete",
    "duration_ms",
}


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _json(*argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = _cli(*argv, "--json")
    document: dict[str, Any] = json.loads(out)
    return code, document, err


def test_json_report_has_the_documented_keys() -> None:
    """Scripts rely on the keys `report --help` lists; each level carries exactly those."""
    code, doc, err = _json(str(SESSIONS))
    assert (code, err) == (0, "")
    assert set(doc) == {
        "source",
        "span_count",
        "read_errors",
        "warnings",
        "totals",
        "models",
        "sessions",
    }
    assert set(doc["totals"]) == TOTALS_KEYS
    assert set(doc["totals"]["tokens"]) == {*TOKEN_KINDS, "total"}
    session = doc["sessions"][0]
    assert set(session) == {
        "session_id",
        "start_ns",
        "end_ns",
        "totals",
        "models",
        "warnings",
        "runs",
    }
    assert set(session["runs"][0]) == {
        "run_id",
        "trace_id",
        "agent_name",
        "start_ns",
        "end_ns",
        "stop_reason",
        "error",
        "totals",
        "totals_source",
        "models",
        "warnings",
        "inferred",
    }
    assert set(doc["models"][0]) == {
        "provider",
        "model",
        "llm_call_count",
        "budget_denied_count",
        "tokens",
        "cost_usd",
        "unpriced_call_count",
    }


def test_report_help_documents_the_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """The keys are documented where users look: `kit-telemetry report --help`."""
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for key in ("span_count", "read_errors", "totals_source", "cost_usd", "cache_read_tokens"):
        assert key in help_text


def test_json_report_holds_the_fixture_known_totals() -> None:
    """The fixture's hand-counted grand totals come out of the JSON unchanged."""
    _, doc, _ = _json(str(SESSIONS))
    totals = doc["totals"]
    assert doc["source"] == str(SESSIONS)
    assert [s["session_id"] for s in doc["sessions"]] == [
        "s-alpha",
        "s-beta",
        "s-foreign",
        "s-gamma",
    ]
    assert (
        totals["turn_count"],
        totals["llm_call_count"],
        totals["budget_denied_count"],
        totals["tool_call_count"],
        totals["failed_tool_call_count"],
        totals["unpriced_call_count"],
    ) == (14, 13, 1, 9, 1, 5)
    assert totals["tokens"]["input_tokens"] == 15276
    assert totals["tokens"]["output_tokens"] == 2110
    assert totals["tokens"]["cache_read_tokens"] == 11124
    assert totals["tokens"]["cache_write_tokens"] == 200
    assert totals["tokens"]["reasoning_tokens"] == 50
    assert totals["cost_usd"] == pytest.approx(0.06015)


def test_json_runs_match_the_report_model() -> None:
    """Every run's figures are the ones the text and HTML renderers show."""
    report = build_report(read_otlp_json(SESSIONS).spans)
    _, doc, _ = _json(str(SESSIONS))
    runs = [run for session in doc["sessions"] for run in session["runs"]]
    assert len(runs) == len(report.runs)
    for got, want in zip(runs, report.runs, strict=True):
        assert got["run_id"] == want.run_id
        assert got["agent_name"] == want.agent_name
        assert got["stop_reason"] == want.stop_reason
        assert got["error"] == want.error
        assert got["totals"]["llm_call_count"] == want.totals.llm_call_count
        assert got["totals"]["tokens"]["total"] == want.totals.tokens.total
        assert got["totals"]["cost_usd"] == pytest.approx(want.totals.cost_usd)


def test_json_session_filter_narrows_the_document() -> None:
    """--session with --json keeps only that session, totals included."""
    code, doc, _ = _json(str(SESSIONS), "--session", "s-gamma")
    assert code == 0
    assert [s["session_id"] for s in doc["sessions"]] == ["s-gamma"]
    assert doc["totals"]["llm_call_count"] == 3
    assert doc["totals"]["cost_usd"] == pytest.approx(0.03)


def test_json_with_unreadable_lines_is_still_valid_json_and_exits_1() -> None:
    """A truncated file is reported in read_errors; the document parses all the same."""
    code, doc, err = _json(str(TRUNCATED))
    assert code == 1
    assert doc["read_errors"]
    assert doc["sessions"]
    assert "unreadable line" in err


def test_json_with_html_keeps_stdout_pure_json(tmp_path: Path) -> None:
    """The "HTML written" note goes to stderr so stdout still parses as one document."""
    page = tmp_path / "r.html"
    code, doc, err = _json(str(SESSIONS), "--html", str(page))
    assert code == 0
    assert doc["totals"]["llm_call_count"] == 13
    assert page.read_text(encoding="utf-8").startswith("<!")
    assert str(page) in err


def test_json_for_a_missing_file_prints_nothing_on_stdout(tmp_path: Path) -> None:
    """Exit 2 (nothing read) leaves stdout empty, as `--help` documents."""
    code, out, err = _cli(str(tmp_path / "nope.jsonl"), "--json")
    assert code == 2
    assert out == ""
    assert "no such file" in err
