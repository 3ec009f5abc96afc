"""The shape of the package: public APIs of its dependencies only, no generated code, no cycles.

These read the package's source (``ast``), so they hold for code paths no other test runs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kit_telemetry"
DEPENDENCIES = ("opentelemetry", "prometheus_client")


def _sources(root: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_private_names(root: Path) -> set[str]:
    """Every private name a package defines: functions, attributes it assigns, slots."""
    names: set[str] = set()
    for _, tree in _sources(root):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # __slots__ entries, names given to getattr
    return {name for name in names if _is_private(name)}


def _private_accesses(tree: ast.Module) -> Iterator[tuple[int, str, str]]:
    """(line, name, code) of each private member read or written on an object not ``self``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            yield node.lineno, node.attr, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
        ):
            yield node.lineno, node.args[1].value, ast.unparse(node)


def _dependency_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, name
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def dependency_private_names() -> dict[str, set[str]]:
    return {name: _defined_private_names(_dependency_root(name)) for name in DEPENDENCIES}


def test_no_private_member_of_opentelemetry_or_prometheus_client_is_touched(
    dependency_private_names: dict[str, set[str]],
) -> None:
    """An upgrade of a dependency must not break us silently: its public API only."""
    found = []
    for path, tree in _sources(PACKAGE):
        for line, name, code in _private_accesses(tree):
            # Strict on purpose: a private name that a dependency also defines is not read
            # or written on any object but ``self``, ours included (they could be theirs).
            owners = [dep for dep, names in dependency_private_names.items() if name in names]
            if owners:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {code} ({owners[0]})")
    assert found == []


def test_no_private_hook_of_a_dependency_is_overridden() -> None:
    """Subclasses of OpenTelemetry or prometheus-client classes override public methods only.

    (A private hook such as ``SpanProcessor._on_ending`` may change or vanish in any release.)
    """
    found = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="kit_telemetry."):
        if info.name.endswith(".__main__"):
            continue  # runs the CLI
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            theirs = [
                base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in DEPENDENCIES
            ]
            for name, value in vars(cls).items():
                if not inspect.isfunction(value):
                    continue  # hooks are methods (ABC machinery sets private data too)
                if _is_private(name) and any(name in vars(base) for base in theirs):
                    found.append(f"{cls.__qualname__}.{name}")
    assert found == []


def test_no_private_module_or_name_of_a_dependency_is_imported() -> None:
    found = []
    for path, tree in _sources(PACKAGE):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                top = node.module.split(".")[0]
                parts = node.module.split(".") + [alias.name for alias in node.names]
                if top in DEPENDENCIES and any(_is_private(part) for part in parts):
                    found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] in DEPENDENCIES and any(_is_private(p) for p in parts):
                        found.append(f"{path.name}:{node.lineno}: import {alias.name}")
    assert found == []


def test_the_package_generates_no_code_and_reassigns_no_class() -> None:
    """A user reads the same code that runs (no exec, no __class__ assignment)."""
    found = []
    for path, tree in _sources(PACKAGE):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("exec", "eval", "compile")
                # Importing an extension's file is running the user's code, not ours.
                and path != PACKAGE / "extensions" / "loader.py"
            ):
                found.append(f"{path.name}:{node.lineno}: {node.func.id}()")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "__class__"
                and isinstance(node.ctx, ast.Store)
            ):
                found.append(f"{path.name}:{node.lineno}: __class__ assignment")
    assert found == []


def _imports_by_unit() -> dict[str, set[str]]:
    """kit_telemetry's top-level units (``telemetry``, ``budgets``...) and what each imports.

    Imports under ``TYPE_CHECKING`` and inside functions count too.
    """
    units: dict[str, set[str]] = {}
    for path, tree in _sources(PACKAGE):
        relative = path.relative_to(PACKAGE).with_suffix("")
        unit = relative.parts[0]
        package = ["kit_telemetry", *relative.parts[:-1]]
        deps = units.setdefault(unit, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    module = [*base, *(node.module.split(".") if node.module else [])]
                else:
                    module = (node.module or "").split(".")
                if module[0] != "kit_telemetry":
                    continue
                if len(module) > 1:
                    deps.add(module[1])
                else:  # from kit_telemetry import x: the unit named x
                    deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "kit_telemetry" and len(parts) > 1:
                        deps.add(parts[1])
        deps.discard(unit)
    return {unit: {d for d in deps if d in units} for unit, deps in units.items()}


def test_no_import_cycle_between_the_packages_of_the_sdk() -> None:
    """instrumentation, telemetry, budgets, extensions... depend on each other one way only."""
    graph = _imports_by_unit()
    assert {"instrumentation", "telemetry", "budgets", "extensions", "_runtime"} <= set(graph)
    cycles = []
    for start in sorted(graph):
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            unit = stack.pop()
            if unit == start:
                cycles.append(start)
                break
            if unit not in seen:
                seen.add(unit)
                stack.extend(graph[unit])
    assert cycles == []


def test_the_handles_know_only_the_runtime() -> None:
    """Session, Run, Turn, LLMCall and ToolCall never import Telemetry, even for typing."""
    graph = _imports_by_unit()
    assert "telemetry" not in graph["instrumentation"]
    assert "_runtime" in graph["instrumentation"]
    assert not graph["budgets"] & {"instrumentation", "telemetry", "extensions"}
