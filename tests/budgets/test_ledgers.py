"""One test suite for every ledger backend: memory, SQLite (a temp file), Redis (a real server)."""

from __future__ import annotations

import socket
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit_telemetry.budgets.ledger import (
    Counter,
    LedgerBackend,
    LedgerError,
    micros_to_usd,
    open_ledger,
    usd_to_micros,
)
from kit_telemetry.budgets.memory import MemoryLedger
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.sqlite import SQLiteLedger
from kit_telemetry.errors import ConfigError, KitTelemetryError

NOW = 1_700_000_000.0
LATER = NOW + 600


def usd(
    budget: str = "b", limit: int = 100, *, enforce: bool = True, scope_key: str = "global"
) -> Counter:
    return Counter(budget=budget, unit="usd", scope_key=scope_key, limit=limit, enforce=enforce)


def test_reserve_within_limit_is_admitted_and_counted(ledger: LedgerBackend) -> None:
    """A reservation that fits is taken and shows up as reserved, not spent."""
    c = usd(limit=100)
    outcome = ledger.reserve("r1", [(c, 60)], now_s=NOW, expires_at_s=LATER)
    assert outcome.admitted and outcome.refused == -1
    assert outcome.usage == ((0, 0),)
    assert ledger.usage([c], now_s=NOW) == [(0, 60)]


def test_reserve_refuses_what_would_exceed_and_reserves_nothing_anywhere(
    ledger: LedgerBackend,
) -> None:
    """All or nothing: one refusing counter leaves every other counter untouched."""
    roomy, tight = usd("roomy", 1000), usd("tight", 100)
    ledger.reserve("r1", [(tight, 70)], now_s=NOW, expires_at_s=LATER)
    outcome = ledger.reserve("r2", [(roomy, 50), (tight, 31)], now_s=NOW, expires_at_s=LATER)
    assert not outcome.admitted
    assert outcome.refused == 1
    assert outcome.usage == ((0, 0), (0, 70))
    assert ledger.usage([roomy, tight], now_s=NOW) == [(0, 0), (0, 70)]
    # Exactly up to the limit is fine.
    assert ledger.reserve("r3", [(roomy, 50), (tight, 30)], now_s=NOW, expires_at_s=LATER).admitted
    assert ledger.usage([roomy, tight], now_s=NOW) == [(0, 50), (0, 100)]


def test_exhausted_counter_refuses_even_a_zero_reservation(ledger: LedgerBackend) -> None:
    """A budget at its limit admits nothing, not even a call it cannot price."""
    c = usd(limit=100)
    ledger.commit(None, [(c, 100)], now_s=NOW)
    outcome = ledger.reserve("r1", [(c, 0)], now_s=NOW, expires_at_s=LATER)
    assert not outcome.admitted and outcome.usage == ((100, 0),)


def test_counters_that_do_not_enforce_never_refuse_but_count(ledger: LedgerBackend) -> None:
    """warn and observe budgets are counted beyond their limit."""
    c = usd(limit=10, enforce=False)
    assert ledger.reserve("r1", [(c, 25)], now_s=NOW, expires_at_s=LATER).admitted
    assert ledger.reserve("r2", [(c, 25)], now_s=NOW, expires_at_s=LATER).admitted
    assert ledger.commit("r1", [(c, 30)], now_s=NOW) == [(30, 25)]


def test_commit_turns_the_reservation_into_the_actual_amount(ledger: LedgerBackend) -> None:
    """The actual cost replaces the reservation, also when it is higher."""
    c = usd(limit=100)
    ledger.reserve("r1", [(c, 40)], now_s=NOW, expires_at_s=LATER)
    ledger.reserve("r2", [(c, 40)], now_s=NOW, expires_at_s=LATER)
    assert ledger.commit("r1", [(c, 25)], now_s=NOW) == [(25, 40)]
    assert ledger.commit("r2", [(c, 90)], now_s=NOW) == [(115, 0)]
    # Over the limit now: the next call is refused.
    assert not ledger.reserve("r3", [(c, 1)], now_s=NOW, expires_at_s=LATER).admitted


