"""Importing extension modules from a file path or a module name."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ..errors import ExtensionLoadError


def is_path(spec: str | os.PathLike[str]) -> bool:
    """A file path (``ext/usage.py``, ``./x``) rather than a module name (``pkg.mod``)."""
    text = os.fspath(spec)
    return (
        text.endswith(".py") or os.sep in text or "/" in text or Path(text).expanduser().is_file()
    )


def extension_name(spec: str | os.PathLike[str]) -> str:
    """The name an extension is known by: the file's stem, or the module's dotted name."""
    text = os.fspath(spec)
    return Path(text).stem if is_path(text) else text


def import_extension(spec: str | os.PathLike[str]) -> tuple[ModuleType, str]:
    """Import an extension module; returns it and the path it came from.

    A file is executed afresh each time (so a reload picks up edits); a module name goes
    through the normal import system.

    Raises:
        ExtensionLoadError: the file is missing, or the import raised (syntax error, ...).
    """
    text = os.fspath(spec)
    name = extension_name(text)
    if is_path(text):
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise ExtensionLoadError(f"extension {name!r}: file {os.fspath(path)!r} does not exist")
        import hashlib

        digest = hashlib.sha1(os.fspath(path).encode()).hexdigest()[:10]
        module_name = f"kit_telemetry_extension_{path.stem}_{digest}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ExtensionLoadError(f"extension {name!r}: cannot import {os.fspath(path)!r}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            # Compiled from the source every time, never from a cached .pyc: a reload must
            # see an edit even when size and mtime (to the second) did not change.
            code = compile(path.read_bytes(), os.fspath(path), "exec")
            exec(code, module.__dict__)
        except BaseException as exc:
            sys.modules.pop(module_name, None)
            raise ExtensionLoadError(
                f"extension {name!r}: importing {os.fspath(path)!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return module, os.fspath(path)
    try:
        module = importlib.import_module(text)
    except BaseException as exc:
        raise ExtensionLoadError(
            f"extension {name!r}: importing module {text!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module, getattr(module, "__file__", None) or text


def reimport(spec: str, path: str) -> ModuleType:
    """Import an extension again from its source (for reloads)."""
    if is_path(spec):
        module, _ = import_extension(path)
        return module
    existing = sys.modules.get(spec)
    try:
        return importlib.reload(existing) if existing is not None else importlib.import_module(spec)
    except BaseException as exc:
        raise ExtensionLoadError(
            f"extension {spec!r}: reloading failed: {type(exc).__name__}: {exc}"
        ) from exc
