"""``SpendJournal``: spend the ledger could not record, kept in a local file until replayed.

When the ledger cannot take a call's spend (it is down, and ``on_ledger_error = "allow"``
let the call in), the enforcer appends that spend here instead of losing it. When the
ledger answers again the journal is replayed, oldest first, and emptied.

The file holds JSON lines of two kinds: ``{"spend": ...}`` records (a call id, the
idempotency key, the counters and amounts) and ``{"done": id}`` marks. Each line is
written whole with one ``os.write`` on an ``O_APPEND`` descriptor under an advisory lock,
then ``fsync``-ed, as the OTLP/JSON trace file writes its batches; a reader skips a line
cut short by a crash. Replay commits each record under an idempotency key made from the
call (its response id, else ``journal:<call id>``), so a record replayed twice (a crash
between the commit and its ``done`` mark, two processes replaying at once) counts once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._flock import exclusive
from ..pricing.bundled import default_cache_dir
from .config import parse_ledger_url
from .ledger import Counter

__all__ = ["JournalEntry", "SpendJournal", "default_journal_path"]

logger = logging.getLogger("kit_telemetry")

_FLAGS = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_RECHECK_S = 5.0
"""How often an idle journal looks for records another process left."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One call's spend that waits for the ledger.

    Attributes:
        entry_id: the call's id (its reservation id), unique across processes.
        idempotency_key: the key the spend is committed under.
        amounts: the counters and the actual amount on each.
    """

    entry_id: str
    idempotency_key: str
    amounts: tuple[tuple[Counter, int], ...]


class SpendJournal:
    """An append-only file of spend waiting to be replayed into the ledger.

    Args:
        path: the journal file; created with the first record (most processes never see
            an outage, and leave no file behind).
        clock: monotonic seconds, for the periodic look for other processes' records.

    Raises:
        OSError: the file exists but cannot be opened, or could not be created (its
            directory is missing or not writable).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._clock = clock
        self._closed = False
        self._fd = self._open_existing()
        if self._fd is None:
            directory = os.path.dirname(self.path) or "."
            if not os.path.isdir(directory):
                raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
            if not os.access(directory, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "directory not writable", directory)
        self._pending = self._fd is not None and os.fstat(self._fd).st_size > 0
        self._next_check = clock() + _RECHECK_S

    def _open_existing(self) -> int | None:
        """The file's descriptor; None when it does not exist (yet)."""
        try:
            return os.open(self.path, _FLAGS)
        except FileNotFoundError:
            return None

    @property
    def pending(self) -> bool:
        """Whether records may wait (cheap: a file size check every few seconds)."""
        if self._pending:
            return True
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + _RECHECK_S
            with self._lock:
                if self._fd is None and not self._closed:
                    self._fd = self._open_existing()  # another process had an outage
                fd = self._fd
                self._pending = fd is not None and os.fstat(fd).st_size > 0
        return self._pending

    def append(
        self, entry_id: str, amounts: Sequence[tuple[Counter, int]], idempotency_key: str | None
    ) -> JournalEntry:
        """Write one call's spend, whole and synced, before returning.

        Raises:
            OSError: the record could not be written (none of it is left in the file).
        """
        entry = JournalEntry(
            entry_id=entry_id,
            idempotency_key=idempotency_key or f"journal:{entry_id}",
            amounts=tuple(amounts),
        )
        record = {
            "spend": {
                "id": entry.entry_id,
                "key": entry.idempotency_key,
                "amounts": [[_counter_fields(c), amount] for c, amount in entry.amounts],
            }
        }
        with self._lock:
            if self._closed:
                raise OSError(f"budget journal {self.path} is closed")
            fd = self._fd
            if fd is None:
                fd = os.open(self.path, _FLAGS | os.O_CREAT, 0o600)
                self._fd = fd
            # The lock keeps a replay in another process from emptying the file between
            # reading it and this line landing.
            with exclusive(fd):
                self._write_lines([record])
            self._pending = True
        return entry

    def replay(self, commit: Callable[[JournalEntry], None]) -> int:
        """Commit every waiting record, oldest first; empty the file once all are in.

        Args:
            commit: records one entry in the ledger; raising stops the replay and keeps
                that record and the later ones for the next try.

        Returns:
            How many records were committed.
        """
        replayed = 0
        if not self._lock.acquire(blocking=False):
            return 0  # another thread is replaying; this call need not wait for it
        try:
            fd = self._fd
            if fd is None and not self._closed:
                fd = self._fd = self._open_existing()
            if fd is None:
                return 0
            with exclusive(fd):
                entries = self._waiting(fd)
                try:
                    for entry in entries:
                        commit(entry)
                        self._write_lines([{"done": entry.entry_id}])
                        replayed += 1
                finally:
                    if replayed == len(entries):
                        os.ftruncate(fd, 0)
                        self._pending = False
        finally:
            self._lock.release()
        return replayed

    def close(self) -> None:
        """Close the file; idempotent. Waiting records stay for the next process."""
        with self._lock:
            fd, self._fd = self._fd, None
            self._closed = True
        if fd is not None:
            os.close(fd)

    def _waiting(self, fd: int) -> list[JournalEntry]:
        """The records without a ``done`` mark, in the order they were written."""
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        entries: dict[str, JournalEntry] = {}
        for line in data.split(b"\n"):
            try:
                record = json.loads(line)
                if "done" in record:
                    entries.pop(str(record["done"]), None)
                    continue
                spend = record["spend"]
                entry = JournalEntry(
                    entry_id=str(spend["id"]),
                    idempotency_key=str(spend["key"]),
                    amounts=tuple(
                        (Counter(**fields), int(amount)) for fields, amount in spend["amounts"]
                    ),
                )
            except (ValueError, KeyError, TypeError):
                if line.strip():
                    logger.warning("budget journal %s: skipped a damaged line", self.path)
                continue
            entries[entry.entry_id] = entry
        return list(entries.values())

    def _write_lines(self, records: Sequence[object]) -> None:
        payload = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        data = payload.encode("utf-8")
        fd = self._fd
        if fd is None:
            raise OSError(f"budget journal {self.path} is closed")
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"budget journal {self.path}: short write ({written} bytes)")
            os.fsync(fd)
        except BaseException:
            # A cut record must not be glued to the next one.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise


def default_journal_path(ledger_url: str) -> str | None:
    """Where a ledger's journal lives unless configured; None for a memory ledger.

    Beside an SQLite file (``budgets.db.journal``); for Redis, in kit-telemetry's cache
    directory, named after the URL so ledgers on different servers keep apart.
    """
    kind, target = parse_ledger_url(ledger_url)
    if kind == "sqlite":
        return f"{target}.journal"
    if kind == "redis":
        digest = hashlib.sha256(ledger_url.encode("utf-8")).hexdigest()[:16]
        return os.path.join(default_cache_dir(), f"budget-journal-{digest}.jsonl")
    return None


def _counter_fields(counter: Counter) -> dict[str, object]:
    return {
        "budget": counter.budget,
        "unit": counter.unit,
        "scope_key": counter.scope_key,
        "window_start": counter.window_start,
        "window_end": counter.window_end,
        "rolling_s": counter.rolling_s,
        "bucket_s": counter.bucket_s,
        "limit": counter.limit,
        "enforce": counter.enforce,
        "idle_ttl_s": counter.idle_ttl_s,
    }