def test_release_frees_the_reservation(ledger: LedgerBackend) -> None:
    """A failed or cancelled call gives its reservation back."""
    a, b = usd("a", 100), usd("b", 100)
    ledger.reserve("r1", [(a, 80), (b, 10)], now_s=NOW, expires_at_s=LATER)
    ledger.release("r1", [a, b], now_s=NOW)
    assert ledger.usage([a, b], now_s=NOW) == [(0, 0), (0, 0)]
    ledger.release("r1", [a, b], now_s=NOW)  # twice is harmless
    assert ledger.reserve("r2", [(a, 100)], now_s=NOW, expires_at_s=LATER).admitted


def test_expired_reservations_stop_counting(ledger: LedgerBackend) -> None:
    """A crashed process cannot pin a budget: its reservation expires."""
    c = usd(limit=100)
    ledger.reserve("crashed", [(c, 90)], now_s=NOW, expires_at_s=NOW + 60)
    ledger.reserve("alive", [(c, 5)], now_s=NOW, expires_at_s=NOW + 600)
    assert not ledger.reserve("r", [(c, 10)], now_s=NOW + 59, expires_at_s=LATER).admitted
    assert ledger.usage([c], now_s=NOW + 60) == [(0, 5)]
    assert ledger.reserve("r", [(c, 95)], now_s=NOW + 60, expires_at_s=LATER).admitted
    # A late commit of the expired reservation still records the real spend.
    assert ledger.commit("crashed", [(c, 7)], now_s=NOW + 61) == [(7, 100)]


def test_reserving_again_under_the_same_id_replaces_the_reservation(
    ledger: LedgerBackend,
) -> None:
    """A reused reservation id holds its latest amount once, so reserved stays exact."""
    c = usd(limit=100)
    ledger.reserve("r1", [(c, 60)], now_s=NOW, expires_at_s=LATER)
    assert ledger.reserve("r1", [(c, 30)], now_s=NOW, expires_at_s=LATER).admitted
    assert ledger.usage([c], now_s=NOW) == [(0, 30)]
    assert ledger.commit("r1", [(c, 10)], now_s=NOW) == [(10, 0)]


def test_a_commit_leaves_out_what_expired_since_the_last_call(ledger: LedgerBackend) -> None:
    """With no other call in between, a commit itself drops expired reservations and spend
    that rolled off, and returns the figures the next reservation will be judged on."""
    day = usd("d", 1000)
    ledger.reserve("late", [(day, 90)], now_s=NOW, expires_at_s=NOW + 60)
    ledger.reserve("other", [(day, 5)], now_s=NOW, expires_at_s=NOW + 600)
    assert ledger.commit("late", [(day, 7)], now_s=NOW + 61) == [(7, 5)]
    rolling = Counter(
        budget="r", unit="usd", scope_key="global", limit=1000, rolling_s=3600, bucket_s=60
    )
    start = 1_700_000_040.0  # a bucket boundary: the first spend rolls off at start + 3660
    ledger.commit(None, [(rolling, 60)], now_s=start + 10)
    ledger.reserve("crashed", [(rolling, 90)], now_s=start + 20, expires_at_s=start + 80)
    ledger.reserve("live", [(rolling, 5)], now_s=start + 20, expires_at_s=start + 4000)
    assert ledger.commit("live", [(rolling, 7)], now_s=start + 3660) == [(7, 0)]


def test_idempotency_key_counts_a_commit_once_per_counter(ledger: LedgerBackend) -> None:
    """Usage recorded twice for one response id is counted once."""
    a, b = usd("a", 1000), usd("b", 1000)
    ledger.reserve("r1", [(a, 10)], now_s=NOW, expires_at_s=LATER)
    ledger.reserve("r2", [(a, 10)], now_s=NOW, expires_at_s=LATER)
    assert ledger.commit("r1", [(a, 10)], now_s=NOW, idempotency_key="msg_1") == [(10, 10)]
    # Same key again: the reservation is dropped but nothing more is charged.
    assert ledger.commit("r2", [(a, 10)], now_s=NOW, idempotency_key="msg_1") == [(10, 0)]
    # The same key on another counter is that counter's first time.
    assert ledger.commit(None, [(a, 5), (b, 5)], now_s=NOW, idempotency_key="msg_1") == [
        (10, 0),
        (5, 0),
    ]
    assert ledger.commit(None, [(a, 5)], now_s=NOW, idempotency_key="msg_2") == [(15, 0)]


