"""Budget configuration: ``Budget``, ``AlertSinkConfig``, ``BudgetConfig`` and the TOML loader.

Every value is checked when it is built, so a bad budget fails at start-up with a
``ConfigError`` naming the budget, the field, the value and what is allowed, e.g.
``budget 'daily': window 'dayly' is not one of none, hour, day, week, month,
rolling:<duration>``. A file is parsed completely before anything is returned, so nothing
starts with a half-read configuration.

The TOML format::

    [ledger]                         # optional
    url = "sqlite:/var/lib/agent/budgets.db"   # memory | sqlite:PATH | redis://HOST:PORT/DB
    on_ledger_error = "allow"        # allow (fail open) | deny (fail closed)
    timeout_s = 5.0                  # SQLite: wait for the write lock; Redis: network
                                     # timeout (default 5 s SQLite, 2 s Redis)
    journal = "/var/lib/agent/budgets.journal"  # where spend the ledger could not take
                                     # waits to be replayed (default beside the SQLite
                                     # file, or in the cache directory for Redis)

    [admission]                      # optional: what a call without sizes reserves
    default_max_tokens = 4096        # output reserved when a call gives no max_tokens
    default_input_estimate = 4096    # input reserved when a call gives no estimate
                                     # and its run has no earlier call
    on_cancel = "release"            # a call that fails or is cancelled without usage:
                                     # release | charge_reservation

    [[budget]]
    name = "per-session"
    scope = "session"                # global | session | run | model | provider | user
                                     # | attribute:<key>
    limit_usd = 2.00                 # at least one of limit_usd, limit_tokens,
                                     # max_llm_calls, max_tool_calls, max_repeats
    window = "none"                  # none | hour | day | week | month | rolling:<duration>
    timezone = "UTC"
    warn_at = [0.5, 0.8]
    action = "raise"                 # raise | warn | observe
    match = { model = "claude-*" }   # globs on provider, model, agent, user, attribute:<key>

    [[alert]]
    kind = "webhook"                 # log | webhook | callback
    url = "http://127.0.0.1:9000/hook"
    events = ["warning", "exceeded"]
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ..errors import ConfigError
from .windows import WINDOW_CHOICES, parse_window

__all__ = [
    "ACTIONS",
    "ALERT_EVENTS",
    "ALERT_KINDS",
    "CANCEL_POLICIES",
    "LEDGER_ERROR_POLICIES",
    "MATCH_KEYS",
    "SCOPES",
    "Action",
    "AlertSinkConfig",
    "Budget",
    "BudgetConfig",
    "Scope",
    "load_budget_config",
    "parse_budget_config",
    "parse_ledger_url",
]

Scope = Literal["global", "session", "run", "model", "provider", "user"]
"""The fixed scopes; ``"attribute:<key>"`` strings are allowed as well."""
Action = Literal["raise", "warn", "observe"]

SCOPES: tuple[str, ...] = ("global", "session", "run", "model", "provider", "user")
ACTIONS: tuple[str, ...] = ("raise", "warn", "observe")
MATCH_KEYS: tuple[str, ...] = ("provider", "model", "agent", "user")
ALERT_KINDS: tuple[str, ...] = ("log", "webhook", "callback")
ALERT_EVENTS: tuple[str, ...] = ("warning", "exceeded")
LEDGER_ERROR_POLICIES: tuple[str, ...] = ("allow", "deny")
CANCEL_POLICIES: tuple[str, ...] = ("release", "charge_reservation")
LEDGER_CHOICES = "memory, sqlite:PATH, redis://HOST:PORT/DB"
RUN_ONLY_LIMITS: tuple[str, ...] = ("max_llm_calls", "max_tool_calls", "max_repeats")
LIMIT_MAX = 2**53 - 1
"""The largest limit, in a counter's unit (micro-USD for money), that every ledger holds
exactly: Redis counts in Lua doubles, exact up to 2**53. One bound for all ledgers keeps a
budget file portable between them; a larger limit is a ``ConfigError``."""
LIMIT_USD_MAX = LIMIT_MAX / 1_000_000
TIMEOUT_MAX_S = 300.0
"""The longest ledger timeout: a call waiting longer for its budget is better refused."""
DEFAULT_MAX_TOKENS = 4096
"""Output tokens reserved for a call that gives no ``max_tokens``: a common provider
default and a generous answer, so an unsized call never reserves nothing."""
DEFAULT_INPUT_ESTIMATE = 4096
"""Input tokens reserved for a call that gives no estimate, before its run has a history."""

_SCOPE_CHOICES = ", ".join(SCOPES) + ", attribute:<key>"
_MATCH_CHOICES = ", ".join(MATCH_KEYS) + ", attribute:<key>"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """One budget: what is counted, per which scope, over which window, and what happens.

    Attributes:
        name: unique; the ``budget`` label of metrics and alerts.
        scope: what gets its own counter: ``global``, ``session``, ``run``, ``model``,
            ``provider``, ``user`` (calls without a user are not counted) or
            ``attribute:<key>`` (calls without that attribute are not counted).
        limit_usd: spend limit in USD per scope key and window (at most
            :data:`LIMIT_USD_MAX`, about $9 billion).
        limit_tokens: token limit (input + output of every kind) per scope key and window.
        max_llm_calls: LLM calls per run (scope ``run`` only).
        max_tool_calls: tool calls per run (scope ``run`` only).
        max_repeats: a loop guard: how often one run may call the same tool with the
            same arguments; the next identical call is refused like an exhausted budget
            (scope ``run`` only). Every count limit is at most :data:`LIMIT_MAX`
            (2**53 - 1), what every ledger counts exactly.
        window: ``none``, ``hour``, ``day``, ``week``, ``month`` or ``rolling:<duration>``.
        timezone: IANA zone of calendar windows.
        warn_at: increasing fractions of the limit in (0, 1) that raise a warning alert.
        action: ``raise`` refuses calls that would exceed; ``warn`` alerts but admits;
            ``observe`` only counts (a dry run).
        match: glob patterns a call must match on ``provider``, ``model``, ``agent``,
            ``user`` or ``attribute:<key>``; empty matches every call.

    Raises:
        ConfigError: any field is invalid; the message names budget, field, value and the
            allowed values.
    """

    name: str
    scope: str = "global"
    limit_usd: float | None = None
    limit_tokens: int | None = None
    max_llm_calls: int | None = None
    max_tool_calls: int | None = None
    max_repeats: int | None = None
    window: str = "none"
    timezone: str = "UTC"
    warn_at: tuple[float, ...] = ()
    action: str = "raise"
    match: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"budget name {self.name!r} must be a non-empty string")
        where = f"budget {self.name!r}"
        self._check_scope(where)
        self._check_limits(where)
        if not isinstance(self.window, str):
            raise ConfigError(f"{where}: window {self.window!r} is not one of {WINDOW_CHOICES}")
        if not isinstance(self.timezone, str):
            raise ConfigError(f"{where}: timezone {self.timezone!r} must be a string")
        try:
            parse_window(self.window, self.timezone)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        self._check_warn_at(where)
        if self.action not in ACTIONS:
            raise ConfigError(f"{where}: action {self.action!r} is not one of {', '.join(ACTIONS)}")
        self._check_match(where)

    def _check_scope(self, where: str) -> None:
        scope = self.scope
        if not isinstance(scope, str) or not (
            scope in SCOPES or (scope.startswith("attribute:") and len(scope) > len("attribute:"))
        ):
            raise ConfigError(f"{where}: scope {scope!r} is not one of {_SCOPE_CHOICES}")

    def _check_limits(self, where: str) -> None:
        usd = self.limit_usd
        if usd is not None and not (_is_number(usd) and 0 < usd <= LIMIT_USD_MAX):
            raise ConfigError(
                f"{where}: limit_usd {usd!r} must be a number greater than 0 and at most "
                f"{LIMIT_USD_MAX:.6f} (what a ledger counts exactly in micro-USD)"
            )
        for name in ("limit_tokens", *RUN_ONLY_LIMITS):
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and 0 < value <= LIMIT_MAX):
                raise ConfigError(
                    f"{where}: {name} {value!r} must be an integer greater than 0 and at most "
                    f"{LIMIT_MAX} (2**53 - 1, what every ledger counts exactly)"
                )
        if all(
            getattr(self, name) is None for name in ("limit_usd", "limit_tokens", *RUN_ONLY_LIMITS)
        ):
            raise ConfigError(
                f"{where}: no limit set; set at least one of limit_usd, limit_tokens, "
                "max_llm_calls, max_tool_calls, max_repeats"
            )
        for name in RUN_ONLY_LIMITS:
            if getattr(self, name) is not None and self.scope != "run":
                raise ConfigError(
                    f"{where}: {name} counts calls per agent run, so it needs scope 'run', "
                    f'not {self.scope!r} (use a separate budget with scope = "run")'
                )

    def _check_warn_at(self, where: str) -> None:
        raw = self.warn_at
        if not isinstance(raw, (tuple, list)):
            raise ConfigError(
                f"{where}: warn_at {raw!r} must be a list of fractions between 0 and 1"
            )
        for value in raw:
            if not (_is_number(value) and 0 < value < 1):
                raise ConfigError(
                    f"{where}: warn_at value {value!r} must be a fraction between 0 and 1 "
                    "(exclusive); exhaustion (1.0) always alerts"
                )
        if any(b <= a for a, b in itertools.pairwise(raw)):
            raise ConfigError(
                f"{where}: warn_at {list(raw)!r} must be strictly increasing, e.g. [0.5, 0.8]"
            )
        # A list given from Python becomes a tuple, so the frozen budget stays immutable.
        object.__setattr__(self, "warn_at", tuple(float(v) for v in raw))

    def _check_match(self, where: str) -> None:
        raw = self.match
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: match {raw!r} must be a table of glob patterns")
        for key, pattern in raw.items():
            if not isinstance(key, str) or not (
                key in MATCH_KEYS or (key.startswith("attribute:") and len(key) > len("attribute:"))
            ):
                raise ConfigError(f"{where}: match key {key!r} is not one of {_MATCH_CHOICES}")
            if not isinstance(pattern, str) or not pattern:
                raise ConfigError(
                    f"{where}: match.{key} {pattern!r} must be a non-empty glob pattern string"
                )
        # A read-only copy: later changes to the caller's dict cannot change the budget.
        object.__setattr__(self, "match", types.MappingProxyType(dict(raw)))

    @property
    def units(self) -> tuple[str, ...]:
        """The units this budget limits: ``usd``, ``tokens``, ``llm_calls``, ``tool_calls``,
        ``repeats``."""
        pairs = (
            ("usd", self.limit_usd),
            ("tokens", self.limit_tokens),
            ("llm_calls", self.max_llm_calls),
            ("tool_calls", self.max_tool_calls),
            ("repeats", self.max_repeats),
        )
        return tuple(unit for unit, limit in pairs if limit is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSinkConfig:
    """Where budget alerts go.

    Attributes:
        kind: ``log``, ``webhook`` or ``callback``.
        url: the ``http(s)://`` URL a webhook posts to (webhook only, required).
        callback: ``"pkg.mod:function"`` called with each alert (callback only, required).
        events: which alert kinds to deliver: ``warning`` and/or ``exceeded``.
        timeout_s: per-attempt timeout of a webhook.
        max_attempts: webhook attempts before giving up (retried with backoff).

    Raises:
        ConfigError: any field is invalid.
    """

    kind: str
    url: str | None = None
    callback: str | None = None
    events: tuple[str, ...] = ("warning", "exceeded")
    timeout_s: float = 5.0
    max_attempts: int = 5

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ConfigError(f"alert: kind {self.kind!r} is not one of {', '.join(ALERT_KINDS)}")
        where = f"alert ({self.kind})"
        if self.kind == "webhook":
            if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
                raise ConfigError(f"{where}: url {self.url!r} must be an http:// or https:// URL")
        elif self.url is not None:
            raise ConfigError(f"{where}: url {self.url!r} is only allowed with kind 'webhook'")
        if self.kind == "callback":
            module, _, function = (self.callback or "").partition(":")
            if not (isinstance(self.callback, str) and module and function):
                raise ConfigError(
                    f"{where}: callback {self.callback!r} must be 'pkg.module:function'"
                )
        elif self.callback is not None:
            raise ConfigError(
                f"{where}: callback {self.callback!r} is only allowed with kind 'callback'"
            )
        events = self.events
        if not isinstance(events, (tuple, list)) or not events:
            raise ConfigError(
                f"{where}: events {events!r} must be a non-empty list of {', '.join(ALERT_EVENTS)}"
            )
        for event in events:
            if event not in ALERT_EVENTS:
                raise ConfigError(
                    f"{where}: event {event!r} is not one of {', '.join(ALERT_EVENTS)}"
                )
        object.__setattr__(self, "events", tuple(events))
        if not (
            _is_number(self.timeout_s) and math.isfinite(self.timeout_s) and self.timeout_s > 0
        ):
            raise ConfigError(
                f"{where}: timeout_s {self.timeout_s!r} must be a number greater than 0"
            )
        if not (_is_int(self.max_attempts) and self.max_attempts >= 1):
            raise ConfigError(
                f"{where}: max_attempts {self.max_attempts!r} must be an integer >= 1"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetConfig:
    """A complete budget configuration: budgets, alert sinks and the ledger.

    Attributes:
        budgets: the budgets, with unique names.
        alerts: alert sinks.
        ledger: ``memory``, ``sqlite:PATH`` or ``redis://HOST:PORT/DB``.
        on_ledger_error: ``allow`` admits calls when the ledger cannot be reached (fail
            open, counted in a metric); ``deny`` refuses them (fail closed).
        ledger_timeout_s: how long a ledger operation may wait: SQLite's write lock, or
            Redis's connection and reply; None keeps the backend's default (5 s, 2 s).
        journal: the file where spend that could not be recorded in the ledger waits to
            be replayed; None puts it beside an SQLite file, or under the cache directory
            for Redis (a memory ledger cannot fail and needs none).
        default_max_tokens: output tokens reserved for a call without ``max_tokens``.
        default_input_estimate: input tokens reserved for a call without an input
            estimate whose run has no earlier call (later ones reserve the run's largest
            input so far). Both keep concurrent unsized calls from being admitted on a
            reservation of nothing.
        on_cancel: what a call that ends with an exception (an error, a cancellation)
            and reported no usage costs: ``release`` charges nothing (the request most
            likely never reached the model); ``charge_reservation`` charges what was
            reserved (a provider bills the tokens of a cancelled stream). A call that
            reported usage, even partial stream usage, is charged that usage either way.

    Raises:
        ConfigError: duplicate budget names, a bad ledger URL or policy.
    """

    budgets: tuple[Budget, ...]
    alerts: tuple[AlertSinkConfig, ...] = ()
    ledger: str = "memory"
    on_ledger_error: str = "allow"
    ledger_timeout_s: float | None = None
    journal: str | None = None
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    default_input_estimate: int = DEFAULT_INPUT_ESTIMATE
    on_cancel: str = "release"

    def __post_init__(self) -> None:
        budgets = tuple(self.budgets)
        for budget in budgets:
            if not isinstance(budget, Budget):
                raise ConfigError(f"budgets: {budget!r} is not a Budget")
        seen: set[str] = set()
        for budget in budgets:
            if budget.name in seen:
                raise ConfigError(f"budget {budget.name!r}: name is used by more than one budget")
            seen.add(budget.name)
        alerts = tuple(self.alerts)
        for alert in alerts:
            if not isinstance(alert, AlertSinkConfig):
                raise ConfigError(f"alerts: {alert!r} is not an AlertSinkConfig")
        object.__setattr__(self, "budgets", budgets)
        object.__setattr__(self, "alerts", alerts)
        parse_ledger_url(self.ledger)
        if self.on_ledger_error not in LEDGER_ERROR_POLICIES:
            raise ConfigError(
                f"ledger: on_ledger_error {self.on_ledger_error!r} is not one of "
                f"{', '.join(LEDGER_ERROR_POLICIES)}"
            )
        timeout = self.ledger_timeout_s
        if timeout is not None and not (
            _is_number(timeout) and math.isfinite(timeout) and 0 < timeout <= TIMEOUT_MAX_S
        ):
            raise ConfigError(
                f"ledger: timeout_s {timeout!r} must be a number of seconds greater than 0 "
                f"and at most {TIMEOUT_MAX_S:g}"
            )
        if self.journal is not None and not (isinstance(self.journal, str) and self.journal):
            raise ConfigError(f"ledger: journal {self.journal!r} must be a non-empty file path")
        if self.on_cancel not in CANCEL_POLICIES:
            raise ConfigError(
                f"admission: on_cancel {self.on_cancel!r} is not one of {', '.join(CANCEL_POLICIES)}"
            )
        for name in ("default_max_tokens", "default_input_estimate"):
            value = getattr(self, name)
            if not (_is_int(value) and 0 <= value <= LIMIT_MAX):
                raise ConfigError(
                    f"admission: {name} {value!r} must be an integer from 0 to {LIMIT_MAX}"
                )


def parse_ledger_url(url: str) -> tuple[str, str]:
    """Split a ledger URL into its kind and target.

    Returns:
        ``("memory", "")``, ``("sqlite", PATH)`` or ``("redis", URL)``.

    Raises:
        ConfigError: the URL is none of ``memory``, ``sqlite:PATH``, ``redis://HOST:PORT/DB``.
    """
    if not isinstance(url, str):
        raise ConfigError(f"ledger: url {url!r} is not one of {LEDGER_CHOICES}")
    if url == "memory":
        return "memory", ""
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        # Accept the sqlite:///abs/path spelling of SQLAlchemy users as well.
        if path.startswith("///"):
            path = path[2:]
        if not path:
            raise ConfigError(
                f"ledger: url {url!r} needs a file path, e.g. sqlite:/var/lib/budgets.db"
            )
        return "sqlite", path
    if url.startswith(("redis://", "rediss://", "unix://")):
        rest = url.split("://", 1)[1]
        if not rest:
            raise ConfigError(f"ledger: url {url!r} needs a host, e.g. redis://127.0.0.1:6379/0")
        return "redis", url
    raise ConfigError(f"ledger: url {url!r} is not one of {LEDGER_CHOICES}")


_BUDGET_FIELDS = tuple(f.name for f in fields(Budget))
_ALERT_FIELDS = tuple(f.name for f in fields(AlertSinkConfig))
_TOP_LEVEL_KEYS = ("budget", "alert", "ledger", "admission")
_LEDGER_KEYS = ("url", "on_ledger_error", "timeout_s", "journal")
_ADMISSION_KEYS = ("default_max_tokens", "default_input_estimate", "on_cancel")


def load_budget_config(path: str | os.PathLike[str]) -> BudgetConfig:
    """Read and check a budgets TOML file (format in the module docstring).

    Raises:
        ConfigError: the file cannot be read, is not TOML, or any value is wrong; the
            message starts with the file name.
    """
    if sys.version_info >= (3, 11):  # imported here: only budget files need a TOML parser
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read budgets file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_budget_config(data, source=source)


def parse_budget_config(data: Mapping[str, Any], *, source: str) -> BudgetConfig:
    """Build a :class:`BudgetConfig` from parsed TOML (or any equivalent mapping).

    Args:
        data: ``{"budget": [...], "alert": [...], "ledger": {...}}``.
        source: where the data came from, prefixed to every error message.

    Raises:
        ConfigError: unknown keys, wrong types or invalid values, naming the budget, the
            field, the value and what is allowed.
    """
    try:
        return _parse(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _unknown_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")


def _list_of_tables(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        raise ConfigError(f"{key!r} must be written as [[{key}]] tables")
    return raw


def _parse(data: Mapping[str, Any]) -> BudgetConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a table at the top level, got {type(data).__name__}")
    _unknown_keys(data, _TOP_LEVEL_KEYS, "top level")
    budgets: list[Budget] = []
    for index, table in enumerate(_list_of_tables(data, "budget"), start=1):
        name = table.get("name")
        where = f"budget {name!r}" if isinstance(name, str) and name else f"budget #{index}"
        if name is None:
            raise ConfigError(f"{where}: name is missing (every [[budget]] needs a unique name)")
        _unknown_keys(table, _BUDGET_FIELDS, where)
        kwargs = dict(table)
        if "warn_at" in kwargs:
            warn_at = kwargs["warn_at"]
            if not isinstance(warn_at, list):
                raise ConfigError(
                    f"{where}: warn_at {warn_at!r} must be a list of fractions, e.g. [0.5, 0.8]"
                )
            kwargs["warn_at"] = tuple(warn_at)
        budgets.append(Budget(**kwargs))
    if not budgets:
        raise ConfigError("no [[budget]] tables: define at least one budget")
    alerts: list[AlertSinkConfig] = []
    for index, table in enumerate(_list_of_tables(data, "alert"), start=1):
        _unknown_keys(table, _ALERT_FIELDS, f"alert #{index}")
        kwargs = dict(table)
        if isinstance(kwargs.get("events"), list):
            kwargs["events"] = tuple(kwargs["events"])
        if "kind" not in kwargs:
            raise ConfigError(f"alert #{index}: kind is missing; one of {', '.join(ALERT_KINDS)}")
        try:
            alerts.append(AlertSinkConfig(**kwargs))
        except ConfigError as exc:
            # "alert (webhook): ..." becomes "alert #2 (webhook): ..." to point into the file.
            raise ConfigError(f"alert #{index}{str(exc).removeprefix('alert')}") from None
    ledger = data.get("ledger", {})
    if not isinstance(ledger, Mapping):
        raise ConfigError(
            f"ledger {ledger!r} must be a [ledger] table with {', '.join(_LEDGER_KEYS)}"
        )
    _unknown_keys(ledger, _LEDGER_KEYS, "ledger")
    admission = data.get("admission", {})
    if not isinstance(admission, Mapping):
        raise ConfigError(
            f"admission {admission!r} must be an [admission] table with "
            f"{', '.join(_ADMISSION_KEYS)}"
        )
    _unknown_keys(admission, _ADMISSION_KEYS, "admission")
    return BudgetConfig(
        budgets=tuple(budgets),
        alerts=tuple(alerts),
        ledger=ledger.get("url", "memory"),
        on_ledger_error=ledger.get("on_ledger_error", "allow"),
        ledger_timeout_s=ledger.get("timeout_s"),
        journal=ledger.get("journal"),
        **{key: admission[key] for key in _ADMISSION_KEYS if key in admission},
    )
