"""``ProviderInstrumentor``: which provider SDKs are patched, and undoing it."""

from __future__ import annotations

import importlib
import threading
import uuid
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ..session import Session
from .patch import MethodPatch

if TYPE_CHECKING:
    from ..._errors import ErrorPolicy
    from ..._runtime import Runtime

PROVIDERS = ("anthropic", "openai")
"""The SDKs ``instrument`` knows; each is a module of this package and an optional extra."""


class ProviderInstrumentor:
    """Patches provider SDKs so that their calls become kit LLM calls.

    Args:
        runtime: what the implicit runs of calls made outside any session use.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._patches: dict[str, list[MethodPatch]] = {}
        self._active: frozenset[str] = frozenset()
        self._session: Session | None = None

    @property
    def errors(self) -> ErrorPolicy:
        """Where internal failures and bad provider answers are reported."""
        return self._runtime.errors

    @property
    def instrumented(self) -> tuple[str, ...]:
        """The providers whose SDK calls are instrumented now, sorted."""
        return tuple(sorted(self._active))

    def is_active(self, provider: str) -> bool:
        """The provider's patched methods instrument calls."""
        return provider in self._active

    def implicit_session(self) -> Session:
        """The session of the implicit runs of calls made outside any session.

        One per instrumentor, so their calls add up in one session's totals; it has no
        start or end span of its own.
        """
        with self._lock:
            if self._session is None:
                self._session = Session(self._runtime, f"implicit-{uuid.uuid4().hex}")
            return self._session

    def instrument(self, *providers: str) -> None:
        """Patch the SDKs of ``providers`` (each at most once; again is a no-op).

        Raises:
            ConfigError: a provider is not one of ``PROVIDERS``, or its SDK is not installed.
        """
        for provider in providers:
            if provider not in PROVIDERS:
                raise ConfigError(
                    f"instrument: provider {provider!r} is not one of {', '.join(PROVIDERS)}"
                )
        with self._lock:
            for provider in providers:
                patches = self._patches.get(provider)
                if patches is None:
                    patches = self._patches[provider] = _patches_of(provider, self)
                for patch in patches:
                    patch.apply()
                self._active |= {provider}

    def uninstrument(self) -> None:
        """Restore every patched method; a no-op when nothing is instrumented.

        A method that another instrumentation wrapped after us cannot be restored without
        removing its wrapper too: ours stays under it and passes calls straight through.
        """
        with self._lock:
            self._active = frozenset()
            for provider, patches in list(self._patches.items()):
                removed = [patch.remove() for patch in patches]  # every one, no short cut
                if all(removed):
                    del self._patches[provider]


def _patches_of(provider: str, instrumentor: ProviderInstrumentor) -> list[MethodPatch]:
    module = importlib.import_module(f"{__package__}.{provider}")
    try:
        patches: list[MethodPatch] = module.patches(instrumentor)
    except ImportError as exc:
        raise ConfigError(
            f"instrument: provider {provider!r} needs the {provider} package, which is not "
            f"installed ({exc}); install it with: pip install 'kit-telemetry[{provider}]'"
        ) from exc
    return patches
