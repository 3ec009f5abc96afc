"""The session state store: an in-memory map mirrored to its sidecar file.

A :class:`SessionState` holds a last-write-wins map of string keys to JSON values in memory
(every read is a dictionary lookup) and mirrors it to a sidecar file (see
:mod:`kit_telemetry.state.sidecar`), either at once or from a background writer.

Bad keys and values follow the validation table (rows ``state.key`` and ``state.value``): a
strict error policy raises ``UsageError``; a lenient one drops the call, logs once and counts.
Writes never raise into the caller (unless ``strict=True``): a failed write is logged, passed
to ``on_error``, leaves the previous file intact, and is retried by the next write, flush or
close. A store whose changes still cannot be saved when it is given up (see
:meth:`SessionState.give_up`) moves its file aside, because that file is older than what the
session last set and a later load must not take it for the session's state.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from kit_telemetry._errors import ErrorPolicy
from kit_telemetry.errors import ConfigError
from kit_telemetry.json_values import copy_value
from kit_telemetry.validation.checks import check_state_key, check_state_value

from .sidecar import encode, load_sidecar, replace_file, set_aside_stale

__all__ = ["Durability", "SessionState", "StateNotSavedError"]

logger = logging.getLogger("kit_telemetry")

Durability = Literal["sync", "batched"]

_DURABILITIES = ("sync", "batched")
# Consecutive failed batched writes back off up to this many intervals.
_MAX_BACKOFF_FACTOR = 64


class StateNotSavedError(OSError):
    """Changes to a session's state were dropped: the file could not be written in time."""


