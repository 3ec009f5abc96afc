"""The exceptions of kit-telemetry, in one tree.

::

    KitTelemetryError
    ├── ConfigError            (also ValueError)    bad configuration, raised at start-up
    ├── UsageError             (also ValueError)    bad input on the hot path (raised only when strict)
    ├── BudgetExceeded         (also RuntimeError)  a hard budget stop: the call was refused
    ├── Blocked                (also RuntimeError)  an extension refused a call, or stopped the run
    ├── LedgerError            (also RuntimeError)  the budget ledger is unreachable; handled per on_ledger_error
    ├── ExtensionLoadError     (also ImportError)   an extension could not be loaded
    ├── UnknownCommandError    (also LookupError)   run_command() named no registered command
    ├── UnknownModelError      (also LookupError)   price_for() found no price
    └── EventDecodeError       (also ValueError)    event_from_dict() got something it cannot read

Only ``BudgetExceeded`` and ``Blocked`` are ever raised into agent code by design; everything else on the
hot path is logged and counted unless ``strict=True``.
"""

from __future__ import annotations


class KitTelemetryError(Exception):
    """Base class of every exception raised by kit-telemetry."""


class ConfigError(KitTelemetryError, ValueError):
    """A configuration value is wrong; the message names the field, the value and what is allowed."""


class UsageError(KitTelemetryError, ValueError):
    """The instrumentation API was given bad input (negative tokens, a span ended twice, ...)."""


class BudgetExceeded(KitTelemetryError, RuntimeError):
    """A budget refused an LLM or tool call before it was made.

    Attributes:
        budget: the name of the budget that refused.
        scope_key: which counter of that budget (a session id, a model name, "global", ...).
        limit: the budget's limit, in its unit.
        spent: committed spend in the current window.
        reserved: in-flight reservations in the current window.
        requested: what this call asked to reserve.
        window_end: Unix time (seconds) when the current window ends, or None.
        unit: "usd", "tokens", "llm_calls", "tool_calls" or "repeats" (a loop guard).
    """

    def __init__(
        self,
        budget: str,
        *,
        scope_key: str,
        limit: float,
        spent: float,
        reserved: float,
        requested: float,
        window_end: float | None = None,
        unit: str = "usd",
    ) -> None:
        self.budget = budget
        self.scope_key = scope_key
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.window_end = window_end
        self.unit = unit
        super().__init__(
            f"budget {budget!r} ({scope_key}) refused the call: spent {spent:g} + reserved "
            f"{reserved:g} + requested {requested:g} would exceed the limit {limit:g} {unit}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps the exception picklable across processes despite keyword-only arguments.
        return (_rebuild_budget_exceeded, (self.budget, self.__dict__.copy()))


def _rebuild_budget_exceeded(budget: str, fields: dict[str, object]) -> BudgetExceeded:
    exc = BudgetExceeded.__new__(BudgetExceeded)
    exc.__dict__.update(fields)
    Exception.__init__(exc, f"budget {budget!r} refused the call")
    return exc


class Blocked(KitTelemetryError, RuntimeError):
    """An extension refused a call (or stopped the run) before it was made.

    Attributes:
        kind: "tool_call" (a ``tool_call`` handler blocked it), "llm_call" (an
            ``llm_request`` handler blocked it) or "run" (the run was stopped earlier).
        reason: the extension's reason ("" when it gave none).
        extension: the name of the extension that decided.
        name: the tool's name or the model's.
    """

    def __init__(self, kind: str, reason: str = "", *, extension: str = "", name: str = "") -> None:
        self.kind = kind
        self.reason = reason
        self.extension = extension
        self.name = name
        by = f" by extension {extension!r}" if extension else ""
        because = f": {reason}" if reason else ""
        if kind == "run":
            refused = f" ({name!r} refused)" if name else ""
            message = f"run stopped{by}{because}{refused}"
        else:
            what = {"tool_call": "tool call", "llm_call": "LLM call"}.get(kind, kind)
            target = f" {name!r}" if name else ""
            message = f"{what}{target} blocked{by}{because}"
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_blocked, (self.kind, self.reason, self.extension, self.name))


def _rebuild_blocked(kind: str, reason: str, extension: str, name: str) -> Blocked:
    return Blocked(kind, reason, extension=extension, name=name)


class LedgerError(KitTelemetryError, RuntimeError):
    """The budget ledger could not be read or written (Redis unreachable, SQLite locked too long).

    The enforcer turns it into its ``on_ledger_error`` policy: ``allow`` admits the call,
    ``deny`` refuses it.
    """


class ExtensionLoadError(KitTelemetryError, ImportError):
    """An extension could not be loaded; the message names the extension and the cause."""


class UnknownCommandError(KitTelemetryError, LookupError):
    """``run_command`` was asked for a command no extension registered."""


class UnknownModelError(KitTelemetryError, LookupError):
    """``PriceTable.price_for`` found no price for the model."""


class EventDecodeError(KitTelemetryError, ValueError):
    """``event_from_dict`` was given a dict it cannot turn into an event."""
