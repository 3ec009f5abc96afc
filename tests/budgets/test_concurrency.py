"""Hard stops hold under concurrency: threads, asyncio tasks and processes sharing budgets.

Every test hammers one ``raise`` budget until each worker is refused, while a monitor
samples the ledger: ``spent + reserved <= limit`` must hold at every sample, and the final
spend must equal the sum of the admitted calls' actual costs exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.ledger import Counter, LedgerBackend
from kit_telemetry.errors import BudgetExceeded

LIMIT_USD = 1.0
LIMIT_MICROS = 1_000_000
WORST_USD = 0.01  # reserved per call
SCOPE = CallScope(session_id="s", run_id="r", provider="p", model="m")
COUNTER = Counter(budget="shared", unit="usd", scope_key="global", limit=LIMIT_MICROS)


def shared_budget() -> BudgetConfig:
    return BudgetConfig(budgets=(Budget(name="shared", limit_usd=LIMIT_USD),))


def hammer(enforcer: BudgetEnforcer, rng: random.Random) -> list[int]:
    """Admit and settle until refused; the actual micro-USD of each admitted call."""
    spent: list[int] = []
    while True:
        try:
            admission = enforcer.admit_llm_call(
                SCOPE, worst_case_usd=WORST_USD, worst_case_tokens=1
            )
        except BudgetExceeded:
            return spent
        time.sleep(rng.random() / 2000)  # the model call; lets the other threads in
        actual = rng.randint(5_000, 10_000)  # never above the reservation
        if rng.random() < 0.1:
            enforcer.release(admission)  # a failed call: nothing spent
            continue
        enforcer.settle(admission, cost_usd=actual / 1e6, tokens=1, idempotency_key=None)
        spent.append(actual)


@contextmanager
def monitor(ledger: LedgerBackend) -> Iterator[list[int]]:
    """Samples spent + reserved of the shared counter until the block ends."""
    samples: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            while not stop.is_set():
                [(spent, reserved)] = ledger.usage([COUNTER], now_s=time.time())
                samples.append(spent + reserved)
                time.sleep(0.0005)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
    assert not errors, errors


def check(ledger: LedgerBackend, samples: list[int], admitted: list[int]) -> None:
    [(spent, reserved)] = ledger.usage([COUNTER], now_s=time.time())
    assert reserved == 0
    assert spent == sum(admitted)  # exactly the admitted calls, nothing lost or doubled
    assert spent <= LIMIT_MICROS
    assert samples and max(samples) <= LIMIT_MICROS
    # The budget was used up: the last worker refused saw no reservation in flight and
    # less than one call's room left.
    assert LIMIT_MICROS - spent < 10_000


def test_sixteen_threads_never_overspend(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    """16 threads sharing one enforcer and ledger stop exactly at the limit."""
    ledger = ledger_factory()
    enforcer = BudgetEnforcer(shared_budget(), ledger=ledger)
    results: list[list[int]] = [[] for _ in range(16)]
    barrier = threading.Barrier(16)

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = hammer(enforcer, random.Random(index))

    with monitor(ledger_factory()) as samples:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    admitted = [amount for result in results for amount in result]
    assert sum(1 for result in results if result) > 1  # the threads really shared the work
    check(ledger, samples, admitted)


def test_a_hundred_asyncio_tasks_never_overspend(ledger_factory) -> None:  # type: ignore[no-untyped-def]
    """100 tasks that await between admission and settlement, as an async agent does."""
    ledger = ledger_factory()
    enforcer = BudgetEnforcer(shared_budget(), ledger=ledger)

    async def task(index: int) -> list[int]:
        rng = random.Random(index)
        spent: list[int] = []
        while True:
            try:
                admission = await asyncio.to_thread(
                    enforcer.admit_llm_call, SCOPE, worst_case_usd=WORST_USD, worst_case_tokens=1
                )
            except BudgetExceeded:
                return spent
            await asyncio.sleep(rng.random() / 1000)  # the model call
            actual = rng.randint(5_000, 10_000)
            await asyncio.to_thread(
                enforcer.settle, admission, cost_usd=actual / 1e6, tokens=1, idempotency_key=None
            )
            spent.append(actual)

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(task(i) for i in range(100)))

    with monitor(ledger_factory()) as samples:
        results = asyncio.run(main())
    admitted = [amount for result in results for amount in result]
    assert sum(1 for result in results if result) > 1
    check(ledger, samples, admitted)


WORKER = r"""
import json, os, random, sys, time
from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.sqlite import SQLiteLedger
from kit_telemetry.errors import BudgetExceeded

backend, target, prefix, go, seed = sys.argv[1:6]
ledger = SQLiteLedger(target) if backend == "sqlite" else RedisLedger(target, prefix=prefix)
enforcer = BudgetEnforcer(
    BudgetConfig(budgets=(Budget(name="shared", limit_usd=1.0),)), ledger=ledger
)
scope = CallScope(session_id="s", run_id="r", provider="p", model="m")
rng = random.Random(int(seed))
open(go + "." + seed, "w").close()  # ready
while not os.path.exists(go):
    time.sleep(0.001)
spent = []
while True:
    try:
        admission = enforcer.admit_llm_call(scope, worst_case_usd=0.01, worst_case_tokens=1)
    except BudgetExceeded:
        break
    time.sleep(rng.random() / 2000)  # the model call
    actual = rng.randint(5_000, 10_000)
    enforcer.settle(admission, cost_usd=actual / 1e6, tokens=1, idempotency_key=None)
    spent.append(actual)
json.dump(spent, sys.stdout)
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_processes_sharing_a_ledger_never_overspend(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four real processes on one SQLite file or one Redis stop exactly at the limit."""
    from kit_telemetry.budgets.redis import RedisLedger
    from kit_telemetry.budgets.sqlite import SQLiteLedger

    prefix = f"procs:{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        target = str(tmp_path / "shared.db")
        ledger: LedgerBackend = SQLiteLedger(target)
    else:
        target = request.getfixturevalue("redis_server").url
        ledger = RedisLedger(target, prefix=prefix)
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, backend, target, prefix, str(go), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"go.{seed}").exists() for seed in range(4)):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(worker.poll() is None for worker in workers), "a worker died"
            time.sleep(0.01)
        with monitor(ledger) as samples:
            go.touch()  # all four start hammering at once
            outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    results = [json.loads(stdout) for stdout, _ in outputs]
    assert sum(1 for result in results if result) > 1  # the processes really competed
    check(ledger, samples, [amount for result in results for amount in result])
    ledger.close()
