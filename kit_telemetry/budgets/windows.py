"""Budget windows: which stretch of time a budget's counters cover.

A window is computed from the clock when it is needed; nothing runs on a timer.

- ``none``: one window for ever (no end).
- ``hour``, ``day``, ``week`` (ISO weeks, starting on Monday), ``month``: calendar periods
  in the budget's timezone, computed with :mod:`zoneinfo` so a ``day`` budget resets at
  local midnight also on the days a DST change makes 23 or 25 hours long. Hours are
  3600 s long from the local hour boundary (true of every zone whose DST shift is a whole
  hour).
- ``rolling:<duration>`` (e.g. ``rolling:24h``, ``rolling:90m``, ``rolling:1d12h``):
  spend older than the duration is forgotten. Ledgers keep rolling spend in time buckets
  of :attr:`WindowSpec.bucket_s` seconds (``max(60, duration / 1440)`` rounded up to whole
  minutes, so a counter never holds more than 1441 buckets). A bucket is dropped once all
  of it is older than the duration, so spend is forgotten between ``duration`` and
  ``duration + bucket_s`` after it was recorded: never early, which is the safe side for
  a limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

CALENDAR_WINDOWS = ("hour", "day", "week", "month")
WINDOW_CHOICES = "none, hour, day, week, month, rolling:<duration>"
DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60}
MAX_ROLLING_BUCKETS = 1440

_DURATION_RE = re.compile(r"(?:\d+[wdhm])+")
_DURATION_PART_RE = re.compile(r"(\d+)([wdhm])")


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowSpec:
    """A parsed window: its kind, the rolling duration and bucket size, and the timezone.

    Attributes:
        kind: ``none``, ``hour``, ``day``, ``week``, ``month`` or ``rolling``.
        timezone: the IANA zone calendar windows follow.
        rolling_s: the rolling duration in seconds (0 unless ``kind == "rolling"``).
        bucket_s: the bucket width of a rolling window in seconds (0 otherwise).
    """

    kind: str
    timezone: str = "UTC"
    rolling_s: int = 0
    bucket_s: int = 0

    @property
    def is_rolling(self) -> bool:
        """Whether spend expires bucket by bucket rather than at a window boundary."""
        return self.kind == "rolling"


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``24h``, ``90m``, ``1d12h`` or ``2w``.

    Units are ``w``, ``d``, ``h`` and ``m``; rolling windows count in whole minutes.

    Raises:
        ValueError: the text is not such a duration, or it is zero.
    """
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"duration {text!r} is not like 90m, 24h, 7d, 2w or 1d12h")
    seconds = sum(
        int(number) * DURATION_UNITS[unit] for number, unit in _DURATION_PART_RE.findall(text)
    )
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return seconds


def rolling_bucket_s(rolling_s: int) -> int:
    """Bucket width for a rolling window: whole minutes, at most 1440 buckets per window."""
    per_bucket = -(-rolling_s // MAX_ROLLING_BUCKETS)  # ceiling division
    return max(60, -(-per_bucket // 60) * 60)


def parse_window(window: str, timezone: str = "UTC") -> WindowSpec:
    """Parse a budget's ``window`` and ``timezone`` fields.

    Raises:
        ValueError: the window is not one of :data:`WINDOW_CHOICES` or the timezone is not
            an IANA zone; the message says which and what is allowed.
    """
    tz_error = _check_timezone(timezone)
    if tz_error:
        raise ValueError(tz_error)
    if window == "none" or window in CALENDAR_WINDOWS:
        return WindowSpec(kind=window, timezone=timezone)
    if window.startswith("rolling:"):
        try:
            rolling_s = parse_duration(window.removeprefix("rolling:"))
        except ValueError as exc:
            raise ValueError(f"window {window!r}: {exc}") from None
        return WindowSpec(
            kind="rolling",
            timezone=timezone,
            rolling_s=rolling_s,
            bucket_s=rolling_bucket_s(rolling_s),
        )
    raise ValueError(f"window {window!r} is not one of {WINDOW_CHOICES}")


def _check_timezone(timezone: str) -> str | None:
    import zoneinfo  # here: only budgets with a window read the time zone database

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return f"timezone {timezone!r} is not an IANA timezone name such as UTC or Europe/Paris"
    return None


def window_bounds(spec: WindowSpec, now_s: float) -> tuple[float, float | None]:
    """The current window's start and end (Unix seconds) at ``now_s``.

    ``none`` starts at 0 and has no end. A rolling window starts ``rolling_s`` before now
    and has no end either (it never resets as a whole). Calendar windows follow the
    budget's timezone.
    """
    kind = spec.kind
    if kind == "none":
        return 0.0, None
    if kind == "rolling":
        return now_s - spec.rolling_s, None
    import zoneinfo

    tz = zoneinfo.ZoneInfo(spec.timezone)
    # Window bounds fall on whole seconds, so flooring keeps the answer exact, whereas
    # fromtimestamp() rounds to the microsecond and could step into the next window.
    local = datetime.fromtimestamp(math.floor(now_s), tz)
    if kind == "hour":
        # replace() keeps ``fold``, so the repeated hour of a DST fall-back is its own window.
        start = local.replace(minute=0, second=0, microsecond=0).timestamp()
        return start, start + 3600.0
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    if kind == "day":
        first, following = day, day + timedelta(days=1)
    elif kind == "week":
        first = day - timedelta(days=local.weekday())
        following = first + timedelta(days=7)
    elif kind == "month":
        first = day.replace(day=1)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        following = datetime(year, month, 1, tzinfo=tz)
    else:
        raise ValueError(f"window kind {kind!r} is not one of {WINDOW_CHOICES}")
    # Aware-datetime arithmetic is wall-clock arithmetic, and timestamp() maps the wall
    # clock to the real instant, so DST days come out 23 or 25 hours long.
    return first.timestamp(), following.timestamp()
