"""Tests for the HTML report page, statically and in a real headless Chromium.

Chromium is launched twice for the whole module: once with ``--dump-dom`` (which runs the
page's script, so the DOM it prints is what a user sees) and once with ``--screenshot``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kit_telemetry.cli import main
from kit_telemetry.exporters.otlp_json_reader import SpanRecord, read_otlp_json
from kit_telemetry.report import Report, build_report, render_html

FIXTURES = Path(__file__).parent / "fixtures" / "traces"
SESSIONS = FIXTURES / "sessions.jsonl"

# Markup planted in the fixture's foreign session (model, provider, tool and agent names).
EVIL_MODEL = "<script>document.title='pwned-model'</script>"
EVIL_TOOL = "</script><script>document.title='pwned-tool'</script>"
EVIL_AGENT = "<img src=x onerror=\"document.title='pwned-agent'\">"
EVIL_PROVIDER = "acme</style><style>body{display:none}</style>"

_TOTALS_FIELDS = {
    "turns": "data-turn-count",
    "LLM calls": "data-llm-call-count",
    "denied": "data-budget-denied-count",
    "tools": "data-tool-call-count",
    "failed": "data-failed-tool-call-count",
    "input": "data-input-tokens",
    "output": "data-output-tokens",
    "cache read": "data-cache-read-tokens",
    "cache write": "data-cache-write-tokens",
    "reasoning": "data-reasoning-tokens",
    "unpriced": "data-unpriced-call-count",
}


@dataclass
class Node:
    """An element of a parsed page."""

    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Elements with this tag whose attributes hold these values (class: one of them)."""
        found = []
        for node in self.iter():
            if tag is not None and node.tag != tag:
                continue
            ok = True
            for name, value in attrs.items():
                key = name.rstrip("_").replace("_", "-")
                have = node.attrs.get(key)
                if key == "class":
                    ok = ok and have is not None and value in have.split()
                else:
                    ok = ok and have == value
            if ok:
                found.append(node)
        return found

    def text_content(self) -> str:
        return self.text + "".join(c.text_content() for c in self.children)


