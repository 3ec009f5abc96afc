"""Session-wide checks.

``./dev test`` runs the suite twice and says which build each pass is for, so that one
cannot pass for the other (nothing runs if it does):

- ``KIT_TELEMETRY_EXPECT_COMPILED=0``: pure Python, no compiled module loaded (a stray
  compiled file beside the sources would shadow them);
- ``KIT_TELEMETRY_EXPECT_COMPILED=1``: the compiled build, every module that
  ``pyproject.toml`` lists for mypyc loaded compiled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import kit_telemetry as kt

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def mypyc_modules() -> list[str]:
    """The modules ``pyproject.toml`` has mypyc compile, as dotted names."""
    config = tomllib.loads(PYPROJECT.read_text())
    hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    return sorted(path.removesuffix(".py").replace("/", ".") for path in hook["include"])


def pytest_configure(config: pytest.Config) -> None:
    expected = os.environ.get("KIT_TELEMETRY_EXPECT_COMPILED")
    compiled = kt.compiled_modules()
    where = f"kit_telemetry imported from {Path(kt.__file__).parent}"
    if expected == "0" and compiled:
        raise pytest.UsageError(
            f"KIT_TELEMETRY_EXPECT_COMPILED=0 but {list(compiled)} are compiled ({where})"
        )
    if expected == "1":
        missing = [name for name in mypyc_modules() if name not in compiled]
        if missing:
            raise pytest.UsageError(
                f"KIT_TELEMETRY_EXPECT_COMPILED=1 but {missing} are pure Python ({where})"
            )


def pytest_report_header(config: pytest.Config) -> str:
    compiled = kt.compiled_modules()
    return (
        f"kit-telemetry build: {'compiled: ' + ', '.join(compiled) if compiled else 'pure Python'}"
    )
