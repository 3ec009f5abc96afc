"""A module that imports fine but has no ``setup(api)``."""

from __future__ import annotations

SETUP = "this is not a function"
