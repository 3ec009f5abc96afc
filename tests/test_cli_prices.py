"""Tests for ``kit-telemetry prices [MODEL]``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

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


# --- --json -------------------------------------------------------------------------------

ROW_KEYS = {
    "provider",
    "model",
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "source",
}


def _json(*argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = _run(*argv, "--json")
    document: dict[str, Any] = json.loads(out)
    return code, document, err


def test_json_rows_carry_the_documented_keys_and_rates() -> None:
    """Scripts get numbers, not formatted cells; a missing rate is null, not '-'."""
    code, doc, err = _json("gpt-4o*")
    assert (code, err) == (0, "")
    assert set(doc) == {"query", "priced_as", "models"}
    assert doc["query"] == "gpt-4o*"
    assert doc["priced_as"] is None
    assert all(set(row) == ROW_KEYS for row in doc["models"])
    row = next(r for r in doc["models"] if (r["provider"], r["model"]) == ("openai", "gpt-4o"))
    assert row["input_per_mtok"] == 2.5
    assert row["output_per_mtok"] == 10.0
    assert row["cache_read_per_mtok"] == 1.25
    assert row["cache_write_per_mtok"] is None
    assert row["source"] == "bundled"


def test_json_names_the_row_a_dated_model_is_priced_as() -> None:
    """The text line "X is priced as Y" becomes a field, and stdout stays pure JSON."""
    code, doc, _ = _json("gpt-4o-2024-08-06")
    assert code == 0
    assert doc["priced_as"] == {"provider": "openai", "model": "gpt-4o"}
    assert (doc["models"][0]["provider"], doc["models"][0]["model"]) == ("openai", "gpt-4o")


def test_json_lists_as_many_rows_as_the_text_table() -> None:
    """Both outputs come from the same rows."""
    _, text, _ = _run()
    _, doc, _ = _json()
    assert doc["query"] is None
    assert len(doc["models"]) == int(text.splitlines()[-1].split()[0])


def test_json_override_rows_have_null_for_unset_cache_rates(tmp_path: Path) -> None:
    """A user's price file shows up with source 'override' and its exact rates."""
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."house-llm"]\ninput_per_mtok = 0.125\noutput_per_mtok = 0.5\n', encoding="utf-8"
    )
    code, doc, _ = _json("house", "--prices", str(path))
    assert code == 0
    assert doc["models"] == [
        {
            "provider": None,
            "model": "house-llm",
            "input_per_mtok": 0.125,
            "output_per_mtok": 0.5,
            "cache_read_per_mtok": None,
            "cache_write_per_mtok": None,
            "source": "override",
        }
    ]


def test_json_unknown_model_prints_an_empty_list_and_exits_1() -> None:
    """No match is still a JSON answer on stdout; the hint goes to stderr."""
    code, doc, err = _json("claude-sonet-4-5")
    assert code == 1
    assert doc == {"query": "claude-sonet-4-5", "priced_as": None, "models": []}
    assert "close matches" in err


def test_json_bad_prices_file_prints_nothing_on_stdout(tmp_path: Path) -> None:
    """Invalid input (exit 2) is reported on stderr only."""
    path = tmp_path / "prices.toml"
    path.write_text('[models."m"]\ninput_per_mtok = -1\noutput_per_mtok = 1\n', encoding="utf-8")
    code, out, err = _run("--prices", str(path), "--json")
    assert (code, out) == (2, "")
    assert "input_per_mtok" in err
