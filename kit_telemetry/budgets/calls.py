"""A budgeted call: who makes it (``CallScope``) and what it holds (``Admission``).

Reservation ids, unique across threads, processes and machines, name each admission's
reservation in the ledger.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._fork import after_fork_in_child

if TYPE_CHECKING:
    from .ledger import Counter

__all__ = ["Admission", "CallScope", "LLMRequest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallScope:
    """Who is making a call: what budgets match on and count separately.

    Attributes:
        session_id: the session (scope ``session``).
        run_id: the agent run (scope ``run``).
        user: the session's user (scope ``user``); budgets with that scope skip calls
            without one.
        provider: e.g. ``anthropic``.
        model: e.g. ``claude-sonnet-4-5``.
        agent: the agent's name.
        attributes: extra keys for ``attribute:<key>`` scopes and matches.
    """

    session_id: str
    run_id: str
    user: str | None = None
    provider: str = ""
    model: str = ""
    agent: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMRequest:
    """An LLM call about to be made: what admission needs to know, as plain values.

    Attributes:
        scope: who is calling.
        max_tokens: the most output tokens the call may produce; None when not given.
        estimated_input_tokens: the input tokens expected (the caller's estimate); None
            when not given. Either count that is not a non-negative int counts as not
            given: admission then reserves the configured defaults, so a call without
            sizes never reserves nothing and concurrent calls stay within the limit.
        largest_input_tokens: the largest input of the run's earlier calls (0: none yet),
            reserved for an unknown estimate.
        subscription: the session is billed by subscription (its calls cost 0).
        content: the request sent (messages, tools), compared by ``max_repeats`` loop
            guards; None leaves the call out of them.
    """

    scope: CallScope
    max_tokens: int | None = None
    estimated_input_tokens: int | None = None
    largest_input_tokens: int = 0
    subscription: bool = False
    content: object = None


class Admission:
    """A call's reservation, handed to ``settle`` or ``release`` exactly once.

    Attributes:
        scope: the call's scope.
        reservation_id: the ledger's name for the reservation.
        amounts: the counters and what was reserved on each.
        ledger_failed: the ledger could not be reached and the call was let in anyway
            (``on_ledger_error = "allow"``).
    """

    __slots__ = ("_done", "amounts", "ledger_failed", "reservation_id", "scope")

    def __init__(
        self,
        scope: CallScope,
        reservation_id: str,
        amounts: list[tuple[Counter, int]],
        *,
        ledger_failed: bool = False,
    ) -> None:
        self.scope = scope
        self.reservation_id = reservation_id
        self.amounts = amounts
        self.ledger_failed = ledger_failed
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the admission was settled or released already."""
        return self._done

    def finish(self) -> bool:
        """Mark the admission settled or released; False if it already was (do nothing)."""
        if self._done:
            return False
        self._done = True
        return True

    def __repr__(self) -> str:
        budgets = sorted({counter.budget for counter, _ in self.amounts})
        return f"Admission({self.reservation_id!r}, budgets={budgets}, done={self._done})"


class _ReservationIds:
    """Reservation ids unique across threads, processes and machines."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.tag = uuid.uuid4().hex[:12]
        self.numbers = itertools.count()  # next() on a count is atomic in CPython


_reservation_ids = _ReservationIds()
# A child forked from one parent must not reuse the parent's ids on a shared ledger.
after_fork_in_child(_reservation_ids, _ReservationIds.renew)
