"""Validation of the values the public API is given: one table, two ways to refuse.

:data:`FIELDS` (in :mod:`.table`) names each parameter (``"llm_call.max_tokens"``) and its
:class:`Rule`: what is allowed, and what a lenient ``Telemetry`` records instead of a bad
value.

Two rules, by who gives the value. The agent's loop (sessions, runs, calls, tools, state):
strict raises ``UsageError``, lenient records what it can, logs once per field and counts
(the ``check_*`` functions of :mod:`.checks`). Configuration (``configure()``/
``Telemetry(...)``, the ``configure.*`` rows, marked ``config=True``) is read once, at
start-up, before any agent runs: a bad option is a ``ConfigError`` in both modes
(:func:`check_option`, in :mod:`.options`).
"""

from .checks import (
    check_amount,
    check_attributes,
    check_content,
    check_count,
    check_error,
    check_flag,
    check_messages,
    check_path,
    check_port,
    check_required_text,
    check_state_key,
    check_state_value,
    check_text,
    check_usage,
    is_count,
    new_session_id,
    to_text,
)
from .options import check_option
from .table import FIELDS, INT64_MAX, Rule

__all__ = [
    "FIELDS",
    "INT64_MAX",
    "Rule",
    "check_amount",
    "check_attributes",
    "check_content",
    "check_count",
    "check_error",
    "check_flag",
    "check_messages",
    "check_option",
    "check_path",
    "check_port",
    "check_required_text",
    "check_state_key",
    "check_state_value",
    "check_text",
    "check_usage",
    "is_count",
    "new_session_id",
    "to_text",
]
