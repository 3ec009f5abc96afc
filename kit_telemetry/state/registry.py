"""``StateRegistry``: the open state store of each session, one per session id.

A session's store opens on first use (by the session itself or by an extension handler)
beside its session file, under ``state_dir``, or in memory, and closes when the session
ends. The session files of recently ended sessions are remembered, so that a command run
for a session after it ended still finds its state.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from .sidecar import sidecar_path
from .store import Durability, SessionState

# Session files of ended sessions kept (most recent first out of the way).
MAX_ENDED_SESSION_FILES = 10_000


class StateRegistry:
    """Opens, shares and closes the state store of every session.

    Args:
        state_dir: where the state of sessions without a session file lives (None: memory).
        durability: "sync" or "batched", for every store.
        on_error: reports a failed load or write of a store.
        strict: stores raise their errors instead of reporting them.
    """

    def __init__(
        self,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        durability: Durability = "sync",
        on_error: Callable[[BaseException], None] | None = None,
        strict: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser() if state_dir is not None else None
        self._durability: Durability = durability
        self._on_error = on_error
        self._strict = strict
        self._lock = threading.Lock()
        self._session_files: dict[str, str | None] = {}  # live sessions
        self._ended_files: OrderedDict[str, str] = OrderedDict()
        self._stores: dict[str, SessionState] = {}

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
                store = self._stores[session_id] = SessionState(
                    path, durability=self._durability, on_error=self._on_error, strict=self._strict
                )
        return store

    def flush(self) -> None:
        """Write every batched change now."""
        for store in self._open():
            store.flush()

    def close(self) -> None:
        """Flush and close every open store."""
        for store in self._open():
            store.close()

    def _open(self) -> list[SessionState]:
        with self._lock:
            return list(self._stores.values())
