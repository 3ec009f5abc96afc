"""The one error policy: ``strict`` raises; otherwise log once per kind and count.

Every part of kit-telemetry that meets bad input or fails on the agent's behalf reports
through an ``ErrorPolicy``, so the rule lives in one place: with ``strict=True`` (tests) the
error is raised; otherwise the first of each kind is logged (with its traceback, for
failures), later ones only at debug level, and every one is counted in
``kit_telemetry_internal_errors_total`` under its component.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .errors import UsageError

logger = logging.getLogger("kit_telemetry")

Counter = Callable[[str], None]
"""Counts one error of a component (``KitMetrics.record_internal_error``)."""


class ErrorPolicy:
    """Decides what happens to bad input and internal failures.

    Args:
        strict: raise instead of logging and counting.
        count: counts one error of a component; set later with ``count_with`` when the
            metrics are built after the policy.
    """

    def __init__(self, *, strict: bool = False, count: Counter | None = None) -> None:
        self.strict = strict
        self._count = count
        self._lock = threading.Lock()
        self._logged: set[tuple[str, str]] = set()

    def count_with(self, count: Counter) -> None:
        """Count errors with ``count`` from now on."""
        self._count = count

    def bad_input(self, field: str, message: str) -> None:
        """Bad input at the API: ``UsageError`` when strict, else logged once per field.

        Args:
            field: what was wrong, e.g. ``"llm_call.model"``; the unit of "once".
            message: names the value and what is allowed.
        """
        if self.strict:
            raise UsageError(message)
        self.count("api")
        if self._first("api", field):
            logger.warning(
                "kit-telemetry: %s (further bad %s values are logged at debug)", message, field
            )
        else:
            logger.debug("kit-telemetry: %s", message)

    def failed(self, component: str, exc: BaseException) -> None:
        """A failure inside telemetry: re-raised when strict, else logged once per kind."""
        self.count(component)
        if self.strict:
            raise exc
        if self._first(component, type(exc).__qualname__):
            logger.error("kit-telemetry %s failed: %s", component, exc, exc_info=exc)
        else:
            logger.debug("kit-telemetry %s failed: %s", component, exc, exc_info=exc)

    def count(self, component: str) -> None:
        """Count an error that was handled (and logged) where it happened; never raises."""
        count = self._count
        if count is None:
            return
        try:
            count(component)
        except Exception:  # counting must never turn into a failure of its own
            logger.debug("kit-telemetry: could not count an error", exc_info=True)

    def _first(self, component: str, kind: str) -> bool:
        key = (component, kind)
        with self._lock:
            if key in self._logged:
                return False
            self._logged.add(key)
            return True
