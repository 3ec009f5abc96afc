"""prometheus-client's multi-process mode: the folder, the serving registry, dead workers.

The mode is on when ``PROMETHEUS_MULTIPROC_DIR`` is set before ``prometheus_client`` is
first imported (its documented switch, read once, at that import): every process writes
its own files; counters and histograms add up across processes, and the budget gauges
combine by the mode their ``MetricSpec`` names.

The serving process exposes ``multiprocess_registry()`` and calls ``mark_process_dead(pid)``
when a worker exits, so its gauges stop being reported.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client import multiprocess as _prom_multiprocess

from ..errors import ConfigError

# prometheus-client chooses where values live once, at its first import, from this switch
# (the lowercase name is its deprecated spelling). It is imported just above, so this reads
# what it read, unless something imported it earlier and the environment changed since.
_FILES_AT_IMPORT: Final = any(
    name in os.environ for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")
)


def multiprocess_dir() -> str | None:
    """The folder ``PROMETHEUS_MULTIPROC_DIR`` names now, or None when it is unset or empty."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def values_in_files() -> bool:
    """Whether prometheus-client writes values to multi-process files in this process.

    True when ``PROMETHEUS_MULTIPROC_DIR`` was set as ``prometheus_client`` was imported;
    setting it later does not switch the mode on.
    """
    return _FILES_AT_IMPORT


def multiprocess_registry(path: str | None = None) -> CollectorRegistry:
    """A fresh registry that collects every process's metrics, for the serving process.

    Args:
        path: the multi-process folder; defaults to ``PROMETHEUS_MULTIPROC_DIR``.

    Raises:
        ConfigError: no folder is given or set, or it is not a directory.
    """
    registry = CollectorRegistry()
    attach_multiprocess_collector(registry, path)
    return registry


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop a finished worker's live gauges (prometheus-client's ``mark_process_dead``).

    Counters and histograms of the worker are kept: they still add to the totals.
    """
    _prom_multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def attach_multiprocess_collector(registry: CollectorRegistry, path: str | None) -> None:
    """Make ``registry`` read every process's files (``path`` or ``PROMETHEUS_MULTIPROC_DIR``).

    Raises:
        ConfigError: the folder is not given, not set, or not a directory.
    """
    folder = path or multiprocess_dir()
    if not folder or not os.path.isdir(folder):
        raise ConfigError(
            f"multiprocess: folder {folder!r} is not a directory; set PROMETHEUS_MULTIPROC_DIR "
            "to an existing, empty directory before the worker processes start"
        )
    _prom_multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
