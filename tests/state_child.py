"""A child process for tests/test_state.py: real processes that crash, exit or lose rights.

Usage: ``python state_child.py MODE PATH``, where MODE is

- ``stream``: resume the op stream below from the sidecar at PATH and run it for ever in
  sync mode, printing each op's index once ``set`` has returned (the parent kills it);
- ``fsize``: hit RLIMIT_FSIZE on a write (a full disk, even for root) and recover;
- ``readonly``: write into a folder it may not write to;
- ``unreadable``: load a sidecar it may not read;
- ``atexit``: set values in batched mode and exit without flushing.

The last four print one JSON object of findings. ``readonly`` and ``unreadable`` drop to
the ``nobody`` user when run as root, since root ignores file modes.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from kit_telemetry.state import SessionState

NOBODY = 65534


def payload(n: int) -> dict[str, Any]:
    """The value of "payload" at step ``n``: its size varies so a torn write would show."""
    return {"n": n, "text": "x" * ((n * 7919) % 20000), "items": list(range(n % 50))}


def state_after(op: int) -> dict[str, Any]:
    """The whole map after ops 0..op: even ops set "n", odd ops set "payload"."""
    if op < 0:
        return {}
    n = op // 2
    state: dict[str, Any] = {"n": n}
    last_payload = n if op % 2 == 1 else n - 1
    if last_payload >= 0:
        state["payload"] = payload(last_payload)
    return state


def last_op(state: dict[str, Any]) -> int:
    """The op index whose state ``state`` is (it must be a valid one; see state_after)."""
    if not state:
        return -1
    n: int = state["n"]
    op = 2 * n + 1 if state.get("payload", {}).get("n") == n else 2 * n
    if state_after(op) != state:
        raise ValueError(f"not a state of the stream: {json.dumps(state)[:200]}")
    return op


def stream(path: Path) -> None:
    store = SessionState(path, durability="sync", strict=True)
    op = last_op(store.items()) + 1
    print(f"ready {op}", flush=True)
    while True:
        n = op // 2
        if op % 2 == 0:
            store.set("n", n)
        else:
            store.set("payload", payload(n))
        print(op, flush=True)
        op += 1


def fsize(path: Path) -> dict[str, Any]:
    errors: list[str] = []
    store = SessionState(path, on_error=lambda exc: errors.append(type(exc).__name__))
    store.set("small", 1)
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Without this the kernel kills the process with SIGXFSZ instead of failing the write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    raised = None
    try:
        store.set("big", "x" * 20_000)
    except Exception as exc:
        raised = repr(exc)
    after_failure = path.read_bytes()
    files_after_failure = sorted(os.listdir(path.parent))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    flushed = store.flush()
    return {
        "errors": errors,
        "raised": raised,
        "big_in_memory": len(store.get("big", "")),
        "file_intact": after_failure == before,
        "files_after_failure": files_after_failure,
        "flushed": flushed,
        "final": json.loads(path.read_bytes()),
    }


def drop_privileges() -> bool:
    if os.geteuid() != 0:
        return False
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return True


def readonly(path: Path) -> dict[str, Any]:
    dropped = drop_privileges()
    errors: list[str] = []
    store = SessionState(path, on_error=lambda exc: errors.append(type(exc).__name__))
    loaded = store.items()
    store.set("new", 2)
    errors_after_set = list(errors)
    flushed = store.flush()  # retries, and fails again
    return {
        "dropped": dropped,
        "loaded": loaded,
        "errors": errors_after_set,
        "errors_after_flush": len(errors),
        "new_in_memory": store.get("new"),
        "flushed": flushed,
    }


def unreadable(path: Path) -> dict[str, Any]:
    dropped = drop_privileges()
    errors: list[str] = []
    store = SessionState(path, on_error=lambda exc: errors.append(type(exc).__name__))
    store.set("new", 3)
    return {
        "dropped": dropped,
        "errors": errors,
        "persistent": store.persistent,
        "items": store.items(),
    }


def at_exit(path: Path) -> dict[str, Any]:
    store = SessionState(path, durability="batched", batch_interval_ms=60_000)
    store.set("a", 1)
    store.set("b", [1, {"c": None}])
    # Kept alive to the end, so that only the atexit hook, not garbage collection, saves it.
    _KEPT.append(store)
    return {"written_before_exit": path.exists()}


_KEPT: list[SessionState] = []


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    if mode == "stream":
        stream(path)
        return
    modes = {"fsize": fsize, "readonly": readonly, "unreadable": unreadable, "atexit": at_exit}
    print(json.dumps(modes[mode](path)), flush=True)


if __name__ == "__main__":
    main()
