"""The one fork idiom: reset an object's threads and locks in a forked child."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def after_fork_in_child(owner: _T, reset: Callable[[_T], None]) -> None:
    """Call ``reset(owner)`` in every child forked from now on, without keeping it alive.

    A child inherits locks that threads of the parent may hold, and none of those
    threads: ``reset`` gives the child fresh ones. Does nothing where ``fork`` does not exist.
    """
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(owner)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            reset(alive)

    os.register_at_fork(after_in_child=after_in_child)
