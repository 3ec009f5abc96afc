"""``kit-telemetry state``: read and edit a session's persisted state from the shell.

::

    kit-telemetry state SESSION_FILE [list | get KEY | set KEY JSON | delete KEY]

SESSION_FILE is a session file (its ``.ext-state.json`` sidecar is used) or the sidecar
itself. ``list`` (the default) and ``get`` print JSON; ``set`` takes its value as JSON.
Exit codes: 0 done, 1 the key is not set or the file cannot be used, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from kit_telemetry.state import STATE_SUFFIX, SessionState, sidecar_path


class _StateFileError(Exception):
    """The sidecar exists but cannot be used; the message says why."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``state`` command to the ``kit-telemetry`` parser."""
    parser = subparsers.add_parser(
        "state",
        help="list, get, set or delete a session's persisted state",
        description=(
            "Read or edit the key-value state that extensions keep for a session, in the "
            f"{STATE_SUFFIX} file beside the session file. A session that is still running "
            "keeps its own copy in memory and overwrites edits made here on its next write."
        ),
    )
    parser.add_argument(
        "session_file",
        metavar="SESSION_FILE",
        help=f"the session file, or its {STATE_SUFFIX} sidecar",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="print the whole state as a JSON object (the default)")
    get = actions.add_parser("get", help="print one value as JSON")
    get.add_argument("key", metavar="KEY")
    set_ = actions.add_parser("set", help="set KEY to a JSON value")
    set_.add_argument("key", metavar="KEY")
    set_.add_argument(
        "value", metavar="JSON", help='the value as JSON: 3, true, "text" (quoted), [1, 2], {...}'
    )
    delete = actions.add_parser("delete", help="remove KEY")
    delete.add_argument("key", metavar="KEY")
    parser.set_defaults(handler=run, action=None)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Carry out one ``state`` action; returns the exit code."""
    action: str = args.action or "list"
    given = Path(args.session_file).expanduser()
    path = _sidecar_for(given)

    key: str | None = getattr(args, "key", None)
    if key == "":
        err.write("kit-telemetry state: KEY must not be empty\n")
        return 2
    value: Any = None
    if action == "set":
        try:
            value = json.loads(args.value, parse_constant=_reject_constant)
        except ValueError as exc:
            err.write(
                f"kit-telemetry state: the value for {key!r} is not valid JSON ({exc}); "
                "strings need quotes, e.g. '\"text\"'\n"
            )
            return 2
    session_exists = given != path and given.exists()
    new_sidecar = given == path and action == "set" and path.parent.is_dir()
    if not (path.exists() or session_exists or new_sidecar):
        # Neither a session nor its state: most likely a typo, which must not print "{}".
        err.write(f"kit-telemetry state: no session file or state file at {given}\n")
        return 1
    try:
        current = _read(path)
    except _StateFileError as exc:
        err.write(f"kit-telemetry state: {exc}\n")
        return 1

    if action == "list":
        out.write(_dump(current) + "\n")
        return 0
    if action == "get":
        if args.key not in current:
            err.write(f"kit-telemetry state: {args.key!r} is not set in {path}\n")
            return 1
        out.write(_dump(current[args.key]) + "\n")
        return 0
    return _change(path, action, args, value, err)


def _change(path: Path, action: str, args: argparse.Namespace, value: Any, err: TextIO) -> int:
    try:
        store = SessionState(path, durability="sync", strict=True)
        try:
            if action == "set":
                store.set(args.key, value)
                return 0
            if not store.delete(args.key):
                err.write(f"kit-telemetry state: {args.key!r} is not set in {path}\n")
                return 1
            return 0
        finally:
            store.close()
    except (TypeError, ValueError) as exc:
        err.write(f"kit-telemetry state: {exc}\n")
        return 2
    except OSError as exc:
        err.write(f"kit-telemetry state: could not update {path}: {exc}\n")
        return 1


def _sidecar_for(given: Path) -> Path:
    if given.name.endswith(STATE_SUFFIX):
        return given
    path = sidecar_path(session_file=given, session_id="", state_dir=None)
    assert path is not None  # always set when a session file is given
    return path


def _read(path: Path) -> dict[str, Any]:
    """The state in ``path``, read without side effects (a corrupt file is left in place)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _StateFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _StateFileError(f"{path} is corrupt: {exc}") from exc
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
            type(data), "number"
        )
        raise _StateFileError(f"{path} is corrupt: it holds a JSON {kind}, not an object")
    return data


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
