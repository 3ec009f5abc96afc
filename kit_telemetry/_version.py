"""The package version: the one place it is written (hatchling reads it for the build)."""

from __future__ import annotations

__version__ = "0.1.0"