def test_commit_without_reservation_adds_usage(ledger: LedgerBackend) -> None:
    """Usage that was never admitted (spans from other libraries) is still counted."""
    c = Counter(budget="t", unit="tokens", scope_key="s-1", limit=1000)
    assert ledger.commit(None, [(c, 300)], now_s=NOW) == [(300, 0)]
    assert ledger.commit(None, [(c, 300)], now_s=NOW) == [(600, 0)]


def test_negative_amounts_are_rejected(ledger: LedgerBackend) -> None:
    """A negative amount would mint budget."""
    with pytest.raises(ValueError, match="negative"):
        ledger.reserve("r", [(usd(), -1)], now_s=NOW, expires_at_s=LATER)
    with pytest.raises(ValueError, match="negative"):
        ledger.commit(None, [(usd(), -1)], now_s=NOW)


def test_rolling_window_forgets_spend_older_than_its_duration(ledger: LedgerBackend) -> None:
    """rolling:1h: spend drops out between 1 h and 1 h + one bucket (60 s) later."""
    c = Counter(budget="r", unit="usd", scope_key="global", limit=100, rolling_s=3600, bucket_s=60)
    start = 1_700_000_040.0  # a bucket boundary (divisible by 60)
    ledger.commit(None, [(c, 60)], now_s=start + 10)
    ledger.commit(None, [(c, 30)], now_s=start + 1800)
    assert not ledger.reserve("x", [(c, 20)], now_s=start + 1801, expires_at_s=LATER).admitted
    assert ledger.usage([c], now_s=start + 3600 + 10) == [(90, 0)]  # never forgotten early
    assert ledger.usage([c], now_s=start + 3600 + 60) == [(30, 0)]
    assert ledger.reserve("y", [(c, 70)], now_s=start + 3660, expires_at_s=start + 4000).admitted
    assert ledger.usage([c], now_s=start + 1800 + 3660) == [(0, 0)]


def test_calendar_windows_have_separate_counters(ledger: LedgerBackend) -> None:
    """A new day starts from zero; the old day's counter is kept apart."""
    day1 = Counter(
        budget="d", unit="usd", scope_key="global", limit=100, window_start=0, window_end=NOW + 10
    )
    day2 = Counter(
        budget="d",
        unit="usd",
        scope_key="global",
        limit=100,
        window_start=NOW + 10,
        window_end=NOW + 86_410,
    )
    ledger.commit(None, [(day1, 100)], now_s=NOW)
    assert not ledger.reserve("a", [(day1, 1)], now_s=NOW, expires_at_s=LATER).admitted
    assert ledger.reserve("b", [(day2, 100)], now_s=NOW + 11, expires_at_s=LATER).admitted