_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        # Text after a child goes into a text node, keeping document order for text_content().
        self.stack[-1].children.append(Node("#text", {}, text=data))


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def _cost_text(attrs: dict[str, str]) -> str:
    """The text report's cost cell from exact data-* figures ("unpriced", "≥" when partial)."""
    unpriced = int(attrs["data-unpriced-call-count"])
    if unpriced and unpriced >= int(attrs["data-llm-call-count"]):
        return "unpriced"
    return ("≥" if unpriced else "") + f"{float(attrs['data-cost-usd']):.6f}"


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Every table of the text report, as rows of header -> cell (cut at the rule's columns)."""
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if i == 0 or not re.fullmatch(r" *-+( {2}-+)*", line):
            continue
        spans = [m.span() for m in re.finditer(r"-+", line)]
        headers = [lines[i - 1][a:b].strip() for a, b in spans]
        rows = []
        for row in lines[i + 1 :]:
            if not row.strip():
                break
            rows.append({h: row[a:b].strip() for h, (a, b) in zip(headers, spans, strict=True)})
        tables.append(rows)
    return tables


@dataclass(frozen=True)
class Page:
    html: str
    path: Path
    text_report: str
    report: Report


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Page:
    target = tmp_path_factory.mktemp("html") / "report.html"
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", str(SESSIONS), "--html", str(target)], out=out, err=err)
    assert (code, err.getvalue()) == (0, "")
    traces = read_otlp_json(SESSIONS)
    return Page(
        html=target.read_text(encoding="utf-8"),
        path=target,
        text_report=out.getvalue(),
        report=build_report(traces.spans),
    )


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail(
            "Debian `chromium` is required for the HTML report tests (apt install chromium)"
        )
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _evil_chat_key(page: Page) -> str:
    run = next(r for r in page.report.runs if r.agent_name == EVIL_AGENT)
    node = next(n for n in run.spans if n.category == "llm")
    return f"{run.trace_id}-{node.span_id}"


@pytest.fixture(scope="module")
def dom(page: Page, tmp_path_factory: pytest.TempPathFactory) -> Node:
    """The DOM after Chromium ran the page's script, opened at the planted chat span."""
    tmp = tmp_path_factory.mktemp("chromium-dom")
    url = page.path.as_uri() + "#span=" + _evil_chat_key(page)
    result = _chromium(tmp, "--dump-dom", url)
    return parse_html(result.stdout)


@pytest.fixture(scope="module")
def screenshot(page: Page, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("chromium-shot")
    png = tmp / "report.png"
    _chromium(tmp, f"--screenshot={png}", "--window-size=1280,2000", page.path.as_uri())
    return png


# --- the page as written ------------------------------------------------------------------


def test_page_loads_no_script_or_style_from_anywhere(page: Page) -> None:
    """Self-contained: no external scripts, stylesheets, fonts or images, and no URL to fetch."""
    html = page.html
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link\b", html, re.I)
    assert "@import" not in html and "url(" not in html
    for tag in parse_html(html).iter():
        for name in ("src", "href", "xlink:href", "action"):
            if name in tag.attrs:
                assert tag.attrs[name].startswith("#"), (tag.tag, name, tag.attrs[name])
    # The only http URL in the page is trace data (a foreign span's url.full), inside the JSON.
    outside_data = re.sub(r'<script type="application/json".*?</script>', "", html, flags=re.S)
    assert not re.search(r"https?://", outside_data)
    assert len(re.findall(r"<script\b", html)) == 2


def test_trace_strings_never_become_markup(page: Page) -> None:
    """Model, tool, provider and agent names holding HTML are escaped everywhere."""
    for evil in (EVIL_MODEL, EVIL_TOOL, EVIL_AGENT, EVIL_PROVIDER):
        assert evil not in page.html
    assert "&lt;script&gt;document.title=&#x27;pwned-model&#x27;&lt;/script&gt;" in page.html
    tree = parse_html(page.html)
    assert [s.attrs.get("type") for s in tree.find_all("script")] == ["application/json", None]
    assert tree.find_all("img") == [] and len(tree.find_all("style")) == 1
    # The script's data block holds the names verbatim once decoded.
    (data_block,) = tree.find_all("script", id="kit-span-data")
    data = json.loads(data_block.text_content())
    assert EVIL_MODEL in {span["attributes"].get("gen_ai.request.model") for span in data.values()}
    assert EVIL_TOOL in {span["attributes"].get("gen_ai.tool.name") for span in data.values()}


def test_every_run_section_carries_the_models_totals(page: Page) -> None:
    """data-* attributes of each run section are the model's exact figures."""
    tree = parse_html(page.html)
    sections = {s.attrs["data-run-id"]: s for s in tree.find_all("section", class_="run")}
    assert set(sections) == {r.run_id for r in page.report.runs}
    for run in page.report.runs:
        attrs = sections[run.run_id].attrs
        assert attrs["data-session-id"] == run.session_id
        assert attrs["data-agent"] == run.agent_name
        assert float(attrs["data-cost-usd"]) == run.totals.cost_usd
        assert int(attrs["data-llm-call-count"]) == run.totals.llm_call_count
        assert json.loads(attrs["data-tool-names"]) == list(run.totals.tool_names)
        rows = sections[run.run_id].find_all("div", class_="wf-row")
        assert len(rows) == len(run.spans) == int(attrs["data-span-count"])


def test_waterfall_marks_errors_and_categories(page: Page) -> None:
    """Rows are coloured by kind and failed spans are marked, with bars inside the track."""
    tree = parse_html(page.html)
    (a2,) = tree.find_all("section", data_run_id="run-a2")
    rows = a2.find_all("div", class_="wf-row")
    assert [r.attrs["data-category"] for r in rows] == ["run", "turn", "llm", "tool", "turn", "llm"]
    errors = [
        r.find_all("div", class_="wf-name")[0].text_content()
        for r in rows
        if "is-error" in r.attrs["class"]
    ]
    assert errors == ["✕invoke_agent coder", "✕execute_tool bash", "✕turn 1", "✕chat gpt-4o"]
    for row in rows:
        (bar,) = row.find_all("div", class_="wf-bar")
        left, width = re.findall(r"[\d.]+(?=%)", bar.attrs["style"])
        assert float(left) >= 0 and float(left) + float(width) <= 100.0001


def test_charts_show_cumulative_cost_and_cost_by_model(page: Page) -> None:
    """The cost line ends at the total cost; one bar per model with its cost."""
    tree = parse_html(page.html)
    (line,) = tree.find_all("svg", id="cumulative-cost-chart")
    assert float(line.attrs["data-total-usd"]) == pytest.approx(page.report.totals.cost_usd)
    points = line.find_all("circle", class_="cost-point")
    assert len(points) == len(page.report.cost_timeline) == int(line.attrs["data-point-count"])
    cumulative = [float(p.attrs["data-cumulative-usd"]) for p in points]
    assert cumulative == sorted(cumulative)
    bars = tree.find_all("g", class_="model-bar")
    assert {(b.attrs["data-provider"], b.attrs["data-model"]) for b in bars} == {
        (m.provider, m.model) for m in page.report.models
    }
    unpriced = {b.attrs["data-model"] for b in bars if "unpriced" in b.attrs["class"].split()}
    assert unpriced == {"gpt-4o", "llama-3.1-8b", "gpt-4o-mini", "claude-haiku-4-5"}


# --- the page in Chromium -----------------------------------------------------------------


def test_chromium_runs_the_script_without_injected_code(dom: Node) -> None:
    """The page's script ran to the end, and none of the planted markup became live."""
    (html,) = dom.find_all("html")
    assert html.attrs.get("data-js") == "ready"
    (head,) = dom.find_all("head")
    (title,) = head.find_all("title")
    assert title.text_content().startswith("kit-telemetry report: ")
    assert "pwned" not in title.text_content()
    assert len(dom.find_all("script")) == 2
    assert dom.find_all("img") == []
    assert not [n for n in dom.iter() if any(a.startswith("on") for a in n.attrs)]


def test_chromium_shows_span_details_from_the_link(dom: Node, page: Page) -> None:
    """Opening page.html#span=KEY selects that span and lists its attributes as text."""
    (panel,) = dom.find_all("aside", id="span-details")
    assert "hidden" not in panel.attrs
    assert panel.attrs["data-span-key"] == _evil_chat_key(page)
    (heading,) = panel.find_all("h3")
    assert heading.text_content() == "chat " + EVIL_MODEL
    terms = [dt.text_content() for dt in panel.find_all("dt")]
    values = [dd.text_content() for dd in panel.find_all("dd")]
    details = dict(zip(terms, values, strict=True))
    assert details["gen_ai.request.model"] == EVIL_MODEL
    assert details["gen_ai.provider.name"] == EVIL_PROVIDER
    assert details["kind"] == "LLM call"
    (selected,) = dom.find_all("div", class_="selected")
    assert selected.attrs["data-span-key"] == _evil_chat_key(page)


def test_chromium_page_shows_every_run_with_the_text_reports_numbers(dom: Node, page: Page) -> None:
    """Each run row of the text report has a rendered run with the same figures."""
    text_rows = [
        row
        for table in parse_tables(page.text_report)
        if table and "run" in table[0]
        for row in table
        if row["run"] != "total"
    ]
    assert len(text_rows) == 8
    sections = {s.attrs["data-run-id"]: s for s in dom.find_all("section", class_="run")}
    table_rows = {r.attrs["data-run-id"]: r for r in dom.find_all("tr", class_="run-row")}
    assert set(sections) == set(table_rows) == {row["run"] for row in text_rows}
    for row in text_rows:
        section = sections[row["run"]]
        for header, attribute in _TOTALS_FIELDS.items():
            assert int(section.attrs[attribute]) == int(row[header].replace(",", "")), header
        assert _cost_text(section.attrs) == row["cost USD"]
        assert section.attrs["data-stop-reason"] == (
            "" if row["stop reason"] == "-" else row["stop reason"]
        )
        # The visible table cells show the very strings of the text report.
        cells = {
            td.attrs["data-field"]: td.text_content()
            for td in table_rows[row["run"]].find_all("td")
            if "data-field" in td.attrs
        }
        assert cells["cost_usd"] == row["cost USD"]
        assert cells["duration_ms"] == row["duration"]
        assert cells["input_tokens"] == row["input"]
        assert cells["stop_reason"] == row["stop reason"]
    (grand,) = dom.find_all("table", id="grand-total")
    text_total = parse_tables(page.text_report.split("Grand total", 1)[1])[0][-1]
    assert grand.attrs["data-run-count"] == text_total["runs"] == "8"
    assert _cost_text(grand.attrs) == text_total["cost USD"]


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the raw RGB(A) rows of an 8-bit non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    prev, rows, p = bytearray(stride), [], 0
    for _ in range(height):
        kind, row = raw[p], bytearray(raw[p + 1 : p + 1 + stride])
        p += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 255
        elif kind == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + (left + prev[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(row))
        prev = row
    return width, height, rows


def test_chromium_screenshot_shows_the_waterfall_colours(screenshot: Path) -> None:
    """The page renders: a full-size image in which each span kind's bar colour is painted."""
    width, height, rows = _png_pixels(screenshot)
    assert (width, height) == (1280, 2000)
    painted = {
        name: sum(row.count(bytes.fromhex(colour)) for row in rows)
        for name, colour in {
            "run": "7c5cff",
            "turn": "9aa3b2",
            "llm": "2f7ff5",
            "tool": "16a06a",
            "error": "e0383e",
        }.items()
    }
    # A blank or unstyled page has none of these; the fixture's first runs show them all.
    assert all(count > 300 for count in painted.values()), painted
    distinct_rows = len(set(rows))
    assert distinct_rows > 400, distinct_rows


def test_long_attribute_values_are_cut_in_the_span_data() -> None:
    """A captured prompt of megabytes must not make the page that heavy; a glimpse is kept."""
    span = SpanRecord(
        trace_id="12" * 16,
        span_id="34" * 8,
        parent_span_id=None,
        name="chat m",
        kind=3,
        start_ns=1_000_000,
        end_ns=2_000_000,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.input.messages": "x" * 50_000},
    )
    html = render_html(build_report([span]))
    match = re.search(r'<script type="application/json" id="kit-span-data">(.*?)</script>', html)
    assert match is not None
    (data,) = json.loads(match.group(1)).values()
    assert data["attributes"]["gen_ai.input.messages"] == "x" * 2000 + "… (48000 more characters)"
    assert len(html) < 30_000
