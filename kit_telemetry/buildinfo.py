"""Which build is running: pure Python, or with some modules compiled by mypyc.

The compiled build is opt-in (see ``pyproject.toml``); both behave alike, the compiled one
is faster on the span path.
"""

from __future__ import annotations

import sys
from importlib.machinery import EXTENSION_SUFFIXES


def compiled_modules() -> tuple[str, ...]:
    """The names of kit-telemetry's loaded modules that are compiled; () for pure Python."""
    return tuple(
        sorted(
            name
            for name, module in list(sys.modules.items())
            if name.startswith("kit_telemetry.")
            and str(getattr(module, "__file__", "")).endswith(tuple(EXTENSION_SUFFIXES))
        )
    )
