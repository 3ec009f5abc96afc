"""The demo's sessions: which session takes each run, and when a session ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit_telemetry.instrumentation import Session
    from kit_telemetry.telemetry import Telemetry

    from .agent import RunOutcome

__all__ = ["RUNS_PER_SESSION", "DemoSessions"]

# A paced demo ends a session after this many runs (or a budget stop) and starts another.
RUNS_PER_SESSION = 4


class DemoSessions:
    """The demo's sessions: ``count`` of them take the runs in turn.

    With ``rotate`` (a paced demo), a session ends after ``RUNS_PER_SESSION`` runs or a
    budget stop and a new one takes its place, as users come and go; otherwise the same
    ``count`` sessions take every run, which keeps a short demo's table easy to follow.
    """

    def __init__(self, tel: Telemetry, seed: int, count: int, *, rotate: bool) -> None:
        self._tel = tel
        self._seed = seed
        self._rotate = rotate
        self._started = 0
        self._slots: list[Session] = [self._start() for _ in range(count)]
        self._runs = [0] * count

    def for_run(self, i: int) -> Session:
        """The session that takes run ``i``."""
        return self._slots[i % len(self._slots)]

    def after_run(self, i: int, outcome: RunOutcome) -> None:
        """Run ``i`` ended with ``outcome``: end its session if it is used up."""
        slot = i % len(self._slots)
        self._runs[slot] += 1
        if self._rotate and (
            self._runs[slot] >= RUNS_PER_SESSION or outcome.budget_stop is not None
        ):
            self._slots[slot].end()
            self._slots[slot] = self._start()
            self._runs[slot] = 0

    def end_all(self) -> None:
        """End every session still open."""
        for session in self._slots:
            session.end()

    def _start(self) -> Session:
        session = self._tel.session(f"demo-{self._seed}-{self._started}")
        self._started += 1
        session.start()
        return session
