"""The sidecar file: where a session's state lives on disk, and how it is read and replaced.

The file holds one JSON object, the whole map. It is never rewritten in place: each write
goes to a temporary file in the same folder, which is flushed and fsynced and then renamed
over the old file, and the folder is fsynced so the rename itself is durable. A reader, or
a process that crashes mid-write, therefore only ever sees a complete snapshot. A file that
cannot be parsed is moved aside (never deleted or overwritten) and the store starts empty.

Every name derived here fits the usual file-name limit (NAME_MAX, 255 bytes): a session
file whose name is too long for a sidecar beside it gets a sidecar named by a prefix of its
name and a hash of all of it, the same on every run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..json_values import InvalidValue, checked_str, walk

__all__ = [
    "STATE_SUFFIX",
    "ReportError",
    "encode",
    "load_sidecar",
    "replace_file",
    "set_aside_stale",
    "sidecar_path",
]

logger = logging.getLogger("kit_telemetry")

STATE_SUFFIX = ".ext-state.json"
"""How every sidecar file name ends."""

ReportError = Callable[[BaseException, str, Path], None]
"""Reports a failure: called with the exception, a log message with one ``%s`` for the
path, and the path. It may raise the exception (a strict store does)."""

# A session id longer than this is shortened (with a hash) so that the sidecar, its
# temporary files and its ".corrupt-..." name all stay under the usual 255-byte limit.
_MAX_STEM_CHARS = 150
# NAME_MAX of ext4, XFS, btrfs, tmpfs, APFS and NTFS (in their own units); a folder's real
# limit cannot be asked before the folder exists, and fitting the common one is enough.
_NAME_MAX_BYTES = 255
# mkstemp names a sidecar's temporary file "." + name + "." + 8 random characters + ".tmp".
_MAX_SIDECAR_NAME_BYTES = _NAME_MAX_BYTES - len("..12345678.tmp")
# What _aside_name appends at most: ".corrupt-" + a UTC time stamp + "-" + 8 hex digits.
_ASIDE_SUFFIX_BYTES = len(".corrupt-20260101T000000-12345678")
# Temporary files older than this are leftovers of a crash; younger ones may belong to
# another process writing the same sidecar right now.
_STALE_TEMP_S = 60.0


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
            digits and ``-_.~`` are percent-encoded (so ``a/b`` cannot escape the folder,
            and a NUL or a lone surrogate still names a file), and very long ids are
            shortened with a hash suffix.
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
        return path.with_name(_fitting_name(stem))
    if state_dir is None:
        return None
    return Path(state_dir).expanduser() / (_safe_stem(session_id) + STATE_SUFFIX)


def _safe_stem(session_id: str) -> str:
    """A file-name-safe, collision-free spelling of a session id."""
    if not isinstance(session_id, str) or not session_id:
        raise ValueError(
            f"session id must be a non-empty string to name a state file, got {session_id!r}"
        )
    # Percent-encoding is reversible, so two different ids never share a file; a lone
    # surrogate is encoded as the three bytes it would be, so it names a file too.
    stem = urllib.parse.quote(session_id, safe="", errors="surrogatepass")
    if len(stem) > _MAX_STEM_CHARS:
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        stem = f"{stem[:100]}-{digest}"
    return stem


def _fitting_name(stem: str) -> str:
    """``stem + STATE_SUFFIX``, or when that is too long a shorter name unique to ``stem``.

    Names that fit are left as they are, so existing sidecars keep their names.
    """
    name = stem + STATE_SUFFIX
    if _name_bytes(name) <= _MAX_SIDECAR_NAME_BYTES:
        return name
    # The hash covers the whole stem, so two long names sharing a prefix get two files.
    digest = hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    tail = f"-{digest}{STATE_SUFFIX}"
    return _trim_to_bytes(stem, _MAX_SIDECAR_NAME_BYTES - len(tail)) + tail


def _name_bytes(name: str) -> int:
    """How many bytes ``name`` takes in the file system."""
    try:
        return len(os.fsencode(name))
    except UnicodeEncodeError:
        return len(name.encode("utf-8", "surrogatepass"))


def _trim_to_bytes(name: str, limit: int) -> str:
    """The longest prefix of ``name`` that fits ``limit`` bytes, never splitting a character."""
    size = 0
    for index, char in enumerate(name):
        size += _name_bytes(char)
        if size > limit:
            return name[:index]
    return name


# -- reading -----------------------------------------------------------------------------


def load_sidecar(
    path: Path, report: ReportError, report_corrupt: ReportError
) -> dict[str, Any] | None:
    """The map a sidecar file holds, read at a store's start.

    A missing or empty file is an empty map. A corrupt file (not JSON, not an object, or
    holding a value the store refuses) is moved aside to ``<name>.corrupt-<time>-<random>``
    and is an empty map too. Temporary files a crashed writer left behind are removed.

    Args:
        path: the sidecar file.
        report: called for a file that cannot be read, or a corrupt file that cannot be
            moved aside.
        report_corrupt: called for a corrupt file that was moved aside (the state it held
            is lost to the session, though its bytes are kept), with the reason it could
            not be read; it should warn and count, not raise.

    Returns:
        The map, or ``None`` when the file must not be written (it is a folder, it could
        not be read, or it is corrupt and could not be moved aside).
    """
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        # Nothing there to lose; if the folder is unusable, the writes will say so.
        _remove_stale_temps(path)
        return {}
    except IsADirectoryError as exc:
        report(exc, "session state path %s is a directory; keeping state in memory only", path)
        return None
    except OSError as exc:
        # Writing over a file that could not be read would destroy it.
        report(exc, "could not read session state %s; keeping state in memory only", path)
        return None
    _remove_stale_temps(path)
    if not raw.strip():
        return {}
    try:
        return _decode(raw)
    except InvalidValue as exc:
        reason: BaseException = ValueError(f"it holds a value the store refuses: {exc.message}")
    except (ValueError, RecursionError) as exc:
        reason = exc
    return {} if _set_aside(path, reason, report, report_corrupt) else None


def _decode(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw, parse_constant=_reject_constant)
    if not isinstance(data, dict):
        raise ValueError(f"the top level is a JSON {_json_kind(data)}, not an object")
    # Held to the same rules as set(), so that nothing loaded can make writes fail.
    return {checked_str(key): walk(value, 0, set()) for key, value in data.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _set_aside(
    path: Path, reason: BaseException, report: ReportError, report_corrupt: ReportError
) -> bool:
    """Move a corrupt file out of the way, never deleting or overwriting it; True if moved."""
    aside = _aside_name(path, "corrupt")
    try:
        os.rename(path, aside)
    except OSError as exc:
        logger.warning(
            "session state %s is corrupt (%s) and could not be moved aside to %s; "
            "starting empty and keeping state in memory only",
            path,
            reason,
            aside,
        )
        report(exc, "could not move corrupt session state %s aside", path)
        return False
    # The message keeps one %s, for the path; the other parts are already in it.
    detail = f"({reason}); moved it aside to {aside} and starting empty".replace("%", "%%")
    report_corrupt(reason, "session state %s is corrupt " + detail, path)
    return True


def set_aside_stale(path: Path) -> Path | None:
    """Move a sidecar that is older than its session's state out of the way.

    Renaming needs no free space, so it works on the full disk that made the state
    unsavable. The file is kept as ``<name>.stale-<time>-<random>``.

    Returns:
        Where the file went, or None when there was no file or it could not be moved
        (logged).
    """
    aside = _aside_name(path, "stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("could not move stale session state %s aside: %s", path, exc)
        return None
    return aside


def _aside_name(path: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    kept = _trim_to_bytes(path.name, _NAME_MAX_BYTES - _ASIDE_SUFFIX_BYTES)
    return path.with_name(f"{kept}.{kind}-{stamp}-{os.urandom(4).hex()}")


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


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


# -- writing -----------------------------------------------------------------------------


def encode(snapshot: dict[str, Any]) -> bytes:
    """The file's bytes for ``snapshot``, a map of checked values."""
    # Every string was checked to be valid Unicode at set(), so UTF-8 cannot fail here.
    text = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


def replace_file(path: Path, payload: bytes) -> None:
    """Atomically replace ``path`` with ``payload``: temp file, fsync, rename, fsync folder.

    The folder is created if it is missing.

    Raises:
        OSError: the file could not be written; the old one is left as it was.
    """
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
