"""Admission + settlement per LLM call, per ledger backend, against same-run baselines.

Run: ``.venv/bin/python benchmarks/bench_budgets.py`` (starts its own redis-server on
127.0.0.1 unless ``--redis-url`` is given). Goals (issue 5): memory median <= 5 us,
SQLite <= 200 us, Redis one round trip per operation (admission + settlement = two).

Baselines, measured in the same run:
- memory: a dict update under a ``threading.Lock`` (the floor for any in-process counter);
- sqlite: an empty ``BEGIN IMMEDIATE``/``COMMIT`` on the same kind of file, twice (one
  transaction each for admission and settlement);
- redis: a bare ``PING`` round trip, twice.

The ``1 + jrnl`` row builds the SQLite enforcer as ``configure()`` does, with the outage
journal beside the file (idle: a flag test per operation). The ``inline`` row is the floor
of the memory rows: one budget's admission and settlement written as one function.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.ledger import LedgerBackend
from kit_telemetry.budgets.memory import MemoryLedger
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.sqlite import SQLiteLedger

SCOPE = CallScope(
    session_id="s-1", run_id="run-1", provider="anthropic", model="claude-sonnet-4-5", agent="a"
)


def paired_medians(
    subject: Callable[[int], None],
    baseline: Callable[[int], None],
    *,
    batches: int,
    per_batch: int,
) -> tuple[float, float, float]:
    """Median us per operation of subject and baseline, and the median of their ratios.

    Batches alternate between the two, so both see the same machine load; the ratio is
    taken batch by batch for the same reason.
    """
    subject_us: list[float] = []
    baseline_us: list[float] = []
    ratios: list[float] = []
    counter = 0
    for _ in range(batches):
        pair = []
        for operation in (baseline, subject):
            start = time.perf_counter_ns()
            for _ in range(per_batch):
                operation(counter)
                counter += 1
            pair.append((time.perf_counter_ns() - start) / per_batch / 1000)
        baseline_us.append(pair[0])
        subject_us.append(pair[1])
        ratios.append(pair[1] / pair[0])
    return statistics.median(subject_us), statistics.median(baseline_us), statistics.median(ratios)


def enforcer_for(ledger: LedgerBackend, budgets: tuple[Budget, ...]) -> BudgetEnforcer:
    return BudgetEnforcer(BudgetConfig(budgets=budgets), ledger=ledger)


def admit_and_settle(enforcer: BudgetEnforcer) -> Callable[[int], None]:
    admit, settle = enforcer.admit_llm_call, enforcer.settle

    def operation(i: int) -> None:
        admission = admit(SCOPE, worst_case_usd=0.02, worst_case_tokens=2000)
        settle(admission, cost_usd=0.01, tokens=1200, idempotency_key=f"msg_{i}")

    return operation


def inline_floor() -> Callable[[int], None]:
    """What one budget's admit+settle costs written as one function: the floor of the design.

    The same work as the memory ledger's for one counter (a limit check, a reservation with
    an expiry, an idempotency key, the alert threshold test), without the layers that make
    it general: plans, several counters and units, validation, the ledger protocol.
    """
    lock = threading.Lock()
    limit = 10**15
    figures = {"spent": 0, "reserved": 0}
    reservations: dict[str, tuple[int, float]] = {}
    seen: dict[str, float] = {}
    numbers = iter(range(10**12))

    def operation(i: int) -> None:
        now = time.time()
        amount = round(0.02 * 1_000_000)
        reservation_id = f"inline-{next(numbers)}"
        with lock:
            if figures["spent"] + figures["reserved"] + amount > limit:
                raise RuntimeError("refused")
            reservations[reservation_id] = (amount, now + 600)
            figures["reserved"] += amount
        now = time.time()
        key = f"msg_{i}"
        with lock:
            figures["reserved"] -= reservations.pop(reservation_id)[0]
            if key not in seen:
                seen[key] = now + 3600
                figures["spent"] += round(0.01 * 1_000_000)
            spent = figures["spent"]
        if spent >= 0.5 * limit:
            raise RuntimeError("alert")

    return operation


ONE_BUDGET = (Budget(name="daily", limit_usd=1e9, window="day", warn_at=(0.5, 0.8)),)
THREE_BUDGETS = (
    *ONE_BUDGET,
    Budget(name="per-session", scope="session", limit_usd=1e9, limit_tokens=10**15),
    Budget(name="tool-loop", scope="run", max_llm_calls=10**12),
)


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        sys.exit("redis-server is not installed; pass --redis-url")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"redis://127.0.0.1:{port}/0"
            probe = RedisLedger(url)
            for _ in range(500):
                try:
                    probe.ping()
                    break
                except Exception:
                    time.sleep(0.01)
            probe.close()
            yield url
        finally:
            process.terminate()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)
    scale = 0.2 if args.quick else 1.0
    rows: list[tuple[str, str, float, float, float, str]] = []

    lock = threading.Lock()
    counts: dict[str, int] = {}

    def locked_dict(i: int) -> None:
        with lock:
            counts["k"] = counts.get("k", 0) + 1
        with lock:
            counts["k"] = counts.get("k", 0) + 1

    n = int(2000 * scale)
    for label, budgets in (("1 budget", ONE_BUDGET), ("3 budgets", THREE_BUDGETS)):
        operation = admit_and_settle(enforcer_for(MemoryLedger(), budgets))
        value, base, ratio = paired_medians(operation, locked_dict, batches=n, per_batch=50)
        rows.append(("memory", label, value, base, ratio, "2x locked dict update"))
    value, base, ratio = paired_medians(inline_floor(), locked_dict, batches=n, per_batch=50)
    rows.append(("inline", "1 counter", value, base, ratio, "2x locked dict update"))

    with tempfile.TemporaryDirectory() as directory:
        raw = sqlite3.connect(Path(directory) / "raw.db", isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")

        def empty_transactions(i: int) -> None:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("COMMIT")
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("COMMIT")

        m = int(500 * scale)
        for label, budgets in (("1 budget", ONE_BUDGET), ("3 budgets", THREE_BUDGETS)):
            ledger: LedgerBackend = SQLiteLedger(Path(directory) / f"{label.replace(' ', '')}.db")
            operation = admit_and_settle(enforcer_for(ledger, budgets))
            value, base, ratio = paired_medians(
                operation, empty_transactions, batches=m, per_batch=10
            )
            ledger.close()
            rows.append(("sqlite", label, value, base, ratio, "2x empty BEGIN IMMEDIATE/COMMIT"))
        # As configure() builds it: the enforcer opens the file and its outage journal
        # (an idle journal costs a flag test per operation, and a stat every 5 s).
        path = Path(directory) / "configured.db"
        enforcer = BudgetEnforcer(BudgetConfig(budgets=ONE_BUDGET, ledger=f"sqlite:{path}"))
        assert enforcer.journal is not None
        value, base, ratio = paired_medians(
            admit_and_settle(enforcer), empty_transactions, batches=m, per_batch=10
        )
        enforcer.close()
        rows.append(("sqlite", "1 + jrnl", value, base, ratio, "2x empty BEGIN IMMEDIATE/COMMIT"))
        raw.close()

    with redis_server(args.redis_url) as url:
        ping_ledger = RedisLedger(url, prefix="bench:ping")

        def two_pings(i: int) -> None:
            ping_ledger.ping()
            ping_ledger.ping()

        m = int(500 * scale)
        for label, budgets in (("1 budget", ONE_BUDGET), ("3 budgets", THREE_BUDGETS)):
            ledger = RedisLedger(url, prefix=f"bench:{label.replace(' ', '')}:{time.time_ns()}")
            operation = admit_and_settle(enforcer_for(ledger, budgets))
            value, base, ratio = paired_medians(operation, two_pings, batches=m, per_batch=5)
            ledger.close()
            rows.append(("redis", label, value, base, ratio, "2x PING round trip"))
        ping_ledger.close()

    print(
        f"{'ledger':<8} {'budgets':<10} {'admit+settle':>14} {'baseline':>10} {'ratio':>7}", end=""
    )
    print("  baseline is")
    for ledger_name, label, value, base, ratio, baseline_name in rows:
        print(
            f"{ledger_name:<8} {label:<10} {value:>11.1f} us {base:>7.1f} us "
            f"{ratio:>6.1f}x  {baseline_name}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
