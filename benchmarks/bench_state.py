"""Throughput of SessionState reads and writes, beside what the disk and a dict allow.

Run: ``.venv/bin/python benchmarks/bench_state.py [--runs 5] [--keys 20] [--dir PATH]``

Each figure is the median of ``--runs`` runs. Baselines are measured in the same run:

- ``get`` against a plain ``dict.get`` (the store adds key checks, a lock and a copy);
- sync ``set`` against the fsync floor: writing the same snapshot bytes to a temp file,
  fsyncing it, renaming it over the target and fsyncing the folder, with nothing else;
- batched ``set`` (including the final flush) against plain ``dict`` assignment.

``--dir`` picks the file system to measure (the default is a temp folder under the
current one, since /tmp is often a RAM disk where fsync costs nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kit_telemetry.state import SessionState


def value_for(i: int) -> dict[str, object]:
    return {"n": i, "text": "x" * 40, "tags": ["a", "b"]}


def seed(store: SessionState, keys: int) -> None:
    for i in range(keys):
        store.set(f"key-{i}", value_for(i))


def bench_get(folder: Path, keys: int, ops: int) -> float:
    store = SessionState(folder / "get.ext-state.json", durability="batched")
    seed(store, keys)
    names = [f"key-{i % keys}" for i in range(ops)]
    started = time.perf_counter()
    for name in names:
        store.get(name)
    elapsed = time.perf_counter() - started
    store.close()
    return ops / elapsed


def bench_dict_get(keys: int, ops: int) -> float:
    data = {f"key-{i}": value_for(i) for i in range(keys)}
    names = [f"key-{i % keys}" for i in range(ops)]
    started = time.perf_counter()
    for name in names:
        data.get(name)
    return ops / (time.perf_counter() - started)


def bench_set(folder: Path, keys: int, ops: int, durability: str) -> float:
    path = folder / f"set-{durability}.ext-state.json"
    store = SessionState(path, durability=durability)  # type: ignore[arg-type]
    seed(store, keys)
    store.flush()
    started = time.perf_counter()
    for i in range(ops):
        store.set(f"key-{i % keys}", value_for(i))
    store.flush()
    elapsed = time.perf_counter() - started
    store.close()
    return ops / elapsed


def bench_dict_set(keys: int, ops: int) -> float:
    data: dict[str, object] = {}
    started = time.perf_counter()
    for i in range(ops):
        data[f"key-{i % keys}"] = value_for(i)
    return ops / (time.perf_counter() - started)


def bench_fsync_floor(folder: Path, payload: bytes, ops: int) -> float:
    target = folder / "floor.ext-state.json"
    started = time.perf_counter()
    for _ in range(ops):
        fd, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.write(fd, payload)
        os.fsync(fd)
        os.close(fd)
        os.replace(temp, target)
        dir_fd = os.open(folder, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    return ops / (time.perf_counter() - started)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keys", type=int, default=20, help="keys in the map (snapshot size)")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-state-", dir=args.dir or Path.cwd()) as tmp:
        folder = Path(tmp)
        probe = SessionState(folder / "probe.ext-state.json")
        seed(probe, args.keys)
        probe.close()
        payload = (folder / "probe.ext-state.json").read_bytes()

        rows = [
            (
                "get",
                median_of(args.runs, lambda: bench_get(folder, args.keys, 200_000)),
                "dict.get",
                median_of(args.runs, lambda: bench_dict_get(args.keys, 200_000)),
            ),
            (
                "set (sync)",
                median_of(args.runs, lambda: bench_set(folder, args.keys, 300, "sync")),
                "write+fsync+rename",
                median_of(args.runs, lambda: bench_fsync_floor(folder, payload, 300)),
            ),
            (
                "set (batched)",
                median_of(args.runs, lambda: bench_set(folder, args.keys, 50_000, "batched")),
                "dict assignment",
                median_of(args.runs, lambda: bench_dict_set(args.keys, 50_000)),
            ),
        ]

    out = sys.stdout
    out.write(
        f"SessionState, {args.keys} keys ({len(payload)} bytes a snapshot), "
        f"median of {args.runs} runs, on {args.dir or Path.cwd()}\n\n"
    )
    out.write(f"{'operation':<15}{'ops/s':>14}   {'baseline':<20}{'ops/s':>14}{'ratio':>9}\n")
    for name, ops, baseline, base_ops in rows:
        out.write(
            f"{name:<15}{ops:>14,.0f}   {baseline:<20}{base_ops:>14,.0f}{ops / base_ops:>9.2f}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
