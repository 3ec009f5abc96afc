"""The per-session key-value store and its sidecar file.

A :class:`SessionState` holds a last-write-wins map of string keys to JSON values in memory
(every read is a dictionary lookup) and mirrors it to a sidecar file beside the session
file (see :func:`sidecar_path`). Each write replaces the whole file atomically: the map goes
to a temporary file in the same folder, which is flushed and fsynced and then renamed over
the old file, and the folder is fsynced so the rename itself is durable. A reader, or a
process that crashes mid-write, therefore only ever sees a complete snapshot.

Writes never raise into the caller (unless ``strict=True``): a failed write is logged, passed
to ``on_error``, leaves the previous file intact, and is retried by the next write.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from kit_telemetry.errors import ConfigError

__all__ = [
    "STATE_SUFFIX",
    "Durability",
    "SessionState",
    "sidecar_path",
]

logger = logging.getLogger("kit_telemetry")

STATE_SUFFIX = ".ext-state.json"
"""How every sidecar file name ends."""

Durability = Literal["sync", "batched"]

_DURABILITIES = ("sync", "batched")
# Deep enough for any realistic state, shallow enough that encoding and loading never come
# near the interpreter's recursion limit (which would make a stored value unwritable).
_MAX_DEPTH = 200
# Python refuses to turn ints of more than ~4300 digits into text; above this many bits we
# check, so that such a value is refused at set() instead of poisoning every later write.
_BIG_INT_BITS = 14_000
# A session id longer than this is shortened (with a hash) so that the sidecar, its
# temporary files and its ".corrupt-..." name all stay under the usual 255-byte limit.
_MAX_STEM_CHARS = 150
# Temporary files older than this are leftovers of a crash; younger ones may belong to
# another process writing the same sidecar right now.
_STALE_TEMP_S = 60.0
# Consecutive failed batched writes back off up to this many intervals.
_MAX_BACKOFF_FACTOR = 64


def sidecar_path(
    *,
    session_file: str | os.PathLike[str] | None,
    session_id: str,
    state_dir: str | os.PathLike[str] | None,
) -> Path | None:
    """Where a session's state lives on disk, or ``None`` for a memory-only store.

    Args:
        session_file: the session's file. Its sidecar is the same path with ``.jsonl``
            replaced by ``.ext-state.json`` (or with ``.ext-state.json`` appended when the
            name does not end in ``.jsonl``).
        session_id: used only when there is no session file: the sidecar is then
            ``<state_dir>/<session_id>.ext-state.json``. Characters other than letters,
            digits and ``-_.~`` are percent-encoded (so ``a/b`` cannot escape the folder),
            and very long ids are shortened with a hash suffix.
        state_dir: the folder for sessions without a file; ``None`` means memory only.

    Returns:
        The sidecar path (``~`` expanded), or ``None`` when the state is not persisted.

    Raises:
        ValueError: ``session_id`` is empty while it is needed to name the file.
    """
    if session_file is not None:
        path = Path(session_file).expanduser()
        name = path.name
        stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
        return path.with_name(stem + STATE_SUFFIX)
    if state_dir is None:
        return None
    return Path(state_dir).expanduser() / (_safe_stem(session_id) + STATE_SUFFIX)


def _safe_stem(session_id: str) -> str:
    """A file-name-safe, collision-free spelling of a session id."""
    if not isinstance(session_id, str) or not session_id:
        raise ValueError(
            f"session id must be a non-empty string to name a state file, got {session_id!r}"
        )
    # Percent-encoding is reversible, so two different ids never share a file.
    stem = urllib.parse.quote(session_id, safe="")
    if len(stem) > _MAX_STEM_CHARS:
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        stem = f"{stem[:100]}-{digest}"
    return stem


class SessionState:
    """A thread-safe, last-write-wins key-value store for one session.

    Keys are non-empty strings. Values are what JSON can hold: ``str``, ``int``, ``float``
    (finite), ``bool``, ``None``, ``list`` and ``dict`` with string keys, nested up to 200
    levels. Tuples and sets are refused rather than silently turned into lists, so a value
    reads back exactly as it was set, in this process and after a reload. Subclasses of
    ``str``/``int``/``float`` (enums, for instance) are stored as the plain value.

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
        on_error: called with the exception whenever the file cannot be read or written
            (the failure is logged as well); exceptions it raises are logged and dropped.
        strict: raise such failures into the caller of ``set``/``delete``/``flush``/
            ``close`` (and of the constructor, for a file that cannot be read) instead of
            only reporting them. Writes on the batched timer are never raised.

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
        self._timer: threading.Timer | None = None
        self._closed = False
        # False when the file must not be written: it is a folder, it could not be read,
        # or it is corrupt and could not be moved aside.
        self._persist = self._path is not None

        if self._path is not None:
            self._load(self._path)
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
    def write_count(self) -> int:
        """How many snapshots have been written to the file by this store."""
        return self._write_count

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (a copy, for lists and dicts), or ``default`` when unset.

        Raises:
            TypeError: ``key`` is not a string.
            ValueError: ``key`` is empty.
        """
        _check_key(key)
        with self._lock:
            value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        # Stored values are never mutated in place, so copying outside the lock is safe.
        return _copy(value)

    def items(self) -> dict[str, Any]:
        """A deep copy of the whole map."""
        with self._lock:
            snapshot = dict(self._data)
        return {key: _copy(value) for key, value in snapshot.items()}

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
            TypeError: ``key`` is not a string, or ``value`` is not something JSON can hold
                (nothing is changed then).
            ValueError: ``key`` is empty, or an int is too large to write.
            OSError: only with ``strict=True``, when the synchronous write fails (the value
                stays set in memory).
        """
        key = _plain_key(key)
        stored = _json_copy(value)
        with self._lock:
            self._data[key] = stored
            self._version += 1
            version = self._version
        self._changed(version)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was set.

        Raises:
            TypeError: ``key`` is not a string.
            ValueError: ``key`` is empty.
            OSError: only with ``strict=True``, when the synchronous write fails.
        """
        _check_key(key)
        with self._lock:
            if key not in self._data:
                return False
            del self._data[key]
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
                _replace_file(self._path, _encode(snapshot))
            except Exception as exc:
                error = exc
                self._failures += 1
            else:
                self._written_version = snapshot_version
                self._write_count += 1
                self._failures = 0
        if error is None:
            return True
        self._report(error, "could not write session state to %s", self._path, raise_strict)
        return False

    def _report(self, exc: BaseException, message: str, path: Path, raise_strict: bool) -> None:
        logger.error(message, path, exc_info=exc)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                logger.exception("session state on_error callback failed")
        if raise_strict and self._strict:
            raise exc

    def _load(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            # Nothing there to lose; if the folder is unusable, the writes will say so.
            self._remove_stale_temps(path)
            return
        except IsADirectoryError as exc:
            self._persist = False
            self._report(
                exc,
                "session state path %s is a directory; keeping state in memory only",
                path,
                True,
            )
            return
        except OSError as exc:
            # Writing over a file that could not be read would destroy it.
            self._persist = False
            self._report(
                exc, "could not read session state %s; keeping state in memory only", path, True
            )
            return
        self._remove_stale_temps(path)
        if not raw.strip():
            return
        try:
            data = json.loads(raw, parse_constant=_reject_constant)
            if not isinstance(data, dict):
                raise ValueError(f"the top level is a JSON {_json_kind(data)}, not an object")
            # Held to the same rules as set(), so that nothing loaded can make writes fail.
            data = {_checked_str(key): _walk(value, 0, set()) for key, value in data.items()}
        except _InvalidValue as exc:
            self._set_aside(path, ValueError(f"it holds a value the store refuses: {exc.message}"))
            return
        except (ValueError, RecursionError) as exc:
            self._set_aside(path, exc)
            return
        self._data = data

    def _set_aside(self, path: Path, reason: BaseException) -> None:
        """Move a corrupt file out of the way, never deleting or overwriting it."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{secrets.token_hex(4)}")
        try:
            os.rename(path, aside)
        except OSError as exc:
            self._persist = False
            logger.warning(
                "session state %s is corrupt (%s) and could not be moved aside to %s; "
                "starting empty and keeping state in memory only",
                path,
                reason,
                aside,
            )
            self._report(exc, "could not move corrupt session state %s aside", path, True)
            return
        logger.warning(
            "session state %s is corrupt (%s); moved it aside to %s and starting empty",
            path,
            reason,
            aside,
        )

    @staticmethod
    def _remove_stale_temps(path: Path) -> None:
        """Delete temporary files a crashed writer left behind."""
        now = time.time()
        try:
            leftovers = list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))
        except OSError:
            return
        for leftover in leftovers:
            try:
                if now - leftover.stat().st_mtime > _STALE_TEMP_S:
                    leftover.unlink()
            except OSError as exc:
                logger.debug("could not remove stale temporary file %s: %s", leftover, exc)


