"""``BudgetEnforcer``: admission before each LLM or tool call, settlement after it.

The enforcer turns a call's context (:class:`CallScope`) into ledger counters, one per
matching budget and unit, and asks the ledger to reserve them all at once. It stays free
of pricing: callers pass the worst-case cost and the actual cost in USD.

Decisions per budget action:

- ``raise``: a call that would take ``spent + reserved`` over the limit is refused with
  :class:`~kit_telemetry.errors.BudgetExceeded` and nothing is reserved anywhere.
- ``warn``: the call is admitted; the would-be excess gives a ``warned`` decision (the
  ``exceeded`` alert waits until settled spend reaches the limit).
- ``observe``: counted only (a dry run): no refusals, no alerts.

After settlement each ``warn_at`` crossing and the exhaustion of a budget produce one
:class:`~kit_telemetry.events.BudgetAlertEvent` per threshold, window and scope key, also
across processes and restarts (the ledger records which alerts went out). A refusal by a
``raise`` budget also counts as exhaustion: its ``exceeded`` alert says what was refused.

Every budget's metric series exist from construction (see ``status``).

Nothing but ``BudgetExceeded`` is raised into the agent, and no call is admitted
unchecked in silence: every admission either checks every matching budget or, when anything
inside it fails (an unreachable ledger, a bug, a third-party ledger raising something other
than ``LedgerError``), follows ``on_ledger_error``: ``allow`` admits the call marked
``ledger_failed``; ``deny`` refuses it with ``BudgetExceeded`` whose message says the
ledger is unavailable (or the budgets could not be checked) and why, whose ``spent`` and
``reserved`` are NaN and whose ``__cause__`` is the failure. Either way the failure is
logged with its traceback and counted as ``record_internal_error("budget_ledger")``
(``"budget"`` for failures outside the ledger).

Spend the ledger cannot take at settlement (it is down, and ``allow`` let the call in) is
not lost: it goes to a :class:`~kit_telemetry.budgets.journal.SpendJournal`, a local file,
and is replayed, each call once, after the next operation the ledger answers.

Amounts are validated here, once, before any ledger sees them: a worst case or actual
cost that is not a finite, non-negative number counts as unknown (USD: nothing reserved,
the reservation kept at settlement; tokens: 0), and amounts beyond
:data:`~kit_telemetry.budgets.ledger.AMOUNT_MAX` are clamped to it, which is above every
limit, so they are refused rather than overflowing a ledger. Idempotency keys are only
real ids: ``""`` counts as none.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence

from ..errors import BudgetExceeded, ConfigError
from ..events import BudgetAlertEvent
from .calls import Admission, CallScope, _reservation_ids
from .config import BudgetConfig
from .journal import JournalEntry, SpendJournal, default_journal_path
from .ledger import AMOUNT_MAX, MICROS_PER_USD, Counter, LedgerBackend, LedgerError, open_ledger
from .plans import _Plan
from .status import BudgetMetrics, BudgetStatus, _BudgetReporter, _display
from .thresholds import _ThresholdAlerts

# CallScope, Admission, BudgetStatus and BudgetMetrics live beside their own nouns and
# stay importable from here, where they started.
__all__ = [
    "Admission",
    "BudgetEnforcer",
    "BudgetMetrics",
    "BudgetStatus",
    "CallScope",
]

logger = logging.getLogger("kit_telemetry")


class BudgetEnforcer:
    """Admits, settles and releases calls against a set of budgets.

    Args:
        config: the budgets, alert sinks (delivered by the caller's ``on_alert``) and
            ledger settings.
        ledger: the ledger; by default opened from ``config.ledger``.
        clock: Unix seconds now; tests pass a fake clock.
        on_alert: receives each alert event (once per threshold, window and scope key).
        metrics: the budget gauges and counters; None records nothing.
        reservation_ttl_s: how long a reservation holds budget if it is never settled or
            released (a crashed process).
        journal: where spend the ledger cannot take waits for it; by default opened from
            ``config.journal``, or at the ledger's default path when this enforcer opens
            an SQLite or Redis ledger itself.

    Raises:
        ConfigError: the ledger URL is invalid.
        LedgerError: the ledger cannot be opened.
    """

    def __init__(
        self,
        config: BudgetConfig,
        *,
        ledger: LedgerBackend | None = None,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[BudgetAlertEvent], None] | None = None,
        metrics: BudgetMetrics | None = None,
        reservation_ttl_s: float = 600.0,
        journal: SpendJournal | None = None,
    ) -> None:
        self.config = config
        self._owns_ledger = ledger is None
        if ledger is None:
            timeout = config.ledger_timeout_s
            options = {} if timeout is None else {"timeout_s": timeout}
            ledger = open_ledger(config.ledger, **options)
        self.ledger: LedgerBackend = ledger
        self.journal = journal if journal is not None else _open_journal(config, self._owns_ledger)
        self._clock = clock
        self._metrics = metrics
        self._report = _BudgetReporter(metrics)
        self._reservation_ttl_s = reservation_ttl_s
        self._deny_on_ledger_error = config.on_ledger_error == "deny"
        self._plans = tuple(_Plan(b) for b in config.budgets)
        self._by_name = {plan.name: plan for plan in self._plans}
        # Decisions only feed metrics; skip the pass without them.
        self._decisions_needed = metrics is not None
        self._alerts = _ThresholdAlerts(self._by_name, on_alert, self._report)
        self._llm_plans = tuple(
            plan for plan in self._plans if {"usd", "tokens", "llm_calls"} & plan.limits.keys()
        )
        self._tool_plans = tuple(
            plan for plan in self._plans if {"tool_calls", "repeats"} & plan.limits.keys()
        )
        self._repeat_plans = tuple(plan for plan in self._plans if "repeats" in plan.limits)
        self.guards_repeats = bool(self._repeat_plans)
        self._overshoot_lock = threading.Lock()
        self._overshot: set[str] = set()  # budgets whose overshoot was logged already
        self._report.declare(self._plans)
        if metrics is not None:
            # Spend, utilisation and window end from the ledger before any call, so alert
            # rules have every series from the start.
            try:
                self.status()
            except Exception:
                self._report.internal_error("budget", "reading budget status failed")

    # ----------------------------------------------------------------- public API

    def admit_llm_call(
        self,
        scope: CallScope,
        *,
        worst_case_usd: float | None,
        worst_case_tokens: int,
        call_key: str | None = None,
    ) -> Admission:
        """Reserve an LLM call's worst case on every matching budget, all or nothing.

        Args:
            scope: who is calling.
            worst_case_usd: the most the call can cost (input estimate plus ``max_tokens``
                at the output price), or None when the model has no price; USD budgets
                then reserve nothing but still refuse once exhausted.
            worst_case_tokens: the most tokens the call can use.
            call_key: names the request (identical requests, one key), for ``max_repeats``
                loop guards; None leaves them out.

        Returns:
            The admission to pass to :meth:`settle` or :meth:`release`.

        Raises:
            BudgetExceeded: a ``raise`` budget would go over its limit (or the ledger is
                unreachable and ``on_ledger_error = "deny"``).
        """
        try:
            now = self._clock()
            amounts = self._llm_amounts(
                scope, now, _micros(worst_case_usd) or 0, _tokens(worst_case_tokens)
            )
            if call_key is not None:
                amounts.extend(self._repeats(scope, call_key, now))
        except Exception as exc:
            return self._unchecked(scope, self._llm_plans, exc)
        return self._admit(scope, amounts, now)

    def _llm_amounts(
        self, scope: CallScope, now: float, usd: int | None, tokens: int
    ) -> list[tuple[Counter, int]]:
        """What one LLM call counts on each matching counter (USD ones skipped when None)."""
        amounts: list[tuple[Counter, int]] = []
        for plan in self._llm_plans:
            key = plan.scope_key(scope)
            if key is None:
                continue
            for counter in plan.llm_counters(key, now):
                unit = counter.unit
                if unit == "usd":
                    if usd is not None:
                        amounts.append((counter, usd))
                elif unit == "tokens":
                    amounts.append((counter, tokens))
                else:
                    amounts.append((counter, 1))
        return amounts

    def _repeats(self, scope: CallScope, call_key: str, now: float) -> list[tuple[Counter, int]]:
        """One on the loop-guard counter of this call in every matching ``max_repeats`` plan."""
        amounts: list[tuple[Counter, int]] = []
        for plan in self._repeat_plans:
            key = plan.scope_key(scope)
            if key is not None:
                repeat = plan.repeat_counter(key, call_key, now)
                if repeat is not None:
                    amounts.append((repeat, 1))
        return amounts

    def admit_tool_call(self, scope: CallScope, *, call_key: str | None = None) -> Admission:
        """Count a tool call against ``max_tool_calls`` and ``max_repeats`` run budgets.

        Args:
            scope: who is calling.
            call_key: names the call's tool and arguments (identical calls, one key), for
                ``max_repeats`` loop guards; None leaves them out.

        Raises:
            BudgetExceeded: the run has used up its tool calls, or made this call as often
                as a loop guard allows.
        """
        try:
            now = self._clock()
            amounts: list[tuple[Counter, int]] = []
            for plan in self._tool_plans:
                key = plan.scope_key(scope)
                if key is None:
                    continue
                amounts.extend((counter, 1) for counter in plan.tool_counters(key, now))
                if call_key is not None:
                    repeat = plan.repeat_counter(key, call_key, now)
                    if repeat is not None:
                        amounts.append((repeat, 1))
        except Exception as exc:
            return self._unchecked(scope, self._tool_plans, exc)
        return self._admit(scope, amounts, now)

    def settle(
        self,
        admission: Admission,
        *,
        cost_usd: float | None,
        tokens: int,
        idempotency_key: str | None,
    ) -> None:
        """Turn a reservation into the actual usage, then send any alerts it crossed.

        Args:
            admission: from ``admit_llm_call`` or ``admit_tool_call``.
            cost_usd: the actual cost, or None when it is unknown: USD counters then keep
                the reserved worst case, so an unpriced call never counts as free.
            tokens: the actual tokens (all kinds, input and output).
            idempotency_key: the provider's response id; usage settled twice under one key
                counts once.
        """
        if not admission.finish() or not admission.amounts:
            return
        try:
            usd = _micros(cost_usd)
            tokens = _tokens(tokens)
            actual: list[tuple[Counter, int]] = []
            for counter, reserved in admission.amounts:
                unit = counter.unit
                if unit == "usd":
                    amount = reserved if usd is None else usd
                elif unit == "tokens":
                    amount = tokens
                else:  # llm_calls / tool_calls: the call happened
                    amount = 1
                if amount > reserved and counter.enforce and unit in ("usd", "tokens"):
                    self._overshoot(counter, reserved, amount)
                actual.append((counter, amount))
            self._commit(admission.scope, admission.reservation_id, actual, idempotency_key or None)
        except Exception:
            self._report.internal_error("budget", "settling a call failed")

    def _overshoot(self, counter: Counter, reserved: int, actual: int) -> None:
        """Warn, once per budget, that a call cost more than admission reserved for it.

        Such a call can take ``spent`` past a ``raise`` budget's limit by the difference:
        its ``max_tokens`` or input estimate (or the configured defaults) were too low.
        """
        with self._overshoot_lock:
            if counter.budget in self._overshot:
                return
            self._overshot.add(counter.budget)
        logger.warning(
            "budget %r (%s): a call used %s but admission reserved %s; raise max_tokens, "
            "estimated_input_tokens or the [admission] defaults so the limit holds "
            "(further overshoots of this budget are not logged)",
            counter.budget,
            counter.scope_key,
            _display_text(counter.unit, actual),
            _display_text(counter.unit, reserved),
        )

    def charge_reservation(self, admission: Admission) -> None:
        """Charge what was reserved, as if the call had used its worst case.

        For a call that ended without usage when ``on_cancel = "charge_reservation"``.
        """
        if not admission.finish() or not admission.amounts:
            return
        try:
            self._commit(admission.scope, admission.reservation_id, admission.amounts, None)
        except Exception:
            self._report.internal_error("budget", "charging a reservation failed")

    def release(self, admission: Admission) -> None:
        """Drop a reservation without charging it (the call failed or was cancelled)."""
        if not admission.finish() or not admission.amounts:
            return
        try:
            counters = [counter for counter, _ in admission.amounts]
            self.ledger.release(admission.reservation_id, counters, now_s=self._clock())
        except LedgerError:
            self._report.internal_error("budget_ledger", "releasing a reservation failed")
        except Exception:
            self._report.internal_error("budget", "releasing a reservation failed")

    def charge(
        self,
        scope: CallScope,
        *,
        cost_usd: float | None,
        tokens: int,
        idempotency_key: str | None,
    ) -> None:
        """Count an LLM call that was never admitted (e.g. a span from another library).

        Nothing is refused; the usage is added to every matching budget and alerts are
        sent as after :meth:`settle`.
        """
        try:
            now = self._clock()
            amounts = self._llm_amounts(scope, now, _micros(cost_usd), _tokens(tokens))
            if amounts:
                self._commit(scope, None, amounts, idempotency_key or None)
        except Exception:
            self._report.internal_error("budget", "charging unadmitted usage failed")

    def charge_usd(self, scope: CallScope, *, cost_usd: float) -> None:
        """Count money spent outside an LLM call (a tool's fee) on the USD budgets only.

        Nothing is refused (the money is spent); alerts follow as after :meth:`settle`.
        """
        try:
            now = self._clock()
            micros = _micros(cost_usd)
            amounts = [
                (counter, amount)
                for counter, amount in self._llm_amounts(scope, now, micros, 0)
                if counter.unit == "usd"
            ]
            if amounts:
                self._commit(scope, None, amounts, None)
        except Exception:
            self._report.internal_error("budget", "charging a tool's cost failed")

    def status(self) -> list[BudgetStatus]:
        """Every budget's figures per live scope key and unit in the current window.

        Also sets the budget gauges: USD spent and reserved per scope key for ``global``,
        ``model`` and ``provider`` budgets (for other scopes, whose keys are many, the total
        over live keys without a scope key), the highest utilisation among scope keys for
        every budget, and the window end of calendar budgets. The enforcer calls it once
        when it is built, so these series exist before the first call; commits keep them
        current.
        """
        now = self._clock()
        try:
            live = self.ledger.live_counters(now_s=now)
        except LedgerError:
            self._report.internal_error("budget_ledger", "reading budget status failed")
            live = []
        return self._report.statuses(self._plans, live, now)

    def close(self) -> None:
        """Close the ledger if this enforcer opened it, and the journal; idempotent."""
        if self._owns_ledger:
            self.ledger.close()
        if self.journal is not None:
            self.journal.close()

    def _keep(
        self,
        reservation_id: str | None,
        actual: Sequence[tuple[Counter, int]],
        idempotency_key: str | None,
    ) -> None:
        """The ledger refused a commit: keep the spend in the journal for a later replay."""
        journal = self.journal
        if journal is None:
            self._report.internal_error(
                "budget_ledger", "recording usage in the budget ledger failed; usage lost"
            )
            return
        if not reservation_id:
            ids = _reservation_ids
            reservation_id = f"{ids.tag}-{next(ids.numbers)}"
        self._report.internal_error(
            "budget_ledger",
            f"recording usage in the budget ledger failed; kept in {journal.path} for replay",
        )
        try:
            journal.append(reservation_id, actual, idempotency_key)
        except OSError:
            self._report.internal_error("budget", f"writing {journal.path} failed; usage lost")

    def _replay(self, now: float) -> None:
        """The ledger answers again: commit what the journal kept, each record once."""
        journal = self.journal
        assert journal is not None

        def commit(entry: JournalEntry) -> None:
            # Under the call's reservation id: a reservation still held is dropped.
            self.ledger.commit(
                entry.entry_id, entry.amounts, now_s=now, idempotency_key=entry.idempotency_key
            )

        try:
            replayed = journal.replay(commit)
        except LedgerError:
            self._report.internal_error(
                "budget_ledger", f"replaying {journal.path} failed; kept for the next try"
            )
        except Exception:
            self._report.internal_error("budget", f"replaying {journal.path} failed")
        else:
            if replayed:
                logger.warning(
                    "budget ledger is back: replayed %d calls' spend from %s",
                    replayed,
                    journal.path,
                )

    # ----------------------------------------------------------------- internals

    def _admit(self, scope: CallScope, amounts: list[tuple[Counter, int]], now: float) -> Admission:
        if not amounts:
            return Admission(scope, "", amounts)
        ids = _reservation_ids
        reservation_id = f"{ids.tag}-{next(ids.numbers)}"
        try:
            outcome = self.ledger.reserve(
                reservation_id, amounts, now_s=now, expires_at_s=now + self._reservation_ttl_s
            )
            admitted, refused, usage = outcome
        except Exception as exc:  # any failure, not only LedgerError: never a silent admit
            return self._ledger_down(scope, reservation_id, amounts, exc)
        if self.journal is not None and self.journal.pending:
            self._replay(now)
        if not admitted:
            counter, amount = amounts[refused]
            spent, reserved = usage[refused]
            self._report.metric("record_budget_decision", counter.budget, "denied")
            try:
                self._alerts.refused(
                    self.ledger,
                    scope,
                    counter,
                    spent=spent,
                    reserved=reserved,
                    requested=amount,
                    now=now,
                )
            except Exception:  # the refusal stands; only its alert failed
                self._report.internal_error("budget", "sending a budget alert failed")
            raise BudgetExceeded(
                counter.budget,
                scope_key=counter.scope_key,
                limit=_display(counter.unit, counter.limit),
                spent=_display(counter.unit, spent),
                reserved=_display(counter.unit, reserved),
                requested=_display(counter.unit, amount),
                window_end=counter.window_end,
                unit=counter.unit,
            )
        if self._decisions_needed:
            try:
                self._decide(amounts, usage)
            except Exception:  # the call was checked and admitted; only reporting failed
                self._report.internal_error("budget", "recording budget decisions failed")
        return Admission(scope, reservation_id, amounts)

    def _decide(
        self, amounts: list[tuple[Counter, int]], usage: tuple[tuple[int, int], ...]
    ) -> None:
        """Record one decision per budget: ``warned`` when a ``warn`` budget would exceed.

        No alert here: the call may cost far less than its worst case, so the ``exceeded``
        alert waits for settled spend to reach the limit, after the warnings.
        """
        decisions: dict[str, str] = {}
        for (counter, amount), (spent, reserved) in zip(amounts, usage, strict=True):
            decision = "allowed"
            plan = self._by_name[counter.budget]
            if plan.action == "warn" and spent + reserved + amount > counter.limit:
                decision = "warned"
            if decisions.get(counter.budget) != "warned":
                decisions[counter.budget] = decision
        for budget, decision in decisions.items():
            self._report.metric("record_budget_decision", budget, decision)

    def _ledger_down(
        self,
        scope: CallScope,
        reservation_id: str,
        amounts: list[tuple[Counter, int]],
        exc: Exception,
    ) -> Admission:
        """The ledger failed to decide: follow ``on_ledger_error``."""
        enforced = [(c, a) for c, a in amounts if c.enforce]
        if self._deny_on_ledger_error and enforced:
            counter, amount = enforced[0]
            raise self._denied(
                counter.budget,
                counter.scope_key,
                counter.unit,
                limit=counter.limit,
                requested=amount,
                window_end=counter.window_end,
                exc=exc,
            ) from exc
        self._report.internal_error(
            _component(exc), f"{_failure(exc)}; admitting the call (on_ledger_error = allow)"
        )
        return Admission(scope, reservation_id, amounts, ledger_failed=True)

    def _unchecked(self, scope: CallScope, plans: Sequence[_Plan], exc: Exception) -> Admission:
        """Working out a call's counters failed: follow ``on_ledger_error`` without them.

        ``deny`` refuses when any ``raise`` budget of this kind of call exists, since
        which of them match the call is unknown.
        """
        enforced = [plan for plan in plans if plan.enforce]
        if self._deny_on_ledger_error and enforced:
            plan = enforced[0]
            unit = next(iter(plan.limits))
            raise self._denied(
                plan.name, "unknown", unit, limit=plan.limits[unit], requested=0, exc=exc
            ) from exc
        self._report.internal_error(
            _component(exc), f"{_failure(exc)}; admitting the call (on_ledger_error = allow)"
        )
        return Admission(scope, "", [], ledger_failed=True)

    def _denied(
        self,
        budget: str,
        scope_key: str,
        unit: str,
        *,
        limit: int,
        requested: int,
        exc: Exception,
        window_end: float | None = None,
    ) -> BudgetExceeded:
        """The refusal under ``on_ledger_error = "deny"``: says what failed and why."""
        self._report.internal_error(
            _component(exc), f"{_failure(exc)}; refusing the call (on_ledger_error = deny)"
        )
        self._report.metric("record_budget_decision", budget, "denied")
        refusal = BudgetExceeded(
            budget,
            scope_key=scope_key,
            limit=_display(unit, limit),
            spent=math.nan,
            reserved=math.nan,
            requested=_display(unit, requested),
            window_end=window_end,
            unit=unit,
        )
        # BudgetExceeded's own message reports figures, which are unknown here (NaN).
        refusal.args = (
            f"budget {budget!r} ({scope_key}) refused the call: {_failure(exc)} and "
            f'on_ledger_error = "deny": {type(exc).__name__}: {exc}',
        )
        return refusal

    def _commit(
        self,
        scope: CallScope,
        reservation_id: str | None,
        actual: Sequence[tuple[Counter, int]],
        idempotency_key: str | None,
    ) -> None:
        now = self._clock()
        try:
            after = self.ledger.commit(
                reservation_id, actual, now_s=now, idempotency_key=idempotency_key
            )
        except LedgerError:
            self._keep(reservation_id, actual, idempotency_key)
            return
        if self.journal is not None and self.journal.pending:
            self._replay(now)
        if len(after) != len(actual):  # a third-party ledger breaking the protocol
            raise LedgerError(f"commit answered {len(after)} figures for {len(actual)} counters")
        metrics = self._metrics
        # strict=False: the lengths were just checked, and a strict zip costs more than the check.
        for (counter, _), (spent, reserved) in zip(actual, after, strict=False):
            plan = self._by_name[counter.budget]
            # Cheap test first: most calls leave every budget below its lowest threshold.
            if plan.alerting and spent >= plan.first_alert * counter.limit:
                self._alerts.crossed(self.ledger, scope, plan, counter, spent=spent, now=now)
            if metrics is not None:
                self._report.usage(plan, counter, spent, reserved)


def _open_journal(config: BudgetConfig, owns_ledger: bool) -> SpendJournal | None:
    """The journal of ``config``: the configured path (which must open) or the default.

    Raises:
        ConfigError: the configured journal file cannot be opened.
    """
    if config.journal is not None:
        try:
            return SpendJournal(config.journal)
        except OSError as exc:
            raise ConfigError(
                f"ledger: journal {config.journal!r} cannot be opened: {exc.strerror or exc}"
            ) from None
    path = default_journal_path(config.ledger) if owns_ledger else None
    if path is None:
        return None
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return SpendJournal(path)
    except OSError:
        # A default that cannot be written must not stop the agent: outages lose spend.
        logger.warning("cannot open the budget journal %s; running without one", path)
        return None


def _display_text(unit: str, amount: int) -> str:
    """An amount for a message: ``$0.0225`` for money, ``1200 tokens`` otherwise."""
    if unit == "usd":
        return f"${amount / MICROS_PER_USD:.6g}"
    return f"{amount} {unit}"


def _component(exc: Exception) -> str:
    """Where a failure is counted: the ledger's own failures apart from the rest."""
    return "budget_ledger" if isinstance(exc, LedgerError) else "budget"


_USD_MAX = AMOUNT_MAX / MICROS_PER_USD


def _failure(exc: Exception) -> str:
    if isinstance(exc, LedgerError):
        return "the budget ledger is unavailable"
    return "checking the budgets failed"


def _micros(usd: float | None) -> int | None:
    """USD as integer micro-USD in ``[0, AMOUNT_MAX]``, or None when unknown.

    A figure that is not a finite number counts as unknown; a negative one as 0 (it must
    not mint budget); a huge one is clamped (above every limit, so it is refused).
    """
    if type(usd) is float and 0.0 <= usd <= _USD_MAX:  # the hot path: a plain price
        return round(usd * MICROS_PER_USD)
    if usd is None or isinstance(usd, bool) or not isinstance(usd, (int, float)):
        return None
    if not math.isfinite(usd):
        return None
    if usd <= 0:
        return 0
    return min(round(usd * MICROS_PER_USD), AMOUNT_MAX)


def _tokens(tokens: float) -> int:
    """A token count as an integer in ``[0, AMOUNT_MAX]``; anything that is no count is 0."""
    if type(tokens) is int and 0 <= tokens <= AMOUNT_MAX:  # the hot path
        return tokens
    if isinstance(tokens, bool) or not isinstance(tokens, (int, float)):
        return 0
    if isinstance(tokens, float):
        if not math.isfinite(tokens):
            return 0
        tokens = math.ceil(tokens)
    return min(max(tokens, 0), AMOUNT_MAX)
