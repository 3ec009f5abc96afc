"""The demo's pacing: how long its simulated model, tools and user take in wall time.

A demo that finishes in two seconds ends inside one Prometheus scrape interval, so every
``rate()`` on a dashboard reads 0 or nothing. :class:`Pacing` spreads the same work over
realistic time: a hosted model answers in about 0.2 to 4 s, tools take from milliseconds
(``read_file``) to seconds (``run_tests``), and the user pauses between prompts. ``pace``
scales all of it: 1 is real time, 0.05 twenty times faster (tests), 0 no waiting at all.

The waits are drawn from their own ``random.Random``, so pacing never changes what the
demo prints for a seed. :meth:`Pacing.stop` ends every wait early and skips later ones,
so that Ctrl-C ends a paced demo at once, between telemetry calls rather than inside one.
"""

from __future__ import annotations

import random
import threading

from kit_telemetry.errors import ConfigError

__all__ = ["Pacing"]

# The simulated latency is a local model's (1 to 20 ms, growing with the output);
# scaled by 200 it is a hosted model's 0.2 to 4 s.
MODEL_LATENCY_SCALE = 200.0
# Seconds a tool takes at pace 1, (low, high), drawn uniformly.
TOOL_SECONDS: dict[str, tuple[float, float]] = {
    "bash": (0.2, 1.5),
    "read_file": (0.01, 0.05),
    "edit_file": (0.02, 0.1),
    "grep": (0.05, 0.4),
    "run_tests": (1.0, 6.0),
}
UNKNOWN_TOOL_SECONDS = (0.05, 0.5)
# The user reads the answer and types the next prompt.
BETWEEN_RUNS_SECONDS = (2.0, 6.0)


class Pacing:
    """Waits for the simulated work, ``pace`` times real time.

    Args:
        pace: the factor on every wait; 1 is real time, 0 is no waiting.
        seed: seeds the waits' draws; the same seed gives the same waits.

    Raises:
        ConfigError: ``pace`` is negative or not a finite number.
    """

    def __init__(self, pace: float, *, seed: int) -> None:
        if not 0.0 <= pace < float("inf"):
            raise ConfigError(f"demo pacing: pace {pace!r} is not a number of 0 or more")
        self.pace = pace
        self._rng = random.Random(f"{seed}/pacing")
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """End the current wait and skip every later one; safe from a signal handler."""
        self._stopped.set()

    def model_call(self, latency_s: float) -> None:
        """Wait while the model answers (``latency_s``: the simulated model's latency)."""
        self._wait(latency_s * MODEL_LATENCY_SCALE)

    def tool_call(self, name: str) -> None:
        """Wait while tool ``name`` runs."""
        self._wait(self._draw(TOOL_SECONDS.get(name, UNKNOWN_TOOL_SECONDS)))

    def between_runs(self, at_most_s: float | None = None) -> None:
        """Wait while the user reads the answer, but no longer than ``at_most_s``."""
        seconds = self._draw(BETWEEN_RUNS_SECONDS) * self.pace
        if at_most_s is not None:
            seconds = min(seconds, max(0.0, at_most_s))
        self._sleep(seconds)

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` of real time, whatever the pace (unless stopped)."""
        self._sleep(seconds)

    def _draw(self, bounds: tuple[float, float]) -> float:
        with self._lock:
            return self._rng.uniform(*bounds)

    def _wait(self, seconds: float) -> None:
        self._sleep(seconds * self.pace)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and not self._stopped.is_set():
            self._stopped.wait(seconds)
