"""Label values: cleaned for any exposition format, and bounded in number per metric.

- ``model``, ``tool``, ``agent`` (and the other free-form labels listed in
  ``BOUNDED_LABELS``) keep at most ``max_label_values`` distinct values per metric; later
  values are reported as ``other`` and one warning names the metric, the label and the cut.
- Values longer than ``MAX_LABEL_VALUE_CHARS`` (256) characters are truncated; characters
  that UTF-8 cannot encode (lone surrogates) are replaced, so a scrape never breaks.
  Quotes, backslashes and newlines are escaped by prometheus-client's exposition.
- No label ever holds a session, run, user, trace or response id.
"""

from __future__ import annotations

import logging
from typing import Final

logger = logging.getLogger("kit_telemetry")

OTHER: Final = "other"
"""The value that replaces a bounded label's values past the cut."""

MAX_LABEL_VALUE_CHARS: Final = 256
"""Label values are truncated to this many characters."""

BOUNDED_LABELS: Final = frozenset(
    {
        "model",
        "tool",
        "agent",
        "gen_ai_request_model",
        # Free-form too (providers' and agents' own strings), so bounded the same way.
        "provider",
        "gen_ai_provider_name",
        "stop_reason",
        "error_type",
        "scope_key",
    }
)
"""Labels whose distinct values per metric are capped at ``max_label_values``."""


def clean_label_value(value: object) -> str:
    """A label value that any exposition format can carry."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_LABEL_VALUE_CHARS:
        text = text[:MAX_LABEL_VALUE_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate would make the whole scrape fail to encode; U+FFFD marks it.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class LabelGuard:
    """Caps the distinct values of one label in one metric.

    Not locked: ``KitMetrics`` admits values with its own lock held.
    """

    __slots__ = ("_label", "_limit", "_metric", "_seen", "_warned")

    def __init__(self, metric: str, label: str, limit: int) -> None:
        self._metric = metric
        self._label = label
        self._limit = limit
        self._seen: set[str] = set()
        self._warned = False

    def admit(self, value: str) -> str:
        """``value`` while it is among the first ``limit`` distinct ones, else ``OTHER``."""
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        if not self._warned:
            self._warned = True
            logger.warning(
                "metric %s: label %r reached %d distinct values; further values are "
                "reported as %r (raise max_label_values to keep more)",
                self._metric,
                self._label,
                self._limit,
                OTHER,
            )
        return OTHER
