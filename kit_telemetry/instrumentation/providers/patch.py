"""``MethodPatch``: one public method of an SDK class, replaced by a wrapper and restored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]
"""Builds the replacement of a method from the method it replaces."""


class MethodPatch:
    """Replaces ``owner.name`` with ``wrap(owner.name)`` until ``remove()``.

    Only the class attribute is swapped, through ``setattr``: nothing private of the SDK is
    read or written. When something else wrapped the method after us (another
    instrumentation), removing ours would remove theirs too, so ours stays in place and
    the caller makes it pass calls straight through instead.

    Args:
        owner: the SDK's public resource class, e.g. ``openai.resources.chat.Completions``.
        name: the method, e.g. ``"create"``.
        wrap: builds the replacement from the original.
    """

    def __init__(self, owner: type, name: str, wrap: Wrapper) -> None:
        self.owner = owner
        self.name = name
        self._wrap = wrap
        self._original: Callable[..., Any] | None = None
        self._installed: Callable[..., Any] | None = None

    @property
    def applied(self) -> bool:
        """Our wrapper is in the class (possibly under someone else's)."""
        return self._installed is not None

    def apply(self) -> None:
        """Install the wrapper (again a no-op while it is installed)."""
        if self._installed is not None:
            return
        original = vars(self.owner)[self.name]
        installed = self._wrap(original)
        setattr(self.owner, self.name, installed)
        self._original, self._installed = original, installed

    def remove(self) -> bool:
        """Put the original back; False when another wrapper sits on ours (ours stays)."""
        if self._installed is None:
            return True
        if vars(self.owner).get(self.name) is not self._installed:
            return False
        setattr(self.owner, self.name, self._original)
        self._original = self._installed = None
        return True
