"""Configuration options (the ``configure.*`` rows): a bad one is refused at start-up.

``configure()``/``Telemetry(...)`` is read once, before any agent runs: a bad option is a
``ConfigError`` in strict and lenient mode alike, since going on would quietly run with a
configuration nobody asked for.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from .table import FIELDS, INT64_MAX, shown


def check_option(field: str, value: object) -> None:
    """Refuse a bad configuration option at start-up, strict or not.

    Checks the ``choice``, ``seconds`` and ``size`` rows; the others are checked by the
    part of kit-telemetry that uses them, with the row's words.

    Raises:
        ConfigError: ``value`` is not allowed; names the option, the value and what is.
    """
    rule = FIELDS[field]
    assert rule.config, f"{field} is no configuration option"
    if value is None and rule.optional:
        return
    if rule.kind == "choice":
        fits = type(value) is str and value in rule.choices
    elif rule.kind == "seconds":
        fits = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
        )
    elif rule.kind == "size":
        fits = type(value) is int and 1 <= value <= INT64_MAX
    else:
        raise AssertionError(f"{field}: check_option does not check {rule.kind} rows")
    if not fits:
        option = field.removeprefix("configure.")
        raise ConfigError(f"configure(): {option} {shown(value)} is not {rule.allowed}")
