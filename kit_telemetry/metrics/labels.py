"""Label values: cleaned for any exposition format, and their combinations bounded per metric.

- Each metric keeps at most ``max_series`` combinations of its free-form label values
  (``model``, ``tool``, ``agent``... listed in ``BOUNDED_LABELS``). A new combination past
  the limit is recorded in the metric's overflow series instead: its free-form labels read
  ``other``, its closed-set labels (``outcome``, ``token_type``...) keep their value. One warning names
  the metric; every record that lands in an overflow series is counted in
  ``kit_metric_series_overflow_total{metric}``.
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
"""The value of a free-form label in a metric's overflow series."""

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
        "gen_ai_agent_name",
        "gen_ai_tool_name",
        "gen_ai_tool_type",
        "stop_reason",
        "error_type",
        "scope_key",
    }
)
"""Free-form labels: what an overflow series replaces with ``OTHER``."""


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


class SeriesLimit:
    """Caps the combinations of free-form label values of one metric.

    Counting the free-form part only keeps the cut the same across a metric's closed-set
    labels: a model kept for ``token_type="input"`` is kept for ``"output"`` too. A
    metric's series stay under ``limit`` times the product of its closed sets (at most 4).

    Not locked: ``KitMetrics`` admits combinations with its own lock held.
    """

    __slots__ = ("_free", "_limit", "_metric", "_seen", "_warned")

    def __init__(self, metric: str, labels: tuple[str, ...], limit: int) -> None:
        self._metric = metric
        self._limit = limit
        self._free = tuple(label in BOUNDED_LABELS for label in labels)
        self._seen: set[tuple[str, ...]] = set()
        self._warned = False

    def admit(self, values: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
        """The label values to record into, and whether they are the overflow series.

        ``values`` itself while its free-form part is among the first ``limit`` ones;
        past them, ``values`` with every non-empty free-form label replaced by ``OTHER``.
        """
        free = tuple(value for keep, value in zip(self._free, values, strict=True) if keep)
        if not free or free in self._seen:
            return values, False
        if len(self._seen) < self._limit:
            self._seen.add(free)
            return values, False
        if not self._warned:
            self._warned = True
            logger.warning(
                "metric %s reached %d label combinations; new ones are recorded with "
                "their free-form labels set to %r (raise max_series to keep more)",
                self._metric,
                self._limit,
                OTHER,
            )
        # An empty value is an absent label in Prometheus: it stays absent, so a success
        # (error_type "") is not reported as an error of type "other".
        overflow = tuple(
            OTHER if keep and value else value
            for keep, value in zip(self._free, values, strict=True)
        )
        return overflow, True
