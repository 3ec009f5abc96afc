"""Tests for ``kit-telemetry prices [MODEL]``."""

from __future__ import annotations

import io
from pathlib import Path

from kit_telemetry.cli import build_parser, main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["prices", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _row(output: str, provider: str, model: str) -> list[str]:
    for line in output.splitlines():
        cells = line.split()
        if cells[:2] == [provider, model]:
            return cells
    raise AssertionError(f"no row for {provider} {model} in:\n{output}")


def test_prices_is_a_registered_command() -> None:
    """The dispatcher finds the module and shows its help line."""
    assert "prices" in build_parser().format_help()


def test_prices_model_prints_a_table_of_rates() -> None:
    """A model search prints provider, model and the four rates per million tokens."""
    code, out, err = _run("claude-sonnet-4-5")
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header[:4] == ["PROVIDER", "MODEL", "INPUT", "OUTPUT"]
    assert "CACHE" in header
    assert _row(out, "anthropic", "claude-sonnet-4-5") == [
        "anthropic",
        "claude-sonnet-4-5",
        "3.00",
        "15.00",
        "0.30",
        "3.75",
        "bundled",
    ]
    assert "USD per million tokens" in out.splitlines()[-1]


def test_missing_cache_rate_is_shown_as_a_dash() -> None:
    """gpt-4o has no cache-write price; the table says so rather than printing 0."""
    code, out, _ = _run("gpt-4o*")
    assert code == 0
    assert _row(out, "openai", "gpt-4o")[2:6] == ["2.50", "10.00", "1.25", "-"]


def test_dated_model_name_says_which_price_it_uses() -> None:
    """A dated snapshot name is explained as the base model it is priced as."""
    code, out, _ = _run("gpt-4o-2024-08-06")
    assert code == 0
    assert out.splitlines()[0] == "gpt-4o-2024-08-06 is priced as openai gpt-4o"
    assert _row(out, "openai", "gpt-4o")[2] == "2.50"


def test_unknown_model_exits_1_with_close_matches() -> None:
    """A typo gets suggestions instead of an empty table."""
    code, out, err = _run("claude-sonet-4-5")
    assert code == 1
    assert out == ""
    assert "no price for model 'claude-sonet-4-5'" in err
    assert "close matches: " in err
    assert "claude-sonnet-4-5" in err.split("close matches: ")[1].split(", ")


def test_unknown_model_without_close_matches_says_only_that() -> None:
    """Nothing similar means no misleading suggestion list."""
    code, _, err = _run("zzqqxx-nothing-like-it")
    assert code == 1
    assert "no price for model 'zzqqxx-nothing-like-it'" in err
    assert "close matches" not in err


def test_prices_file_overrides_are_listed(tmp_path: Path) -> None:
    """--prices shows the user's own rates, marked as overrides, before bundled ones."""
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."house-llm"]\ninput_per_mtok = 0.125\noutput_per_mtok = 0.5\n'
        'provider = "gcp.vertex_ai"\n',
        encoding="utf-8",
    )
    code, out, err = _run("house", "--prices", str(path))
    assert code == 0, err
    assert _row(out, "google", "house-llm") == [
        "google",
        "house-llm",
        "0.125",
        "0.50",
        "-",
        "-",
        "override",
    ]


def test_bad_prices_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    """A broken override file is bad input: exit 2 and the ConfigError message."""
    path = tmp_path / "prices.toml"
    path.write_text('[models."m"]\ninput_per_mtok = -1\noutput_per_mtok = 1\n', encoding="utf-8")
    code, out, err = _run("--prices", str(path))
    assert code == 2
    assert out == ""
    assert "input_per_mtok" in err
    assert "-1" in err


def test_prices_without_model_lists_every_bundled_model() -> None:
    """With no MODEL the whole table is printed, with a count that matches the rows."""
    code, out, _ = _run()
    assert code == 0
    lines = out.splitlines()
    count = int(lines[-1].split()[0])
    assert count == len(lines) - 2
    assert count > 500
    assert _row(out, "openai", "gpt-4o")
    assert _row(out, "anthropic", "claude-sonnet-4-5")