def test_alert_is_marked_sent_only_once(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    """Alerts fire once per threshold and kind, also after a restart (shared backends)."""
    ledger = ledger_factory()
    c = usd(limit=100)
    assert ledger.mark_alert_sent(c, threshold=0.5, kind="warning", now_s=NOW)
    assert not ledger.mark_alert_sent(c, threshold=0.5, kind="warning", now_s=NOW + 1)
    assert ledger.mark_alert_sent(c, threshold=0.8, kind="warning", now_s=NOW)
    assert ledger.mark_alert_sent(c, threshold=1.0, kind="exceeded", now_s=NOW)
    assert ledger.mark_alert_sent(usd(scope_key="other"), threshold=0.5, kind="warning", now_s=NOW)
    reopened = ledger_factory()
    assert not reopened.mark_alert_sent(c, threshold=0.5, kind="warning", now_s=NOW + 2)
    assert not reopened.mark_alert_sent(c, threshold=1.0, kind="exceeded", now_s=NOW + 2)


def test_rolling_alerts_rearm_once_the_window_has_rolled_past(ledger: LedgerBackend) -> None:
    """A rolling window has no end, so an alert is remembered for one duration."""
    c = Counter(budget="r", unit="usd", scope_key="global", limit=100, rolling_s=3600, bucket_s=60)
    assert ledger.mark_alert_sent(c, threshold=0.5, kind="warning", now_s=NOW)
    assert not ledger.mark_alert_sent(c, threshold=0.5, kind="warning", now_s=NOW + 3599)
    assert ledger.mark_alert_sent(c, threshold=0.5, kind="warning", now_s=NOW + 3600)


def test_figures_survive_a_restart(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    """SQLite and Redis keep spend, reservations and idempotency keys across restarts."""
    first = ledger_factory()
    c = usd(limit=100)
    first.reserve("r1", [(c, 30)], now_s=NOW, expires_at_s=LATER)
    first.commit(None, [(c, 50)], now_s=NOW, idempotency_key="msg_1")
    first.close()
    second = ledger_factory()
    assert second.usage([c], now_s=NOW) == [(50, 30)]
    assert second.commit("r1", [(c, 20)], now_s=NOW, idempotency_key="msg_1") == [(50, 0)]


def test_live_counters_report_figures_limits_and_windows(ledger: LedgerBackend) -> None:
    """Status lists every active counter with spent, reserved, limit and window end."""
    g = usd("g", 100)
    s1 = Counter(budget="s", unit="tokens", scope_key="s-1", limit=500)
    day = Counter(
        budget="d",
        unit="llm_calls",
        scope_key="run-1",
        limit=5,
        window_start=NOW - 10,
        window_end=NOW + 100,
    )
    ledger.commit(None, [(g, 10), (s1, 200)], now_s=NOW)
    ledger.reserve("r", [(g, 5), (day, 1)], now_s=NOW, expires_at_s=NOW + 50)
    found = {(s.counter.budget, s.counter.scope_key): s for s in ledger.live_counters(now_s=NOW)}
    assert set(found) == {("g", "global"), ("s", "s-1"), ("d", "run-1")}
    assert (
        found["g", "global"].spent,
        found["g", "global"].reserved,
        found["g", "global"].limit,
    ) == (
        10,
        5,
        100,
    )
    assert found["s", "s-1"].counter.unit == "tokens" and found["s", "s-1"].spent == 200
    assert found["d", "run-1"].window_end == NOW + 100 and found["d", "run-1"].reserved == 1
    # After its window has ended (and its reservation expired) the day counter is gone.
    later = {s.counter.budget for s in ledger.live_counters(now_s=NOW + 101)}
    assert later == {"g", "s"}


def test_usd_conversion_is_exact_in_micro_usd() -> None:
    """Money is integer micro-USD inside ledgers; float USD only at the edges."""
    assert usd_to_micros(0.1) + usd_to_micros(0.2) == usd_to_micros(0.3) == 300_000
    assert micros_to_usd(2_500_000) == 2.5


def test_open_ledger_builds_each_backend_from_its_url(tmp_path: Path, redis_server) -> None:  # type: ignore[no-untyped-def]
    """memory, sqlite:PATH and redis://HOST:PORT/DB; anything else is a ConfigError."""
    assert isinstance(open_ledger("memory"), MemoryLedger)
    sqlite_ledger = open_ledger(f"sqlite:{tmp_path / 'b.db'}")
    assert isinstance(sqlite_ledger, SQLiteLedger) and (tmp_path / "b.db").exists()
    sqlite_ledger.close()
    redis_ledger = open_ledger(redis_server.url)
    assert isinstance(redis_ledger, RedisLedger)
    assert redis_ledger.usage([usd("never-used")], now_s=NOW) == [(0, 0)]
    redis_ledger.close()
    for bad in ("postgres://x", "sqlite:", "memory:", ""):
        with pytest.raises(ConfigError, match=r"is not one of|needs a file path"):
            open_ledger(bad)


def test_ledger_error_is_a_kit_telemetry_error() -> None:
    """The enforcer catches LedgerError to apply on_ledger_error."""
    assert issubclass(LedgerError, KitTelemetryError)


def test_unreachable_redis_raises_ledger_error() -> None:
    """A Redis that is down gives LedgerError, not a redis-py exception."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ledger = RedisLedger(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    with pytest.raises(LedgerError, match="reserve failed"):
        ledger.reserve("r", [(usd(), 1)], now_s=NOW, expires_at_s=LATER)
    with pytest.raises(LedgerError):
        ledger.mark_alert_sent(usd(), threshold=0.5, kind="warning", now_s=NOW)
    ledger.close()


def test_redis_keys_are_namespaced_and_expire(redis_server) -> None:  # type: ignore[no-untyped-def]
    """Every key lives under the prefix and carries a TTL, so ended windows clean up."""
    import redis

    ledger = RedisLedger(redis_server.url, prefix="ttl-test")
    day = Counter(
        budget="d",
        unit="usd",
        scope_key="global",
        limit=100,
        window_start=NOW,
        window_end=NOW + 7200,
    )
    rolling = Counter(budget="r", unit="usd", scope_key="x", limit=100, rolling_s=3600, bucket_s=60)
    ledger.reserve("r1", [(day, 5), (rolling, 5)], now_s=NOW, expires_at_s=NOW + 600)
    ledger.commit("r1", [(day, 5), (rolling, 5)], now_s=NOW, idempotency_key="msg")
    ledger.mark_alert_sent(day, threshold=0.5, kind="warning", now_s=NOW)
    ledger.reserve("r2", [(day, 1)], now_s=NOW + 1, expires_at_s=NOW + 601)  # ':r' again
    client = redis.Redis.from_url(redis_server.url)
    keys = sorted(k.decode() for k in client.scan_iter("ttl-test:*"))
    assert all(k.startswith("ttl-test:") for k in keys)
    counter_keys = [k for k in keys if k != "ttl-test:index"]
    assert {k.rsplit("]", 1)[1] for k in counter_keys} == {"", ":r", ":ra", ":b", ":i", ":a"}
    ttls = {k: client.ttl(k) for k in counter_keys}
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    day_ttls = [ttl for k, ttl in ttls.items() if '"d"' in k]
    # Calendar keys last until the window ends plus an hour of grace.
    assert all(7200 + 3600 - 5 <= ttl <= 7200 + 3600 for ttl in day_ttls), day_ttls
    client.close()
    ledger.close()


def test_sqlite_locked_beyond_timeout_raises_ledger_error(tmp_path: Path) -> None:
    """A writer that cannot get the lock in time gets LedgerError."""
    path = tmp_path / "locked.db"
    ledger = SQLiteLedger(path, timeout_s=0.1)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerError, match="locked"):
            ledger.reserve("r", [(usd(), 1)], now_s=NOW, expires_at_s=LATER)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ledger.reserve("r", [(usd(), 1)], now_s=NOW, expires_at_s=LATER).admitted
    ledger.close()


def test_sqlite_files_with_other_page_sizes_keep_them(tmp_path: Path) -> None:
    """New files get 2 KiB pages; a file made with 4 KiB pages (SQLite's default, and
    this ledger's before) keeps them, and its figures."""

    def page_size(path: Path) -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()

    earlier = tmp_path / "earlier.db"
    seed = sqlite3.connect(earlier, isolation_level=None)
    seed.execute("PRAGMA page_size=4096")
    seed.execute("PRAGMA journal_mode=WAL")
    seed.execute("CREATE TABLE unrelated (x)")
    seed.close()
    c = usd(limit=100)
    for _ in range(2):  # written, then reopened
        ledger = SQLiteLedger(earlier)
        ledger.commit(None, [(c, 40)], now_s=NOW)
        ledger.close()
    ledger = SQLiteLedger(earlier)
    assert ledger.usage([c], now_s=NOW) == [(80, 0)]
    ledger.close()
    SQLiteLedger(tmp_path / "new.db").close()
    assert (page_size(earlier), page_size(tmp_path / "new.db")) == (4096, 2048)


# ----------------------------------------------------------------- property test


@dataclass
class Model:
    """The ledger semantics in a few lines, to compare every backend against."""

    spent: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def reserved(self, key: str, now: float) -> int:
        return sum(a for a, exp in self.reservations.get(key, {}).values() if exp > now)

    def reserve(
        self, rid: str, amounts: list[tuple[Counter, int]], now: float, expires: float
    ) -> bool:
        usage = [(self.spent.get(c.key, 0), self.reserved(c.key, now)) for c, _ in amounts]
        for (c, amount), (spent, reserved) in zip(amounts, usage, strict=True):
            if c.enforce and (spent + reserved >= c.limit or spent + reserved + amount > c.limit):
                return False
        for c, amount in amounts:
            self.reservations.setdefault(c.key, {})[rid] = (amount, expires)
        return True

    def commit(self, rid: str | None, amounts: list[tuple[Counter, int]], idem: str | None) -> None:
        for c, amount in amounts:
            if rid is not None:
                self.reservations.get(c.key, {}).pop(rid, None)
            if idem is not None:
                if (c.key, idem) in self.seen:
                    continue
                self.seen.add((c.key, idem))
            self.spent[c.key] = self.spent.get(c.key, 0) + amount

    def release(self, rid: str, counters: list[Counter]) -> None:
        for c in counters:
            self.reservations.get(c.key, {}).pop(rid, None)


COUNTERS = [
    Counter(budget="a", unit="usd", scope_key="global", limit=100),
    Counter(budget="b", unit="tokens", scope_key="s", limit=60),
    Counter(budget="c", unit="usd", scope_key="global", limit=30, enforce=False),
]

subsets = st.lists(st.sampled_from(range(len(COUNTERS))), min_size=1, max_size=3, unique=True)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), subsets, st.integers(0, 50), st.integers(1, 120)),
        st.tuples(
            st.just("commit"),
            st.integers(0, 7),
            st.integers(0, 60),
            st.sampled_from([None, "k1", "k2"]),
        ),
        st.tuples(st.just("release"), st.integers(0, 7)),
        st.tuples(
            st.just("charge"), subsets, st.integers(0, 40), st.sampled_from([None, "k1", "k3"])
        ),
        st.tuples(st.just("tick"), st.integers(1, 90)),
    ),
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_ledger_matches_a_simple_model(ledger_factory, ops) -> None:  # type: ignore[no-untyped-def]
    """Random reserve/commit/release/charge/expiry sequences agree with the model exactly.

    Also checks the invariant behind hard stops: after every admitted reservation,
    spent + reserved <= limit for every enforced counter.
    """
    ledger = ledger_factory.fresh()
    model = Model()
    now = NOW
    held: dict[int, list[tuple[Counter, int]]] = {}
    for number, op in enumerate(ops):
        kind = op[0]
        if kind == "reserve":
            _, indexes, amount, ttl = op
            amounts = [(COUNTERS[i], amount) for i in indexes]
            rid = f"r{number % 8}"
            expected = model.reserve(rid, amounts, now, now + ttl)
            outcome = ledger.reserve(rid, amounts, now_s=now, expires_at_s=now + ttl)
            assert outcome.admitted == expected
            if expected:
                held[number % 8] = amounts
                after = ledger.usage([c for c, _ in amounts], now_s=now)
                for (c, _), (spent, reserved) in zip(amounts, after, strict=True):
                    if c.enforce:
                        assert spent + reserved <= c.limit
        elif kind == "commit":
            _, slot, actual, idem = op
            amounts = [(c, actual) for c, _ in held.pop(slot, [])]
            model.commit(f"r{slot}", amounts, idem)
            ledger.commit(f"r{slot}", amounts, now_s=now, idempotency_key=idem)
        elif kind == "release":
            counters = [c for c, _ in held.pop(op[1], [])]
            model.release(f"r{op[1]}", counters)
            ledger.release(f"r{op[1]}", counters, now_s=now)
        elif kind == "charge":
            _, indexes, amount, idem = op
            amounts = [(COUNTERS[i], amount) for i in indexes]
            model.commit(None, amounts, idem)
            ledger.commit(None, amounts, now_s=now, idempotency_key=idem)
        else:
            now += op[1]
        got = ledger.usage(COUNTERS, now_s=now)
        want = [(model.spent.get(c.key, 0), model.reserved(c.key, now)) for c in COUNTERS]
        assert got == want
