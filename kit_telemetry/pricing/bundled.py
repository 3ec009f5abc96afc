"""The bundled prices of this process: genai-prices' data, loaded once from a disk cache.

genai-prices is never imported here: its data is extracted once per installed version by
:mod:`kit_telemetry.pricing.extract` in a child process (about half a second of CPU, and the
30 MiB of pydantic stay in the child), cached as JSON under the user's cache directory and
read back with the stdlib (about 10 ms and 3 MiB). The cache is named after the format and
genai-prices' data file (path, size, modification time), so an upgrade of either builds a
new one; it lives in ``$KIT_TELEMETRY_CACHE_DIR``, else ``$XDG_CACHE_HOME/kit-telemetry``,
else ``~/.cache/kit-telemetry``. Where no cache can be written the child's output is used
directly, and where no child process can be started the data is extracted in-process.

:meth:`BundledPrices.preload` (``Telemetry`` calls it at configure) reads a cache that is
there at once, and otherwise starts building it on a background thread;
:meth:`BundledPrices.catalogue` waits for that build.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from .catalogue import PriceCatalogue

__all__ = ["BUNDLED", "BundledPrices"]

logger = logging.getLogger("kit_telemetry")

_CHILD_TIMEOUT_S = 120.0
_LOAD_ATTEMPTS = 2
# A load that failed is tried again on the first lookup this long after, not latched empty.
_RETRY_AFTER_S = 5.0
# Runs extract.py as a script in a child interpreter, without the script's directory on
# sys.path (its modules would shadow others) and without importing kit_telemetry.
_CHILD_CODE = (
    "import sys; del sys.path[0]; import runpy; runpy.run_path(sys.argv[1], run_name='__main__')"
)

_LOADERS: weakref.WeakSet[BundledPrices] = weakref.WeakSet()


def default_cache_dir() -> Path:
    """Where price caches are kept: see the module docstring."""
    explicit = os.environ.get("KIT_TELEMETRY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kit-telemetry"


class BundledPrices:
    """genai-prices' bundled data for this process, loaded once and then shared.

    Thread-safe; after a fork, a load the parent had not finished starts again in the child.

    Args:
        cache_dir: the cache directory; :func:`default_cache_dir` when None.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._cache_dir = None if cache_dir is None else Path(cache_dir)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._catalogue: PriceCatalogue | None = None
        self._started = False
        self._failed_at: float | None = None  # time.monotonic() of a load that failed
        _LOADERS.add(self)

    @property
    def loaded(self) -> bool:
        """The data is in memory: :meth:`catalogue` returns at once."""
        return self._done.is_set()

    def preload(self) -> None:
        """Read the cache now if it is there (milliseconds), else build it in the background.

        Idempotent; never raises (a failure leaves the bundled data empty, logged once).
        """
        with self._lock:
            if self._started:
                return
            self._started = True
        try:
            # Here rather than on a thread of its own, which would hold the GIL against the
            # agent's first calls for a switch interval (5 ms) at a time.
            cached = self._read_cache()
        except Exception:  # e.g. genai-prices missing: the loading thread reports it
            cached = None
        if cached is not None:
            self._finish(cached)
            return
        threading.Thread(target=self._load, name="kit-telemetry-prices", daemon=True).start()

    def catalogue(self) -> PriceCatalogue:
        """The bundled data: loaded (or built) on first use, waited for while it loads.

        After a failed load the data is empty; the first call :data:`_RETRY_AFTER_S` later
        loads it again (a transient failure must not leave the process unpriced for good).
        """
        if self._failed_at is not None:
            self._retry_failed_load()
        if not self._done.is_set():
            with self._lock:
                start = not self._started
                self._started = True
            if start:
                self._load()
            self._done.wait()
        assert self._catalogue is not None  # set before _done
        return self._catalogue

    def _retry_failed_load(self) -> None:
        with self._lock:
            failed_at = self._failed_at
            if failed_at is None or time.monotonic() - failed_at < _RETRY_AFTER_S:
                return
            self._failed_at = None  # this caller retries; the others keep the empty data
        self._load()

    def _finish(self, catalogue: PriceCatalogue) -> None:
        self._catalogue = catalogue
        self._done.set()

    def _load(self) -> None:
        catalogue = None
        try:
            for attempt in range(_LOAD_ATTEMPTS):
                try:
                    catalogue = self._read_cache() or self._build()
                    break
                except Exception:
                    if attempt + 1 == _LOAD_ATTEMPTS:
                        raise
                    # Another process may be writing the same cache: read or build again.
                    logger.debug("kit-telemetry: loading the bundled prices failed", exc_info=True)
        except Exception:
            # Broken or missing genai-prices must not break the agent: models go unpriced.
            self._failed_at = time.monotonic()
            logger.warning(
                "kit-telemetry: the bundled prices could not be loaded; "
                "models without an override are unpriced until a later load succeeds",
                exc_info=True,
            )
        finally:
            self._finish(catalogue or PriceCatalogue.empty())

    def _cache_path(self) -> Path:
        from hashlib import sha256
        from importlib.util import find_spec

        from .extract import FORMAT

        spec = find_spec("genai_prices")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("genai-prices is not installed: no bundled prices")
        data = Path(next(iter(spec.submodule_search_locations))) / "data.py"
        stat = data.stat()
        identity = f"{data}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        cache_dir = self._cache_dir or default_cache_dir()
        return cache_dir / f"prices-v{FORMAT}-{sha256(identity).hexdigest()[:24]}.json"

    def _read_cache(self) -> PriceCatalogue | None:
        """The cached catalogue, its rules compiled; None when missing, unreadable or damaged."""
        path = self._cache_path()
        try:
            catalogue = PriceCatalogue(json.loads(path.read_text(encoding="utf-8")))
            catalogue.compile_rules()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, LookupError, TypeError, re.error) as exc:
            logger.debug("kit-telemetry: price cache %s not used: %s", path, exc)
            return None  # built again
        return catalogue

    def _build(self) -> PriceCatalogue:
        path = self._cache_path()
        try:
            text = _extract_in_child()
        except (OSError, subprocess.SubprocessError) as exc:
            logger.debug("kit-telemetry: price extraction in a child failed: %s", exc)
            from .extract import catalogue_document

            text = json.dumps(catalogue_document(), separators=(",", ":"))
        catalogue = PriceCatalogue(json.loads(text))
        try:
            catalogue.compile_rules()
        except re.error as exc:  # the rule that does not compile fails alone, when met
            logger.debug("kit-telemetry: a price match rule does not compile: %s", exc)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)  # atomic: a reader sees the whole file or none
        except OSError as exc:
            logger.debug("kit-telemetry: price cache %s not written: %s", path, exc)
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        return catalogue

    def _reset_after_fork(self) -> None:
        # The thread that was loading exists only in the parent: start again if needed.
        self._lock = threading.Lock()
        if not self._done.is_set():
            self._done = threading.Event()
            self._started = False


def _extract_in_child() -> str:
    if not sys.executable or getattr(sys, "frozen", False):
        raise OSError("no Python interpreter to run the extraction in")
    script = Path(__file__).with_name("extract.py")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD_CODE, os.fspath(script)],
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise subprocess.SubprocessError(
            f"exit {result.returncode}: {result.stderr.strip()[-500:]}"
        )
    return result.stdout


def _after_fork_in_child() -> None:
    for loader in list(_LOADERS):
        loader._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

BUNDLED = BundledPrices()
"""The process-wide bundled prices, shared by every :class:`PriceTable`."""
