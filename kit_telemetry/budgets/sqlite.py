"""``SQLiteLedger``: budget counters in an SQLite file, shared by processes on one machine.

Every operation is one ``BEGIN IMMEDIATE`` transaction, so SQLite's write lock serialises
check-and-reserve across threads and processes, and the file survives restarts. The
database runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a
crash of the process (not necessarily a power cut), and readers never block the writer.
A writer that cannot get the lock within ``timeout_s`` gets a :class:`LedgerError`.
Each operation checks that the path still names the file it opened (device and inode):
a file deleted or replaced underneath is opened again, logged and counted in ``reopens``,
rather than written to where no other process looks.

Needs SQLite 3.35 or newer (2021; for ``RETURNING``), which Python's own builds and
current distributions ship.

Tables: ``counters`` (one row per counter, with its spent and reserved totals kept up to
date so the hot path reads one row), ``reservations``, ``buckets`` (rolling windows),
``idempotency`` and ``alerts``.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Concatenate, ParamSpec, TypeVar

from .ledger import (
    IDEMPOTENCY_TTL_S,
    Counter,
    CounterStatus,
    LedgerError,
    ReserveOutcome,
    check_amounts,
    refuses,
)

__all__ = ["SQLiteLedger"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

logger = logging.getLogger("kit_telemetry")

_NEVER = 1e300  # "no expiry pending"; a number rather than NULL keeps min()/max() simple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    budget TEXT NOT NULL,
    unit TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL,
    rolling_s INTEGER NOT NULL,
    bucket_s INTEGER NOT NULL,
    limit_value INTEGER NOT NULL,
    enforce INTEGER NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    next_expiry REAL NOT NULL DEFAULT 1e300,
    prune_at REAL NOT NULL DEFAULT 1e300,
    active_until REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    key TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, reservation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (key, bucket_start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, idempotency_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT NOT NULL,
    threshold REAL NOT NULL,
    kind TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, threshold, kind)
) WITHOUT ROWID;
"""

# The figures a caller passes are changes: a new row starts from them, an existing one adds
# spent and reserved and lowers next_expiry and prune_at to them. One statement per counter
# per operation, because each Python -> SQLite call costs about as much as the work it does.
# No RETURNING here: SQLite runs RETURNING through a temporary table, which costs more than
# the SELECT that commit does afterwards (and reserve needs nothing back).
_UPSERT_COUNTER = """
INSERT INTO counters (key, budget, unit, scope_key, window_start, window_end, rolling_s,
                      bucket_s, limit_value, enforce, active_until,
                      spent, reserved, next_expiry, prune_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    limit_value = excluded.limit_value,
    enforce = excluded.enforce,
    active_until = max(active_until, excluded.active_until),
    spent = spent + excluded.spent,
    reserved = reserved + excluded.reserved,
    next_expiry = min(next_expiry, excluded.next_expiry),
    prune_at = min(prune_at, excluded.prune_at)
"""
_INSERT_NEW_RESERVATION = (
    "INSERT INTO reservations VALUES (?, ?, ?, ?) ON CONFLICT (key, reservation_id) DO NOTHING"
)
_DELETE_RESERVATION = (
    "DELETE FROM reservations WHERE key = ? AND reservation_id = ? RETURNING amount"
)


