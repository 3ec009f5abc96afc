"""Session state: a per-session key-value store mirrored to a sidecar file.

Modules, one noun each: ``store`` (:class:`SessionState`, its locks, durability modes and
batched writer), ``sidecar`` (the file: its path, atomic replacement, loading and setting
aside a corrupt one) and ``values`` (what a value may be, and private copies of it).
"""

from __future__ import annotations

from .sidecar import STATE_SUFFIX, sidecar_path
from .store import Durability, SessionState

__all__ = [
    "STATE_SUFFIX",
    "Durability",
    "SessionState",
    "sidecar_path",
]
