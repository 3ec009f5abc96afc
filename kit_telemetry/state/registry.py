"""``StateRegistry``: the open state store of each session, one per session id.

A session's store opens on first use (by the session itself or by an extension handler)
beside its session file, under ``state_dir``, or in memory, and closes when the session
ends. The session files of recently ended sessions are remembered, so that a command run
for a session after it ended still finds its state.

A store whose last write failed (a full disk) is not dropped when its session ends: the
registry keeps it, by its file, while the process lives. The next session on that file gets
this store, with the newest state, instead of reloading the older file; every
:meth:`StateRegistry.flush` retries the write; :meth:`StateRegistry.close` (shutdown) retries
once more and then gives the store up, which reports the loss and moves the stale file aside
(see :meth:`SessionState.give_up`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from .._errors import ErrorPolicy
from .sidecar import sidecar_path
from .store import Durability, SessionState

# Session files of ended sessions kept (most recent first out of the way).
MAX_ENDED_SESSION_FILES = 10_000
# Stores of ended sessions kept for a retry; past this, the oldest is given up.
MAX_UNSAVED_STORES = 1_000


class StateRegistry:
    """Opens, shares and closes the state store of every session.

    Args:
        state_dir: where the state of sessions without a session file lives (None: memory).
        durability: "sync" or "batched", for every store.
        on_error: reports a failed load or write of a store.
        strict: stores raise their errors instead of reporting them.
        errors: the policy for bad keys and values given to every store.
    """

    def __init__(
        self,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        durability: Durability = "sync",
        on_error: Callable[[BaseException], None] | None = None,
        strict: bool = False,
        errors: ErrorPolicy | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser() if state_dir is not None else None
        self._durability: Durability = durability
        self._on_error = on_error
        self._strict = strict
        self._errors = errors
        self._lock = threading.Lock()
        self._session_files: dict[str, str | None] = {}  # live sessions
        self._ended_files: OrderedDict[str, str] = OrderedDict()
        self._stores: dict[str, SessionState] = {}
        self._unsaved: OrderedDict[Path, SessionState] = OrderedDict()

    def session_started(self, session_id: str, session_file: str | None) -> None:
        """Note a live session and its file (where its store will live)."""
        with self._lock:
            self._session_files[session_id] = session_file

    def session_ended(self, session_id: str) -> None:
        """Close the session's store (flushing it) and remember its file."""
        with self._lock:
            session_file = self._session_files.pop(session_id, None)
            store = self._stores.pop(session_id, None)
            if session_file is not None:
                self._ended_files[session_id] = session_file
                if len(self._ended_files) > MAX_ENDED_SESSION_FILES:
                    self._ended_files.popitem(last=False)
        if store is not None:
            store.close()
            self._keep_if_unsaved(store)

    def _keep_if_unsaved(self, store: SessionState) -> None:
        """Keep a store whose file is behind it, for a later retry."""
        if store.saved or store.path is None:
            return
        with self._lock:
            self._unsaved[store.path] = store
            evicted = (
                self._unsaved.popitem(last=False)[1]
                if len(self._unsaved) > MAX_UNSAVED_STORES
                else None
            )
        if evicted is not None:
            evicted.give_up()

    def state_for(self, session_id: str, session_file: str | None = None) -> SessionState:
        """The session's store, opened on first use."""
        with self._lock:
            store = self._stores.get(session_id)
            if store is None:
                if session_file is None:
                    session_file = self._session_files.get(session_id) or self._ended_files.get(
                        session_id
                    )
                path = sidecar_path(
                    session_file=session_file, session_id=session_id, state_dir=self.state_dir
                )
                # A store of an ended session that is still unsaved is newer than its file.
                kept = self._unsaved.pop(path, None) if path is not None else None
                store = self._stores[session_id] = kept or SessionState(
                    path,
                    durability=self._durability,
                    on_error=self._on_error,
                    strict=self._strict,
                    errors=self._errors,
                )
        return store

    def flush(self) -> None:
        """Write every batched change now, and retry the stores that could not be saved."""
        for store in self._open():
            store.flush()
        self._retry_unsaved()

    def close(self) -> None:
        """Flush and close every open store; give up the stores that still cannot be saved."""
        for store in self._open():
            try:
                store.close()
            finally:
                self._keep_if_unsaved(store)
        for path, store in self._retry_unsaved():
            with self._lock:
                self._unsaved.pop(path, None)
            store.give_up()

    def _retry_unsaved(self) -> list[tuple[Path, SessionState]]:
        """Retry each unsaved store once; the ones still unsaved, by file."""
        with self._lock:
            unsaved = list(self._unsaved.items())
        failed: list[tuple[Path, SessionState]] = []
        for path, store in unsaved:
            try:
                saved = store.flush()
            except OSError:  # strict: reported already; still unsaved
                saved = False
            if saved:
                with self._lock:
                    if self._unsaved.get(path) is store:
                        del self._unsaved[path]
            else:
                failed.append((path, store))
        return failed

    def _open(self) -> list[SessionState]:
        with self._lock:
            return list(self._stores.values())