class SQLiteLedger:
    """Counters in an SQLite file: several processes on one machine, and restarts.

    Args:
        path: the database file (created with its tables when missing).
        timeout_s: how long to wait for the write lock before raising ``LedgerError``.
        idempotency_ttl_s: how long idempotency keys are remembered.

    Raises:
        LedgerError: the file cannot be opened or initialised.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout_s: float = 5.0,
        idempotency_ttl_s: float = IDEMPOTENCY_TTL_S,
    ) -> None:
        self.path = os.fspath(path)
        self._timeout_s = timeout_s
        self._idempotency_ttl_s = idempotency_ttl_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self.reopens = 0
        """How often the file was found deleted or replaced and opened again."""
        self._next_sweep = -1e300
        with self._lock:
            self._connect()

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child opens its own.
        if self._conn is not None and self._pid == os.getpid():
            if self._identity == _identity(self.path):
                return self._conn
            self._reopen()
        if sqlite3.sqlite_version_info < (3, 35):
            raise LedgerError(
                f"sqlite ledger {self.path!r}: needs SQLite 3.35 or newer, "
                f"this Python has {sqlite3.sqlite_version}"
            )
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
            # Only a new file takes it (an existing one keeps its own). Every transaction
            # appends whole pages to the WAL, and each checkpoint syncs them to disk; rows
            # here are small (a row of up to 487 bytes fits a 2 KiB page without overflow),
            # so smaller pages write less for the same changes.
            conn.execute("PRAGMA page_size=2048")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
            # From here on _begin() does the waiting for the write lock.
            conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error as exc:
            raise LedgerError(f"sqlite ledger {self.path!r}: cannot open: {exc}") from exc
        self._conn = conn
        self._pid = os.getpid()
        self._identity = _identity(self.path)
        return conn

    def _reopen(self) -> None:
        """The file was deleted or replaced under an open connection: open the path again.

        Writes to the old connection would land in a file no other process sees (or in
        none at all), so budgets would silently stop being shared.
        """
        self.reopens += 1
        logger.warning(
            "sqlite ledger %r: the file was deleted or replaced while open; opening it "
            "again (spend recorded in the old file is not in the new one)",
            self.path,
        )
        if self._conn is not None:
            with suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    def _atomically(
        self,
        what: str,
        work: Callable[Concatenate[sqlite3.Cursor, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``work(cursor, ...)`` in one ``BEGIN IMMEDIATE`` transaction: committed if it
        returns, rolled back if it raises; SQLite errors become :class:`LedgerError`."""
        with self._lock:
            conn = self._connect()
            try:
                cur = conn.cursor()
                self._begin(cur)
                try:
                    result = work(cur, *args, **kwargs)
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise LedgerError(f"sqlite ledger {self.path!r}: {what} failed: {exc}") from exc
            return result

    def _begin(self, cur: sqlite3.Cursor) -> None:
        """``BEGIN IMMEDIATE``, retried with short jittered sleeps until ``timeout_s``.

        SQLite's own busy handler backs off to 100 ms sleeps, so under contention a few
        processes win the lock over and over while others wait for a second or more;
        sub-millisecond retries keep admission latency even across processes.
        """
        deadline = 0.0
        delay_s = 0.0001
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                now = time.monotonic()
                if not deadline:
                    deadline = now + self._timeout_s
                elif now >= deadline:
                    raise
            time.sleep(random.uniform(0, delay_s))
            delay_s = min(delay_s * 2, 0.001)

    def _figures(self, cur: sqlite3.Cursor, counter: Counter, now_s: float) -> tuple[int, int]:
        """``(spent, reserved)`` of a counter, dropping expired reservations and buckets."""
        row = cur.execute(
            "SELECT spent, reserved, next_expiry, prune_at FROM counters WHERE key = ?",
            (counter.key,),
        ).fetchone()
        if row is None:
            return 0, 0
        spent, reserved, next_expiry, prune_at = row
        if now_s >= next_expiry or now_s >= prune_at:
            key = counter.key
            if now_s >= next_expiry:
                cur.execute(
                    "DELETE FROM reservations WHERE key = ? AND expires_at <= ?", (key, now_s)
                )
            if now_s >= prune_at:
                horizon = now_s - counter.rolling_s - counter.bucket_s
                cur.execute(
                    "DELETE FROM buckets WHERE key = ? AND bucket_start <= ?", (key, horizon)
                )
            spent, reserved, next_expiry, prune_at = cur.execute(
                """UPDATE counters SET
                       reserved = coalesce((SELECT sum(amount) FROM reservations
                                            WHERE key = counters.key), 0),
                       next_expiry = coalesce((SELECT min(expires_at) FROM reservations
                                               WHERE key = counters.key), 1e300),
                       spent = CASE WHEN rolling_s > 0
                           THEN coalesce((SELECT sum(amount) FROM buckets
                                          WHERE key = counters.key), 0)
                           ELSE spent END,
                       prune_at = CASE WHEN rolling_s > 0
                           THEN coalesce((SELECT min(bucket_start) FROM buckets
                                          WHERE key = counters.key) + rolling_s + bucket_s, 1e300)
                           ELSE 1e300 END
                   WHERE key = ?
                   RETURNING spent, reserved, next_expiry, prune_at""",
                (key,),
            ).fetchone()
        return int(spent), int(reserved)

    def _upsert(
        self,
        cur: sqlite3.Cursor,
        counter: Counter,
        active_until: float,
        *,
        spent: int = 0,
        reserved: int = 0,
        next_expiry: float = _NEVER,
        prune_at: float = _NEVER,
    ) -> None:
        """Create or update the counter's row with these changes."""
        cur.execute(
            _UPSERT_COUNTER,
            (
                counter.key,
                counter.budget,
                counter.unit,
                counter.scope_key,
                counter.window_start,
                counter.window_end,
                counter.rolling_s,
                counter.bucket_s,
                counter.limit,
                int(counter.enforce),
                active_until,
                spent,
                reserved,
                next_expiry,
                prune_at,
            ),
        )

    def _sweep(self, cur: sqlite3.Cursor, now_s: float) -> None:
        # Old windows are dropped during normal traffic, at most once a minute, not on a timer.
        if now_s < self._next_sweep:
            return
        self._next_sweep = now_s + 60.0
        # active_until is never before a counter's last reservation expiry, so it alone decides.
        dead = "SELECT key FROM counters WHERE active_until <= ?"
        for table in ("reservations", "buckets", "idempotency", "alerts"):
            cur.execute(f"DELETE FROM {table} WHERE key IN ({dead})", (now_s,))
        cur.execute("DELETE FROM counters WHERE active_until <= ?", (now_s,))
        cur.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now_s,))
        cur.execute("DELETE FROM alerts WHERE expires_at <= ?", (now_s,))

    # --- the protocol: each operation validates, then does its work in one transaction ---

    def reserve(
        self,
        reservation_id: str,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        expires_at_s: float,
    ) -> ReserveOutcome:
        """See :meth:`LedgerBackend.reserve`."""
        check_amounts(amounts)
        return self._atomically(
            "reserve", self._reserve, reservation_id, amounts, now_s, expires_at_s
        )

    def commit(
        self,
        reservation_id: str | None,
        amounts: Sequence[tuple[Counter, int]],
        *,
        now_s: float,
        idempotency_key: str | None = None,
    ) -> list[tuple[int, int]]:
        """See :meth:`LedgerBackend.commit`."""
        check_amounts(amounts)
        return self._atomically(
            "commit", self._commit, reservation_id, amounts, now_s, idempotency_key
        )

    def release(self, reservation_id: str, counters: Sequence[Counter], *, now_s: float) -> None:
        """See :meth:`LedgerBackend.release`."""
        self._atomically("release", self._release, reservation_id, counters)

    def usage(self, counters: Sequence[Counter], *, now_s: float) -> list[tuple[int, int]]:
        """See :meth:`LedgerBackend.usage`."""
        return self._atomically("usage", self._usage, counters, now_s)

    def live_counters(self, *, now_s: float) -> list[CounterStatus]:
        """See :meth:`LedgerBackend.live_counters`."""
        return self._atomically("status", self._live_counters, now_s)

    def mark_alert_sent(
        self, counter: Counter, *, threshold: float, kind: str, now_s: float
    ) -> bool:
        """See :meth:`LedgerBackend.mark_alert_sent`."""
        return self._atomically(
            "mark_alert_sent", self._mark_alert_sent, counter, threshold, kind, now_s
        )

    # --- their work, inside the transaction ---

    def _reserve(
        self,
        cur: sqlite3.Cursor,
        reservation_id: str,
        amounts: Sequence[tuple[Counter, int]],
        now_s: float,
        expires_at_s: float,
    ) -> ReserveOutcome:
        self._sweep(cur, now_s)
        usage = tuple(self._figures(cur, counter, now_s) for counter, _ in amounts)
        for index, (counter, amount) in enumerate(amounts):
            spent, reserved = usage[index]
            if refuses(counter, spent, reserved, amount):
                return ReserveOutcome(False, index, usage)
        for counter, amount in amounts:
            key = counter.key
            change = amount
            cur.execute(_INSERT_NEW_RESERVATION, (key, reservation_id, amount, expires_at_s))
            if cur.rowcount == 0:
                # The id holds a reservation already (a caller reusing it): replace that
                # one, so reserved stays the exact sum of the rows.
                (previous,) = cur.execute(_DELETE_RESERVATION, (key, reservation_id)).fetchone()
                cur.execute(_INSERT_NEW_RESERVATION, (key, reservation_id, amount, expires_at_s))
                change = amount - previous
            self._upsert(
                cur,
                counter,
                max(counter.active_until(now_s), expires_at_s),
                reserved=change,
                next_expiry=expires_at_s,
            )
        return ReserveOutcome(True, -1, usage)

    def _commit(
        self,
        cur: sqlite3.Cursor,
        reservation_id: str | None,
        amounts: Sequence[tuple[Counter, int]],
        now_s: float,
        idempotency_key: str | None,
    ) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for counter, amount in amounts:
            key = counter.key
            held = 0
            if reservation_id is not None:
                row = cur.execute(_DELETE_RESERVATION, (key, reservation_id)).fetchone()
                held = row[0] if row is not None else 0
            charge = amount
            if idempotency_key:  # '' is no id: it would make every call count once
                cur.execute(
                    "INSERT INTO idempotency VALUES (?, ?, ?) "
                    "ON CONFLICT (key, idempotency_key) DO UPDATE SET "
                    "expires_at = excluded.expires_at WHERE expires_at <= ?",
                    (key, idempotency_key, now_s + self._idempotency_ttl_s, now_s),
                )
                if cur.rowcount == 0:  # seen before and not expired: count once
                    charge = 0
            rolls_off = _NEVER
            if charge and counter.rolling_s:
                start = int(now_s // counter.bucket_s) * counter.bucket_s
                cur.execute(
                    "INSERT INTO buckets VALUES (?, ?, ?) ON CONFLICT (key, bucket_start) "
                    "DO UPDATE SET amount = amount + excluded.amount",
                    (key, start, charge),
                )
                rolls_off = start + counter.rolling_s + counter.bucket_s
            self._upsert(
                cur,
                counter,
                counter.active_until(now_s),
                spent=charge,
                reserved=-held,
                prune_at=rolls_off,
            )
            # Pruning after this commit's changes rather than before gives the same
            # figures: a reservation deleted above is not counted either way, and the
            # bucket added above is the newest, never rolled off.
            out.append(self._figures(cur, counter, now_s))
        return out

    def _release(
        self, cur: sqlite3.Cursor, reservation_id: str, counters: Sequence[Counter]
    ) -> None:
        for counter in counters:
            row = cur.execute(_DELETE_RESERVATION, (counter.key, reservation_id)).fetchone()
            if row is not None:
                cur.execute(
                    "UPDATE counters SET reserved = reserved - ? WHERE key = ?",
                    (row[0], counter.key),
                )

    def _usage(
        self, cur: sqlite3.Cursor, counters: Sequence[Counter], now_s: float
    ) -> list[tuple[int, int]]:
        return [self._figures(cur, counter, now_s) for counter in counters]

    def _live_counters(self, cur: sqlite3.Cursor, now_s: float) -> list[CounterStatus]:
        rows = cur.execute(
            "SELECT budget, unit, scope_key, window_start, window_end, rolling_s, bucket_s, "
            "limit_value, enforce FROM counters WHERE active_until > ?",
            (now_s,),
        ).fetchall()
        out = []
        for budget, unit, scope_key, start, end, rolling_s, bucket_s, limit, enforce in rows:
            counter = Counter(
                budget=budget,
                unit=unit,
                scope_key=scope_key,
                window_start=start,
                window_end=end,
                rolling_s=rolling_s,
                bucket_s=bucket_s,
                limit=limit,
                enforce=bool(enforce),
            )
            spent, reserved = self._figures(cur, counter, now_s)
            out.append(CounterStatus(counter=counter, spent=spent, reserved=reserved))
        return out

    def _mark_alert_sent(
        self, cur: sqlite3.Cursor, counter: Counter, threshold: float, kind: str, now_s: float
    ) -> bool:
        expiry = min(counter.alert_expiry(now_s), _NEVER)
        self._upsert(cur, counter, counter.active_until(now_s))
        cur.execute(
            "INSERT INTO alerts VALUES (?, ?, ?, ?) ON CONFLICT (key, threshold, kind) "
            "DO UPDATE SET expires_at = excluded.expires_at WHERE expires_at <= ?",
            (counter.key, threshold, kind, expiry, now_s),
        )
        return cur.rowcount == 1

    def close(self) -> None:
        """Close the connection; idempotent (a later call reopens it)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _identity(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file at ``path``, or None when there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino
