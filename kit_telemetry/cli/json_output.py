"""The ``--json`` output of the CLI: one JSON document per run, always valid JSON.

Python's ``json`` writes ``NaN`` and ``Infinity`` for non-finite floats, which other JSON
parsers reject; a figure that is not a number is written as ``null`` instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["write_json"]


def write_json(document: Mapping[str, Any], out: TextIO) -> None:
    """Write ``document`` to ``out`` as indented JSON and a newline."""
    json.dump(_finite(document), out, indent=2, allow_nan=False, ensure_ascii=False)
    out.write("\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_finite(item) for item in value]
    return value
