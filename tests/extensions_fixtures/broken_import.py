"""An extension whose import fails: it needs a module that does not exist."""

from __future__ import annotations

import kit_telemetry_no_such_dependency  # type: ignore[import-not-found]  # noqa: F401


def setup(api: object) -> None:
    pass