# -- module helpers --------------------------------------------------------------------------

_MISSING: Any = object()

# Every store, held weakly so that a store nobody uses can be garbage collected; a store
# with a pending batched write is held by its timer until the write is done.
_LIVE_STORES: weakref.WeakSet[SessionState] = weakref.WeakSet()


@atexit.register
def _close_all_stores() -> None:
    for store in list(_LIVE_STORES):
        try:
            store.close()
        except Exception:
            logger.exception("could not flush session state %s at exit", store.path)


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"state key must be a str, got {type(key).__name__}: {key!r}")
    if not key:
        raise ValueError("state key must be a non-empty string")


def _plain_key(key: object) -> str:
    """``key`` checked and as a plain ``str``, fit to be written as a JSON object key."""
    _check_key(key)
    assert isinstance(key, str)
    try:
        return _checked_str(str.__str__(key))
    except _InvalidValue as exc:
        raise ValueError(f"state key {key!r}: {exc.message}") from None


def _copy(value: Any) -> Any:
    """A deep copy of an already-validated JSON value (scalars are immutable)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


class _InvalidValue(Exception):
    """Unwinds the walk in :func:`_json_copy`, collecting where the bad part sits."""

    def __init__(self, error: type[Exception], message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.where: list[str] = []


def _json_copy(value: object) -> Any:
    """Validate ``value`` as JSON data and return a private deep copy with plain types.

    Raises:
        TypeError: something in ``value`` is not a JSON value.
        ValueError: an int has too many digits to be written.
    """
    try:
        return _walk(value, 0, set())
    except _InvalidValue as exc:
        where = "".join(reversed(exc.where))
        at = f" at {where}" if where else ""
        raise exc.error(f"state value{at}: {exc.message}") from None


def _walk(value: object, depth: int, active: set[int]) -> Any:
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is str:
        return _checked_str(value)  # type: ignore[arg-type]
    if kind is int:
        return _checked_int(value)  # type: ignore[arg-type]
    if kind is float:
        return _checked_float(value)  # type: ignore[arg-type]
    if kind is list or kind is dict:
        if depth >= _MAX_DEPTH:
            raise _InvalidValue(TypeError, f"nested more than {_MAX_DEPTH} levels deep")
        marker = id(value)
        if marker in active:
            raise _InvalidValue(TypeError, "contains itself (a circular reference)")
        active.add(marker)
        try:
            if kind is list:
                return _walk_list(value, depth, active)  # type: ignore[arg-type]
            return _walk_dict(value, depth, active)  # type: ignore[arg-type]
        finally:
            active.discard(marker)
    # Subclasses of the JSON scalars (enums, for instance) are kept as the plain value,
    # which is what JSON would write and what a reload would give back.
    if isinstance(value, str):
        return _checked_str(str.__str__(value))
    if isinstance(value, int):
        return _checked_int(int.__int__(value))
    if isinstance(value, float):
        return _checked_float(float.__float__(value))
    hint = "; use a list" if isinstance(value, (tuple, set, frozenset)) else ""
    raise _InvalidValue(
        TypeError,
        f"{kind.__name__} is not a JSON value (allowed: str, int, float, bool, None, "
        f"list, dict with str keys){hint}",
    )


def _walk_list(value: list[object], depth: int, active: set[int]) -> list[Any]:
    copied: list[Any] = []
    for index, item in enumerate(value):
        try:
            copied.append(_walk(item, depth + 1, active))
        except _InvalidValue as exc:
            exc.where.append(f"[{index}]")
            raise
    return copied


def _walk_dict(value: dict[object, object], depth: int, active: set[int]) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    for raw_key, item in value.items():
        if type(raw_key) is str:
            key = _checked_str(raw_key)
        elif isinstance(raw_key, str):
            key = _checked_str(str.__str__(raw_key))
        else:
            raise _InvalidValue(
                TypeError,
                f"dict key {raw_key!r} is a {type(raw_key).__name__}; JSON object keys are strings",
            )
        try:
            copied[key] = _walk(item, depth + 1, active)
        except _InvalidValue as exc:
            exc.where.append(f"[{key!r}]")
            raise
    return copied


def _checked_str(value: str) -> str:
    # Surrogates are not text: JSON can only spell them as escapes, and a pair of them
    # would read back as one different character, so such strings cannot round-trip.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _InvalidValue(
                ValueError, "string holds surrogate code points, which are not valid Unicode"
            ) from None
    return value


def _checked_int(value: int) -> int:
    if value.bit_length() > _BIG_INT_BITS:
        try:
            int.__repr__(value)
        except ValueError as exc:
            raise _InvalidValue(ValueError, f"int is too large to write as JSON ({exc})") from None
    return value


def _checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise _InvalidValue(
            TypeError, f"float {value!r} is not a JSON value (JSON has no NaN or infinity)"
        )
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _encode(snapshot: dict[str, Any]) -> bytes:
    # Every string was checked to be valid Unicode at set(), so UTF-8 cannot fail here.
    text = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _replace_file(path: Path, payload: bytes) -> None:
    """Atomically replace ``path`` with ``payload``: temp file, fsync, rename, fsync folder."""
    folder = path.parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows, or a folder we may write but not open: the rename still happened
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot fsync a folder; the data itself is already safe.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
