"""``kit-telemetry prices [MODEL] [--json]``: show the price table, or the rows matching MODEL."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any, TextIO

from kit_telemetry.cli.json_output import write_json
from kit_telemetry.errors import ConfigError
from kit_telemetry.pricing import PriceRow, PriceTable

_HEADERS = ("PROVIDER", "MODEL", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "SOURCE")
_NUMERIC = frozenset({"INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE"})


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``prices`` command to the ``kit-telemetry`` parser."""
    parser = subparsers.add_parser(
        "prices",
        help="show model prices (USD per million tokens)",
        description=(
            "Show the price table kit-telemetry uses to cost LLM calls: the bundled "
            "genai-prices data plus any overrides, in USD per million tokens."
        ),
        epilog=(
            "--json prints one object: query (MODEL or null); priced_as (the row a dated or "
            "aliased MODEL is priced as: provider, model; or null); models (a list of rows: "
            "provider (null = any provider), model, input_per_mtok, output_per_mtok, "
            "cache_read_per_mtok, cache_write_per_mtok (null = billed at the input rate), "
            "source ('bundled' or 'override')). Exit status: 0 rows found; 1 MODEL matched "
            "nothing (models is empty); 2 a bad --prices file (nothing on stdout)."
        ),
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="show only models whose name contains MODEL (or matches it as a glob: 'gpt-4o*')",
    )
    parser.add_argument(
        "--prices",
        metavar="FILE",
        help="a TOML file of price overrides, as given to configure(prices=...)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the rows as JSON (keys listed below)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the matching prices; 1 when MODEL matches nothing, 2 for a bad prices file."""
    pattern: str | None = args.model
    try:
        table = PriceTable(args.prices)
    except ConfigError as exc:
        err.write(f"kit-telemetry prices: {exc}\n")
        return 2
    as_json: bool = args.json
    rows = table.known_models(pattern)
    priced_as: PriceRow | None = None
    if pattern and not any(ch in pattern for ch in "*?["):
        # A dated or aliased name ("claude-sonnet-4-5-20250929") is priced as its base model,
        # which a text search of model names does not find.
        row = table.find_row(None, pattern)
        if row is not None and row.model.lower() != pattern.strip().lower():
            priced_as = row
            rows = [row, *(other for other in rows if other != row)]
    if as_json:
        write_json(_document(pattern, priced_as, rows), out)
    elif priced_as is not None:
        out.write(
            f"{pattern} is priced as {priced_as.provider or 'any provider'} {priced_as.model}\n"
        )
    if not rows:
        if pattern is None:
            err.write("kit-telemetry prices: the price table is empty\n")
            return 1
        names = sorted({row.model for row in table.known_models()})
        close = difflib.get_close_matches(pattern, names, n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        err.write(f"kit-telemetry prices: no price for model {pattern!r}{hint}\n")
        return 1
    if not as_json:
        _write_table(rows, out)
    return 0


def _document(
    pattern: str | None, priced_as: PriceRow | None, rows: Sequence[PriceRow]
) -> dict[str, Any]:
    return {
        "query": pattern,
        "priced_as": (
            None
            if priced_as is None
            else {"provider": priced_as.provider or None, "model": priced_as.model}
        ),
        "models": [
            {
                "provider": row.provider or None,
                "model": row.model,
                "input_per_mtok": row.price.input_per_mtok,
                "output_per_mtok": row.price.output_per_mtok,
                "cache_read_per_mtok": row.price.cache_read_per_mtok,
                "cache_write_per_mtok": row.price.cache_write_per_mtok,
                "source": row.source,
            }
            for row in rows
        ],
    }


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.2f}"
    if float(text) != value:
        # Sub-cent rates (0.125, 0.0028) keep their digits; whole-cent ones read as money.
        text = f"{value:.6f}".rstrip("0")
    return text


def _write_table(rows: Sequence[PriceRow], out: TextIO) -> None:
    cells = [
        (
            row.provider or "*",
            row.model,
            _rate(row.price.input_per_mtok),
            _rate(row.price.output_per_mtok),
            _rate(row.price.cache_read_per_mtok),
            _rate(row.price.cache_write_per_mtok),
            row.source,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [_HEADERS, *cells]) for i in range(len(_HEADERS))]
    for line in [_HEADERS, *cells]:
        parts = [
            text.rjust(width) if header in _NUMERIC else text.ljust(width)
            for text, width, header in zip(line, widths, _HEADERS, strict=True)
        ]
        out.write("  ".join(parts).rstrip() + "\n")
    out.write(
        f"{len(rows)} model(s); USD per million tokens; '-' = billed at the input rate; "
        "'*' = any provider\n"
    )
