"""Lifecycle events the extension runtime derives from others: ``model_change``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ..events import LLMUsageEvent, ModelChangeEvent

# Sessions seen only through spans of other code never end; keep the most recent ones.
MAX_WATCHED_SESSIONS = 10_000


class ModelWatch:
    """The model of each session's last LLM call; says when the next one differs."""

    def __init__(self, max_sessions: int = MAX_WATCHED_SESSIONS) -> None:
        self._lock = threading.Lock()
        self._last: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._max = max_sessions

    def seen(self, event: LLMUsageEvent) -> ModelChangeEvent | None:
        """Note the call's model; a ``ModelChangeEvent`` when it is not the session's last."""
        key = event.session_id
        current = (event.provider, event.model)
        with self._lock:
            previous = self._last.pop(key, None)
            self._last[key] = current
            if len(self._last) > self._max:
                self._last.popitem(last=False)
        if previous is None or previous == current:
            return None
        return ModelChangeEvent(
            session_id=key,
            timestamp_ns=time.time_ns(),
            run_id=event.run_id,
            provider=event.provider,
            previous_model=previous[1],
            model=event.model,
        )

    def forget(self, session_id: str) -> None:
        """The session ended."""
        with self._lock:
            self._last.pop(session_id, None)
