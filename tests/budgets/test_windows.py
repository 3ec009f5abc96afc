"""Budget windows: calendar periods in a timezone (DST-correct) and rolling durations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kit_telemetry.budgets.windows import (
    WindowSpec,
    parse_duration,
    parse_window,
    rolling_bucket_s,
    window_bounds,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def bounds(window: str, tz: str, when: datetime) -> tuple[datetime, datetime | None]:
    start, end = window_bounds(parse_window(window, tz), when.timestamp())
    zone = ZoneInfo(tz)
    return (
        datetime.fromtimestamp(start, zone),
        None if end is None else datetime.fromtimestamp(end, zone),
    )


def test_day_window_runs_from_local_midnight_to_local_midnight() -> None:
    """A day budget in Paris resets at Paris midnight, not UTC midnight."""
    start, end = bounds("day", "Europe/Paris", datetime(2024, 6, 10, 0, 30, tzinfo=PARIS))
    assert start == datetime(2024, 6, 10, tzinfo=PARIS)
    assert end == datetime(2024, 6, 11, tzinfo=PARIS)
    assert start.astimezone(timezone.utc).hour == 22  # 22:00 UTC the day before


@pytest.mark.parametrize(
    ("day", "hours"),
    [((2024, 3, 31), 23), ((2024, 10, 27), 25), ((2024, 6, 1), 24)],
)
def test_dst_days_are_23_or_25_hours_long(day: tuple[int, int, int], hours: int) -> None:
    """Spring-forward and fall-back days keep local midnights as their bounds."""
    start, end = window_bounds(
        parse_window("day", "Europe/Paris"), datetime(*day, 12, tzinfo=PARIS).timestamp()
    )
    assert end is not None and end - start == hours * 3600


def test_hour_windows_in_the_repeated_fall_back_hour_are_distinct() -> None:
    """01:00-02:00 happens twice in New York on 2024-11-03: two windows, one hour each."""
    spec = parse_window("hour", "America/New_York")
    first = datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=0).timestamp()
    second = datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=1).timestamp()
    assert second - first == 3600
    (s1, e1), (s2, e2) = window_bounds(spec, first), window_bounds(spec, second)
    assert e1 == s2 and e1 is not None and e2 is not None
    assert e1 - s1 == e2 - s2 == 3600


def test_hour_windows_follow_half_hour_offsets() -> None:
    """India is UTC+5:30: its hours start at :30 UTC."""
    start, _ = window_bounds(parse_window("hour", "Asia/Kolkata"), 1_700_000_000.0)
    assert datetime.fromtimestamp(start, timezone.utc).minute == 30


def test_week_windows_start_on_monday() -> None:
    """ISO weeks: Monday 00:00 to the next Monday 00:00."""
    start, end = bounds("week", "UTC", datetime(2024, 1, 7, 23, 59, tzinfo=timezone.utc))  # Sun
    assert start == datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC"))
    assert start.weekday() == 0 and end == start + timedelta(days=7)


def test_month_windows_cross_the_year() -> None:
    """December's window ends on the 1st of January, local time."""
    start, end = bounds("month", "Europe/Paris", datetime(2024, 12, 31, 23, 0, tzinfo=PARIS))
    assert start == datetime(2024, 12, 1, tzinfo=PARIS)
    assert end == datetime(2025, 1, 1, tzinfo=PARIS)
    start, end = bounds("month", "Europe/Paris", datetime(2024, 2, 29, 12, tzinfo=PARIS))
    assert (start.day, end.month if end else None) == (1, 3)


def test_none_and_rolling_windows_have_no_end() -> None:
    """none never resets; rolling forgets spend gradually instead of resetting."""
    assert window_bounds(parse_window("none"), 1000.0) == (0.0, None)
    assert window_bounds(parse_window("rolling:24h"), 100_000.0) == (100_000.0 - 86_400, None)


def test_rolling_durations_and_buckets() -> None:
    """Durations combine units; buckets are whole minutes, at most 1440 per window."""
    assert parse_duration("90m") == 5400
    assert parse_duration("1d12h") == 129_600
    assert parse_duration("2w") == 1_209_600
    spec = parse_window("rolling:24h")
    assert spec == WindowSpec(kind="rolling", timezone="UTC", rolling_s=86_400, bucket_s=60)
    assert rolling_bucket_s(7 * 86_400) == 420
    assert rolling_bucket_s(90 * 60) == 60


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "24H", "10s", "0m", "-1h", "1h 30m"])
def test_bad_durations_are_refused(text: str) -> None:
    """Only whole w/d/h/m parts make a duration; seconds are below the bucket size."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("window", "tz", "message"),
    [
        ("dayly", "UTC", "is not one of none, hour, day, week, month, rolling:<duration>"),
        ("rolling:", "UTC", "duration '' is not like"),
        ("day", "Mars/Base", "not an IANA timezone"),
    ],
)
def test_bad_windows_name_the_value_and_the_choices(window: str, tz: str, message: str) -> None:
    """The message says what was wrong and what is allowed."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_window(window, tz)


@settings(max_examples=200, deadline=None)
@given(
    instant=st.floats(min_value=946_684_800, max_value=2_524_608_000),  # 2000..2050
    window=st.sampled_from(["hour", "day", "week", "month"]),
    tz=st.sampled_from(
        ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
    ),
)
@example(instant=1262303999.9999995, window="hour", tz="UTC")  # rounds up in fromtimestamp()
def test_calendar_windows_contain_now_and_tile_time(instant: float, window: str, tz: str) -> None:
    """Every instant lies in its window, and the next window starts where this one ends.

    (Lord Howe's 30-minute DST shift is outside what hour windows promise.)
    """
    if window == "hour" and tz == "Australia/Lord_Howe":
        window = "day"
    spec = parse_window(window, tz)
    start, end = window_bounds(spec, instant)
    assert end is not None
    assert start <= instant < end
    assert window_bounds(spec, start) == (start, end)
    next_start, next_end = window_bounds(spec, end)
    assert next_start == end and next_end is not None and next_end > end
