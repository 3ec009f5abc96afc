"""``Session``: one conversation, whose id every span in it carries."""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from opentelemetry.util.types import AttributeValue

from .. import semconv as sc
from ..events import SessionEndEvent
from ..text import MAX_PATH_CHARS, clean_text
from ..tracing import PAYLOADS, SESSION_END, SpanPayload
from ..validation.checks import (
    check_attributes,
    check_flag,
    check_path,
    check_text,
    new_session_id,
)
from .context import ROOT_CONTEXT, _current_session
from .run import Run
from .scope import mark_error

if TYPE_CHECKING:
    from .._runtime import Runtime
    from ..state import SessionState


class Session:
    """One conversation: every span in it carries its id as ``gen_ai.conversation.id``.

    Opened with ``tel.session(...)``; its start and end are short ``kit.session.start`` and
    ``kit.session.end`` spans (the end span carries the session totals).
    """

    def __init__(
        self,
        runtime: Runtime,
        session_id: str | None,
        *,
        session_file: str | os.PathLike[str] | None = None,
        user: str | None = None,
        subscription: bool = False,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self._runtime = runtime
        errors = runtime.errors
        self.session_id = check_text(errors, "session.session_id", session_id) or new_session_id()
        self.session_file = check_path(errors, "session.session_file", session_file)
        self.user = check_text(errors, "session.user", user)
        self.subscription = check_flag(errors, "session.subscription", subscription)
        self.attributes = check_attributes(errors, "session.attributes", attributes)
        self.end_event: SessionEndEvent | None = None
        self._state: SessionState | None = None
        self._token: contextvars.Token[Session | None] | None = None
        self._started = False
        self._ended = False

    @property
    def state(self) -> SessionState:
        """This session's key-value store (shared by all extensions of the session)."""
        if self._state is None:
            self._state = self._runtime.state(self.session_id, self.session_file)
        return self._state

    def start(self) -> None:
        """Open the session (``with`` does this)."""
        if self._started:
            return
        self._started = True
        self._runtime.session_started(
            self.session_id, self.session_file, subscription=self.subscription
        )
        attributes: dict[str, AttributeValue] = {sc.GEN_AI_CONVERSATION_ID: self.session_id}
        if self.session_file is not None:
            # A name the OS gave may hold undecodable bytes: the file keeps it, the span not.
            attributes[sc.KIT_SESSION_FILE] = clean_text(
                self.session_file, max_chars=MAX_PATH_CHARS
            )
        if self.user is not None:
            attributes[sc.KIT_SESSION_USER] = self.user
        self._runtime.tracer.start_span(
            sc.SPAN_SESSION_START, context=ROOT_CONTEXT, attributes=attributes
        ).end()

    def end(self, exc: BaseException | None = None) -> None:
        """Close the session: emits ``session_end`` with the totals, flushes its state."""
        runtime = self._runtime
        if self._ended:
            runtime.errors.bad_input("Session.end", f"session {self.session_id!r} was ended twice")
            return
        self._ended = True
        payload = SpanPayload(SESSION_END, self.session_id)
        span = runtime.tracer.start_span(
            sc.SPAN_SESSION_END,
            context=ROOT_CONTEXT,
            attributes={sc.GEN_AI_CONVERSATION_ID: self.session_id},
        )
        PAYLOADS.bind(span.get_span_context().span_id, payload)
        if exc is not None:
            mark_error(span, exc)
        end_ns = time.time_ns()
        try:
            span.set_attributes(runtime.session_attributes(self.session_id, end_ns))
            span.end(end_time=end_ns)
        finally:  # a strict handler may raise out of end(): the payload still goes
            PAYLOADS.unbind(span.get_span_context().span_id)
        if isinstance(payload.end_event, SessionEndEvent):
            self.end_event = payload.end_event
        runtime.session_ended(self.session_id)

    def run(
        self,
        prompt: str | None = None,
        *,
        agent_name: str = "agent",
        agent_id: str | None = None,
        provider: str | None = None,
        system_instructions: str | None = None,
    ) -> Run:
        """A new agent run in this session (use it with ``with``).

        A prompt that is not a string (a list of messages, for instance) is recorded as its
        JSON text in events, and as chat messages in ``gen_ai.input.messages``.

        Args:
            prompt: the user's input.
            agent_name: ``gen_ai.agent.name``.
            agent_id: ``gen_ai.agent.id``, when the agent has one.
            provider: ``gen_ai.provider.name`` of the run; when not given, the provider of
                its first LLM call (``_OTHER`` if it made none).
            system_instructions: the agent's system prompt (``gen_ai.system_instructions``,
                recorded with content capture only).
        """
        return Run(
            self,
            prompt,
            agent_name,
            agent_id=agent_id,
            provider=provider,
            system_instructions=system_instructions,
        )

    def __enter__(self) -> Session:
        self.start()
        self._token = _current_session.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.end(exc)
        finally:
            if self._token is not None:
                _current_session.reset(self._token)
                self._token = None

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
