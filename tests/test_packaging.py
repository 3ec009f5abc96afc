"""The distribution's metadata: one version, the MIT licence shipped, classifiers that hold."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import kit_telemetry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_installed_version_is_the_package_version() -> None:
    """pip, the OTel tracer's version and `kit-telemetry --version` must all say the same."""
    assert importlib.metadata.version("kit-telemetry") == kit_telemetry.__version__


def test_version_is_written_in_one_place() -> None:
    """pyproject reads the version from _version.py instead of repeating it."""
    project = _pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    path = REPO / project["tool"]["hatch"]["version"]["path"]
    match = re.search(r'^__version__ = "([^"]+)"$', path.read_text(encoding="utf-8"), re.M)
    assert match is not None
    assert match.group(1) == kit_telemetry.__version__
    written = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "kit_telemetry").rglob("*.py")
        if re.search(r"^__version__ = ", p.read_text(encoding="utf-8"), re.M)
    ]
    assert written == [path.relative_to(REPO).as_posix()]


def test_license_file_is_mit_and_referenced_by_pyproject() -> None:
    """MIT is declared, so the licence text must ship with the distribution."""
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) the kit-telemetry authors" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    project = _pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    metadata = importlib.metadata.metadata("kit-telemetry")
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["License-Expression"] == "MIT"


def test_classifiers_match_requires_python_and_typing() -> None:
    """The Python classifiers are exactly the versions from requires-python up to 3.13."""
    classifiers = importlib.metadata.metadata("kit-telemetry").get_all("Classifier") or []
    versions = sorted(
        (int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c)),
    )
    assert versions == [10, 11, 12, 13]
    assert _pyproject()["project"]["requires-python"] == ">=3.10"
    assert "Typing :: Typed" in classifiers
    assert (REPO / "kit_telemetry" / "py.typed").is_file()
    assert "License :: OSI Approved :: MIT License" in classifiers
    assert "Topic :: System :: Monitoring" in classifiers
