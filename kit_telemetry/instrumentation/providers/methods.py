"""The wrappers that replace an SDK's ``create`` methods, sync and async.

Each runs the same steps around the original method: read the request, open and admit a
``ProviderCall`` (a refusal raises ``BudgetExceeded`` before anything is sent), send the
request with the call's span current, then end the call from the response, or hand back
an observed stream that ends it when the stream ends. Failures of ours before the request
is sent are reported and the request goes out uninstrumented: telemetry never stops the
agent's call, only a budget does.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ...errors import Blocked, BudgetExceeded
from .call import CallHost, ProviderCall, ProviderHooks, StreamReader, inside_call
from .streams import (
    ObservedAsyncStream,
    ObservedAsyncStreamManager,
    ObservedStream,
    ObservedStreamManager,
)


class Switch(Protocol):
    """Turns the wrappers of one instrumentor on and off, per provider."""

    def is_active(self, provider: str) -> bool:
        """The provider's wrappers instrument calls (False: they call the original)."""


class Host(CallHost, Switch, Protocol):
    """The instrumentor, as the wrappers see it."""


def _open(hooks: ProviderHooks, host: Host, kwargs: dict[str, Any]) -> ProviderCall | None:
    """The admitted call, or None when the request goes out uninstrumented.

    Raises:
        BudgetExceeded: a budget refused the call.
        Blocked: the run was stopped, or an ``llm_request`` handler blocked the call.
    """
    if inside_call() or not host.is_active(hooks.provider):
        return None
    try:
        facts = hooks.read_request(kwargs)
        return ProviderCall.open(hooks, facts, host)
    except (BudgetExceeded, Blocked):
        raise  # refusals are for the agent: the request must not be sent
    except Exception as exc:
        host.errors.failed("instrument", exc)
        return None


def sync_method(
    hooks: ProviderHooks, host: Host
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Builds the wrapper of a sync ``create``."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def create(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _open(hooks, host, kwargs)
            if call is None:
                return original(self, *args, **kwargs)
            try:
                with call.sending():
                    result = original(self, *args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            if call.facts.stream:
                return ObservedStream(result, call, hooks.new_stream_reader())
            call.finish_response(result)
            return result

        return create

    return wrap


def async_method(
    hooks: ProviderHooks, host: Host
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Builds the wrapper of an async ``create``."""

    def wrap(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(original)
        async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _open(hooks, host, kwargs)
            if call is None:
                return await original(self, *args, **kwargs)
            try:
                with call.sending():
                    result = await original(self, *args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            if call.facts.stream:
                return ObservedAsyncStream(result, call, hooks.new_stream_reader())
            call.finish_response(result)
            return result

        return create

    return wrap


def stream_helper(
    hooks: ProviderHooks, host: Host, read_stream: Callable[[Any], StreamReader], *, is_async: bool
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Builds the wrapper of an SDK stream helper (``client.messages.stream``).

    The helper returns a manager and sends nothing until its block is entered: the call
    is opened and admitted then (``BudgetExceeded`` from the ``with`` line), before the
    SDK's own manager is made.
    """
    manager_type = ObservedAsyncStreamManager if is_async else ObservedStreamManager

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not host.is_active(hooks.provider):
                return original(self, *args, **kwargs)
            return manager_type(
                lambda: original(self, *args, **kwargs),
                lambda: _open(hooks, host, kwargs),
                read_stream,
            )

        return stream

    return wrap
