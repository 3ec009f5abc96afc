"""The documentation site in docs/: it builds without warnings, its code runs, its references are whole.

Every fenced block of a page whose first line is ``# file: NAME`` is written to NAME in a
fresh folder; every other ``python`` block of the page then runs there, in order, as one
script in a fresh interpreter (a page reads as one story).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kit_telemetry.metrics.catalogue import CATALOGUE
from kit_telemetry.testing import capture

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_FILE_HEADER = re.compile(r"#\s*file:\s*(\S+)\n")


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(page.read_text(encoding="utf-8"))]


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """mkdocs --strict fails on a broken link, a missing page or a docstring it cannot render."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for page in PAGES:
        name = "" if page.stem == "index" else f"{page.stem}/"
        assert (tmp_path / name / "index.html").is_file(), page.name
    # The API page is rendered from the docstrings, not left as a bare directive.
    api = (tmp_path / "api" / "index.html").read_text(encoding="utf-8")
    assert "record_usage" in api and ":::" not in api


@pytest.mark.parametrize("page", [p for p in PAGES if any(k == "python" for k, _ in _blocks(p))],
                         ids=lambda p: p.name)  # fmt: skip
def test_every_code_block_of_a_page_runs(page: Path, tmp_path: Path) -> None:
    script: list[str] = []
    for _, text in _blocks(page):
        header = _FILE_HEADER.match(text)
        if header:
            (tmp_path / header.group(1)).write_text(text, encoding="utf-8")
    for kind, text in _blocks(page):
        if kind == "python" and not _FILE_HEADER.match(text):
            script.append(text)
    (tmp_path / "page.py").write_text("\n".join(script), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for name in list(env):
        if name.startswith("OTEL_"):  # the page says what it sets
            del env[name]
    result = subprocess.run(
        [sys.executable, "page.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{page.name}:\n{result.stderr[-3000:]}"


def _table_rows(page: Path) -> dict[str, list[str]]:
    """First cell (without backticks) -> the row's cells, for every table row of a page."""
    rows: dict[str, list[str]] = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_the_metrics_reference_lists_every_metric_as_recorded() -> None:
    rows = _table_rows(DOCS / "metrics.md")
    documented = {name for name in rows if name.startswith(("kit_", "gen_ai_"))}
    assert documented == {spec.name for spec in CATALOGUE}
    for spec in CATALOGUE:
        _, kind, unit, labels, _ = rows[spec.name]
        assert kind == spec.kind, spec.name
        assert unit == f"`{spec.otel_unit}`", spec.name
        assert re.findall(r"`([^`]+)`", labels) == list(spec.labels), spec.name


def test_the_span_reference_names_every_attribute_a_run_records() -> None:
    text = (DOCS / "spans.md").read_text(encoding="utf-8")
    with capture(capture_content=True) as cap:
        tel = cap.telemetry
        with (
            tel.session("s-1", user="ada") as session,
            session.run("p", agent_name="a", agent_id="a-1", system_instructions="be brief") as run,
        ):
            with run.turn() as turn:
                with turn.llm_call(
                    provider="openai",
                    model="gpt-4o",
                    max_tokens=9,
                    server_address="api.openai.com",
                    server_port=443,
                ) as call:
                    call.set_messages([{"role": "user", "content": "hi"}], ["hello"])
                    call.record_usage(
                        input_tokens=3,
                        output_tokens=2,
                        cache_read_tokens=1,
                        cache_write_tokens=1,
                        reasoning_tokens=1,
                        finish_reason="stop",
                        response_id="r-1",
                        response_model="gpt-4o-2024-08-06",
                    )
                with turn.tool_call(
                    "bash", call_id="c-1", arguments={"cmd": "ls"}, tool_type="function"
                ) as tool:
                    tool.set_result("ok")
            run.set_response("done")
        emitted = {
            (span.name.split(" ")[0], key)
            for span in cap.spans()
            for key in [
                *(span.attributes or {}),
                *(k for e in span.events for k in e.attributes or {}),
            ]
        }
    names = {span.name.split(" ")[0] for span in cap.spans()}
    for name in names:
        assert f"`{name}" in text, f"span {name} is not in docs/spans.md"
    missing = sorted(f"{span}: {key}" for span, key in emitted if f"`{key}`" not in text)
    assert missing == [], f"attributes missing from docs/spans.md: {missing}"


def _help(*command: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "kit_telemetry", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def test_the_cli_page_names_every_command_and_option() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = re.findall(r"^    (\w+)  ", _help().split("positional arguments:")[1], re.M)
    assert "demo" in commands and "report" in commands
    for command in commands:
        assert f"`{command}" in text, f"command {command} is not in docs/cli.md"
        usage = _help(command).split("\n\n")[0]  # the usage paragraph lists every option
        for option in sorted(set(re.findall(r"--[a-z][a-z-]*", usage)) - {"--help"}):
            assert f"`{option}" in text or f"{option} " in text, f"{command} {option}"


def test_no_file_points_to_a_document_that_is_not_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    dangling = []
    for name in tracked:
        path = REPO / name
        if (
            path.suffix not in {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ""}
            or not path.is_file()
        ):
            continue
        for ref in re.findall(
            r"(?<![\w/:.-])([\w./-]+\.md)\b", path.read_text(encoding="utf-8", errors="replace")
        ):
            if not (
                (path.parent / ref).is_file() or (REPO / ref).is_file() or (DOCS / ref).is_file()
            ):
                dangling.append(f"{name}: {ref}")
    assert dangling == []
