"""The current session, run and turn: context variables that follow asyncio tasks.

``attach`` makes a handle current in another thread; ``wrap`` carries the whole current
context into a function run elsewhere.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry.context import Context

if TYPE_CHECKING:
    from .calls import ToolCall
    from .run import Run, Turn
    from .session import Session

_T = TypeVar("_T")
ROOT_CONTEXT = Context()  # an empty context: runs and session spans start new traces

_current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "kit_telemetry_session", default=None
)
_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "kit_telemetry_run", default=None
)
_current_turn: contextvars.ContextVar[Turn | None] = contextvars.ContextVar(
    "kit_telemetry_turn", default=None
)
# The tool call whose block encloses this code: a run started here is its sub-agent.
_current_tool: contextvars.ContextVar[ToolCall | None] = contextvars.ContextVar(
    "kit_telemetry_tool", default=None
)


def current_session() -> Session | None:
    """The session whose block encloses this code (follows asyncio tasks), if any."""
    return _current_session.get()


def current_run() -> Run | None:
    """The run whose block encloses this code, if any."""
    return _current_run.get()


def current_turn() -> Turn | None:
    """The turn whose block encloses this code, if any."""
    return _current_turn.get()


@contextmanager
def attach(scope: Session | Run | Turn) -> Iterator[None]:
    """Make ``scope`` current in this thread (our context and OpenTelemetry's).

    Use it in a worker thread so that ``current_run()`` works there and spans made by other
    instrumentations nest under the scope's span::

        def work(run):
            with kt.attach(run):
                ...
    """
    from .run import Run
    from .session import Session

    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    otel_token = None
    if isinstance(scope, Session):
        tokens.append((_current_session, _current_session.set(scope)))
    elif isinstance(scope, Run):
        tokens.append((_current_session, _current_session.set(scope.session)))
        tokens.append((_current_run, _current_run.set(scope)))
        otel_token = context_api.attach(scope.context)
    else:
        tokens.append((_current_session, _current_session.set(scope.run.session)))
        tokens.append((_current_run, _current_run.set(scope.run)))
        tokens.append((_current_turn, _current_turn.set(scope)))
        otel_token = context_api.attach(scope.context)
    try:
        yield
    finally:
        if otel_token is not None:
            context_api.detach(otel_token)
        for var, token in reversed(tokens):
            var.reset(token)


def wrap(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Bind ``fn`` to the current context, to run it in another thread.

    Each call runs in its own copy of the context captured now, so the wrapped function
    may run in several threads at once.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> _T:
        return captured.copy().run(fn, *args, **kwargs)

    return wrapped
