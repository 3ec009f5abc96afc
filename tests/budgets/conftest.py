"""Fixtures for the budget tests: a real redis-server, ledgers of every backend, a fake clock."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from kit_telemetry.budgets.ledger import LedgerBackend
from kit_telemetry.budgets.memory import MemoryLedger
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.sqlite import SQLiteLedger

BACKENDS = ("memory", "sqlite", "redis")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process started for the test session."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _start_redis(directory: Path) -> RedisServer:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    last_error = ""
    for _ in range(3):  # a port picked as free can be taken before the server binds it
        port = free_port()
        process = subprocess.Popen(
            [
                executable,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(directory),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.ping():
                    client.close()
                    return RedisServer(port=port, process=process)
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()
        process.kill()
        output = process.communicate()[0]
        last_error = output.decode(errors="replace")[-2000:]
    pytest.fail(f"redis-server did not start: {last_error}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server on 127.0.0.1 and a free port, in a temp dir, for the session."""
    server = _start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()


@dataclass
class LedgerFactory:
    """Opens ledgers of one backend on the same storage (so a reopen is a restart)."""

    backend: str
    open: Callable[[], LedgerBackend]
    tmp_path: Path
    redis_url: str | None
    opened: list[LedgerBackend] = field(default_factory=list)
    url: str = ""

    def __call__(self) -> LedgerBackend:
        ledger = self.open()
        self.opened.append(ledger)
        return ledger

    def fresh(self) -> LedgerBackend:
        """A ledger of the same backend on new, empty storage."""
        ledger = make_factory(self.backend, self.tmp_path, self.redis_url).open()
        self.opened.append(ledger)
        return ledger

    @property
    def persistent(self) -> bool:
        return self.backend != "memory"


def make_factory(backend: str, tmp_path: Path, redis_url: str | None) -> LedgerFactory:
    """A factory for ``backend``: a fresh SQLite file or a fresh Redis key prefix."""
    if backend == "memory":
        shared = MemoryLedger()
        # A memory ledger cannot outlive its process; "reopening" returns the same one.
        return LedgerFactory(backend, lambda: shared, tmp_path, redis_url, url="memory")
    if backend == "sqlite":
        path = tmp_path / f"ledger-{uuid.uuid4().hex[:8]}.db"
        return LedgerFactory(
            backend, lambda: SQLiteLedger(path), tmp_path, redis_url, url=f"sqlite:{path}"
        )
    assert redis_url is not None
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    return LedgerFactory(
        backend,
        lambda: RedisLedger(redis_url, prefix=prefix),
        tmp_path,
        redis_url,
        url=f"{redis_url}#{prefix}",
    )


@pytest.fixture(params=BACKENDS)
def ledger_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerFactory]:
    """Every backend in turn; the Redis one uses the session's server and its own prefix."""
    backend: str = request.param
    redis_url = request.getfixturevalue("redis_server").url if backend == "redis" else None
    factory = make_factory(backend, tmp_path, redis_url)
    yield factory
    for ledger in factory.opened:
        ledger.close()


@pytest.fixture
def ledger(ledger_factory: LedgerFactory) -> LedgerBackend:
    """A fresh ledger of each backend."""
    return ledger_factory()


class FakeClock:
    """A settable clock (Unix seconds) to pass as ``clock=``."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2023-11-14T22:13:20Z."""
    return FakeClock()