class SessionState:
    """A thread-safe, last-write-wins key-value store for one session.

    Keys are non-empty strings. Values are what JSON can hold: ``str``, ``int``, ``float``
    (finite), ``bool``, ``None``, ``list`` and ``dict`` with string keys, nested up to 200
    levels. Tuples and sets are refused rather than silently turned into lists, so a value
    reads back exactly as it was set, in this process and after a reload. Subclasses of
    ``str``/``int``/``float`` (enums, for instance) are stored as the plain value. A bad key
    or value goes to ``errors`` (see :mod:`kit_telemetry.validation`): ``UsageError`` when
    strict; otherwise nothing is changed, and reads give their default.

    The store keeps its own deep copy of every value, and :meth:`get` returns a fresh copy of
    lists and dicts, so nothing outside can change the store behind its back.

    Durability:
        ``"sync"``: the file holds the change when :meth:`set` or :meth:`delete` returns.
        ``"batched"``: changes are coalesced and written by a background timer at most every
        ``batch_interval_ms``, and on :meth:`flush`, :meth:`close` and interpreter exit.

    After :meth:`close` the store still works; every later change is written at once.

    Args:
        path: the sidecar file (see :func:`sidecar_path`), or ``None`` for memory only.
            Its folder is created on the first write if it is missing. The file is created
            with mode 0600, since state may hold what a session would rather keep private.
        durability: ``"sync"`` or ``"batched"``.
        batch_interval_ms: the shortest time between two batched writes.
        on_error: called with the exception whenever the file cannot be read or written,
            and with the reason when a corrupt file was moved aside (the failure is logged
            as well); exceptions it raises are logged and dropped.
        strict: raise such failures into the caller of ``set``/``delete``/``flush``/
            ``close`` (and of the constructor, for a file that cannot be read) instead of
            only reporting them. Writes on the batched timer, and a corrupt file that was
            moved aside, are never raised.
        errors: the policy for a bad key or value (the ``Telemetry``'s, so they are logged
            once and counted with the rest); by default one that is strict when ``strict``.

    Raises:
        ConfigError: ``durability`` or ``batch_interval_ms`` is not allowed.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        durability: Durability = "sync",
        batch_interval_ms: int = 100,
        on_error: Callable[[BaseException], None] | None = None,
        strict: bool = False,
        errors: ErrorPolicy | None = None,
    ) -> None:
        if durability not in _DURABILITIES:
            raise ConfigError(
                f"session state: durability {durability!r} is not one of {', '.join(_DURABILITIES)}"
            )
        if (
            isinstance(batch_interval_ms, bool)
            or not isinstance(batch_interval_ms, int)
            or batch_interval_ms < 0
        ):
            raise ConfigError(
                f"session state: batch_interval_ms {batch_interval_ms!r} is not an integer >= 0"
            )
        self._path = Path(path).expanduser() if path is not None else None
        self._durability: Durability = durability
        self._interval_s = batch_interval_ms / 1000.0
        self._on_error = on_error
        self._strict = strict
        self._errors = errors if errors is not None else ErrorPolicy(strict=strict)

        # Two locks, because a write holds its lock for a whole fsync: `_lock` guards the
        # map and the bookkeeping and is only ever held for memory operations, so reads
        # never wait for the disk; `_write_lock` serialises file replacements.
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._data: dict[str, Any] = {}
        self._version = 0  # bumped by every change, under _lock
        self._written_version = 0  # the version the file holds, under _write_lock
        self._write_count = 0
        self._failures = 0  # consecutive failed writes, for the batched back-off
        self._last_error: BaseException | None = None
        self._timer: threading.Timer | None = None
        self._closed = False
        # False when the file must not be written: it is a folder, it could not be read,
        # or it is corrupt and could not be moved aside.
        self._persist = self._path is not None

        if self._path is not None:
            loaded = load_sidecar(self._path, self._report_load, self._report_corrupt)
            if loaded is None:
                self._persist = False
            else:
                self._data = loaded
        _LIVE_STORES.add(self)

    # -- reading -------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The sidecar file, or ``None`` for a memory-only store."""
        return self._path

    @property
    def durability(self) -> Durability:
        """``"sync"`` or ``"batched"``."""
        return self._durability

    @property
    def persistent(self) -> bool:
        """Whether changes go to the file (False when memory only or the file is unusable)."""
        return self._persist

    @property
    def saved(self) -> bool:
        """Whether the file holds every change (always True for a memory-only store).

        False while a change waits for its batched write, or after a failed write until a
        later write, :meth:`flush` or :meth:`close` succeeds.
        """
        if not self._persist:
            return self._path is None
        with self._write_lock, self._lock:
            return self._written_version >= self._version

    @property
    def write_count(self) -> int:
        """How many snapshots have been written to the file by this store."""
        return self._write_count

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (a copy, for lists and dicts), or ``default`` when unset.

        Raises:
            UsageError: strict errors, and ``key`` is not a non-empty string (lenient: the
                default is returned).
        """
        checked = check_state_key(self._errors, "state.key", key)
        if checked is None:
            return default
        with self._lock:
            value = self._data.get(checked, _MISSING)
        if value is _MISSING:
            return default
        # Stored values are never mutated in place, so copying outside the lock is safe.
        return copy_value(value)

    def items(self) -> dict[str, Any]:
        """A deep copy of the whole map."""
        with self._lock:
            snapshot = dict(self._data)
        return {key: copy_value(value) for key, value in snapshot.items()}

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __repr__(self) -> str:
        return (
            f"SessionState(path={self._path!r}, durability={self._durability!r}, keys={len(self)})"
        )

    # -- changing ------------------------------------------------------------------------

    def set(self, key: str, value: object) -> None:
        """Set ``key`` to a copy of ``value``.

        Raises:
            UsageError: strict errors, and ``key`` is not a non-empty string or ``value`` is
                not something JSON can hold (nothing is changed then; lenient: the write is
                dropped).
            OSError: only with ``strict=True``, when the synchronous write fails (the value
                stays set in memory).
        """
        checked = check_state_key(self._errors, "state.key", key)
        if checked is None:
            return
        good, stored = check_state_value(self._errors, "state.value", value)
        if not good:
            return
        with self._lock:
            self._data[checked] = stored
            self._version += 1
            version = self._version
        self._changed(version)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was set.

        Raises:
            UsageError: strict errors, and ``key`` is not a non-empty string (lenient:
                nothing is deleted).
            OSError: only with ``strict=True``, when the synchronous write fails.
        """
        checked = check_state_key(self._errors, "state.key", key)
        if checked is None:
            return False
        with self._lock:
            if checked not in self._data:
                return False
            del self._data[checked]
            self._version += 1
            version = self._version
        self._changed(version)
        return True

    def flush(self) -> bool:
        """Write any change the file does not hold yet; True if the file is now current.

        A memory-only store is always current. Returns False when the write failed or the
        file is unusable (the failure has been reported).

        Raises:
            OSError: only with ``strict=True``, when the write fails.
        """
        with self._lock:
            version = self._version
        if not self._persist:
            return self._path is None
        return self._write_through(version, raise_strict=True)

    def close(self) -> None:
        """Stop the batch timer and write what is pending; idempotent.

        Raises:
            OSError: only with ``strict=True``, when the final write fails.
        """
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()

    def give_up(self) -> bool:
        """Stop trying to save: report unsaved changes and move the stale file aside.

        Called when the store's owner lets go of it for good (at shutdown, or at interpreter
        exit) after the last :meth:`flush` failed. The file then holds an older state than
        the one last set (a counter that reached 5 would read back as 2), so it is renamed
        to ``<name>.stale-<time>-<random>`` (kept, never deleted): the next store for this
        session starts empty and says nothing false. The drop is logged and reported to
        ``on_error`` as a :class:`StateNotSavedError` (never raised). If even the rename
        fails, that is reported too. The store keeps working, in memory only.

        Returns:
            True if changes were dropped.
        """
        if self.saved or self._path is None or not self._persist:
            return False
        with self._lock:
            timer, self._timer = self._timer, None
            self._closed = True
            self._persist = False  # memory only from now on: given up once, reported once
        if timer is not None:
            timer.cancel()
        aside = set_aside_stale(self._path)
        where = f"moved the stale file aside to {aside}" if aside else "no stale file left behind"
        error = StateNotSavedError(
            f"session state {self._path}: changes could not be saved ({self._last_error}); "
            f"{where}, so it is not loaded as the session's state"
        )
        self._report(error, "dropped unsaved session state of %s", self._path, False)
        return True

    def __enter__(self) -> SessionState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- persistence ---------------------------------------------------------------------

    def _changed(self, version: int) -> None:
        if not self._persist:
            return
        if self._durability == "sync" or self._closed:
            self._write_through(version, raise_strict=True)
            return
        with self._lock:
            self._schedule_locked()

    def _schedule_locked(self) -> None:
        """Start the batch timer unless one is pending; call with ``_lock`` held."""
        if self._timer is not None or self._closed:
            return
        factor = min(2**self._failures, _MAX_BACKOFF_FACTOR) if self._failures else 1
        timer = threading.Timer(self._interval_s * factor, self._on_timer)
        timer.daemon = True  # interpreter exit is covered by the atexit flush
        timer.name = "kit-telemetry-state-writer"
        self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            version = self._version
        try:
            self._write_through(version, raise_strict=False)
        finally:
            # The timer is released only after its write, so changes made meanwhile wait a
            # full interval instead of starting a second write straight away.
            with self._lock:
                self._timer = None
                if self._version > self._written_version:
                    self._schedule_locked()

    def _write_through(self, version: int, *, raise_strict: bool) -> bool:
        """Make the file hold ``version`` or newer; True on success."""
        assert self._path is not None
        error: BaseException | None = None
        with self._write_lock:
            if self._written_version >= version:
                return True
            # Whatever is newest is written, so writers waiting behind a slow fsync are
            # served by one write, and an older snapshot can never follow a newer one.
            with self._lock:
                snapshot = dict(self._data)
                snapshot_version = self._version
            try:
                replace_file(self._path, encode(snapshot))
            except Exception as exc:
                error = self._last_error = exc
                self._failures += 1
            else:
                self._written_version = snapshot_version
                self._write_count += 1
                self._failures = 0
        if error is None:
            return True
        self._report(error, "could not write session state to %s", self._path, raise_strict)
        return False

    def _report(
        self,
        exc: BaseException,
        message: str,
        path: Path,
        raise_strict: bool,
        *,
        level: int = logging.ERROR,
    ) -> None:
        logger.log(level, message, path, exc_info=exc if level >= logging.ERROR else None)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                logger.exception("session state on_error callback failed")
        if raise_strict and self._strict:
            raise exc

    def _report_load(self, exc: BaseException, message: str, path: Path) -> None:
        self._report(exc, message, path, True)

    def _report_corrupt(self, exc: BaseException, message: str, path: Path) -> None:
        # Counted like any failure, but never raised: the file is safe aside and the store
        # works, so even a strict store has nothing to refuse.
        self._report(exc, message, path, False, level=logging.WARNING)


_MISSING: Any = object()

# Every store, held weakly so that a store nobody uses can be garbage collected; a store
# with a pending batched write is held by its timer until the write is done.
_LIVE_STORES: weakref.WeakSet[SessionState] = weakref.WeakSet()


@atexit.register
def _close_all_stores() -> None:
    for store in list(_LIVE_STORES):
        try:
            store.close()
            store.give_up()
        except Exception:
            logger.exception("could not flush session state %s at exit", store.path)
