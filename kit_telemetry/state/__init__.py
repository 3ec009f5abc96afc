"""Session state: a per-session key-value store mirrored to a sidecar file.

Modules, one noun each: ``store`` (:class:`SessionState`, its locks, durability modes and
batched writer, and giving up state that cannot be saved), ``sidecar`` (the file: its path,
atomic replacement, loading, and setting aside a corrupt or stale one). What a value may be
is :mod:`kit_telemetry.json_values`, shared with the validation table.
"""

from __future__ import annotations

from .sidecar import STATE_SUFFIX, sidecar_path
from .store import Durability, SessionState, StateNotSavedError

__all__ = [
    "STATE_SUFFIX",
    "Durability",
    "SessionState",
    "StateNotSavedError",
    "sidecar_path",
]
