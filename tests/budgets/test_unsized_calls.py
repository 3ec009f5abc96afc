"""Calls without ``max_tokens`` or an input estimate stay within a ``raise`` budget.

Admission reserves ``default_max_tokens`` and ``default_input_estimate`` (or the run's
largest input) for what a call leaves out, so concurrent first calls cannot all be
admitted on a reservation of nothing; a call that costs more than it reserved is logged.
Money is worked out by hand from the published gpt-4o price, never by our pricing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from kit_telemetry.budgets.calls import CallScope, LLMRequest
from kit_telemetry.budgets.config import Budget, BudgetConfig, parse_budget_config
from kit_telemetry.budgets.gate import BudgetGate
from kit_telemetry.budgets.ledger import Counter, LedgerBackend, open_ledger
from kit_telemetry.errors import BudgetExceeded, ConfigError
from kit_telemetry.pricing import ModelPrice
from kit_telemetry.tokens import TokenUsage

LedgerFactory = Any  # the conftest fixture's type

# gpt-4o, https://openai.com/api/pricing/ : $2.50 per million input tokens, $10 output.
INPUT_USD_PER_MTOK = 2.5
OUTPUT_USD_PER_MTOK = 10.0
IN_TOKENS = 2_000
OUT_TOKENS = 2_100
CALL_USD = 0.026  # 2000 * 2.5 / 1e6 + 2100 * 10 / 1e6 = 0.005 + 0.021
LIMIT_USD = 0.50
LIMIT_MICROS = 500_000
# What a first call without sizes reserves: 4096 input and 4096 output tokens (the
# defaults) = 0.01024 + 0.04096.
UNSIZED_WORST_USD = 0.0512
USAGE = TokenUsage(input_tokens=IN_TOKENS, output_tokens=OUT_TOKENS)


def unique(name: str) -> str:
    """A budget name no other test uses: Redis tests share one server and key prefix."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


class GPT4o:
    """The gate's price lookup: gpt-4o at its published price."""

    def find_price(self, provider: str, model: str) -> ModelPrice | None:
        return ModelPrice(input_per_mtok=INPUT_USD_PER_MTOK, output_per_mtok=OUTPUT_USD_PER_MTOK)


def gate_for(url: str, name: str) -> BudgetGate:
    config = BudgetConfig(budgets=(Budget(name=name, limit_usd=LIMIT_USD),), ledger=url)
    return BudgetGate(config, prices=GPT4o())


def request(sized: bool) -> LLMRequest:
    """A first call of a new run, with its sizes or without them."""
    scope = CallScope(
        session_id="s", run_id=f"r-{uuid.uuid4().hex[:8]}", provider="openai", model="gpt-4o"
    )
    if sized:
        return LLMRequest(scope=scope, max_tokens=OUT_TOKENS, estimated_input_tokens=IN_TOKENS)
    return LLMRequest(scope=scope)


def one_call(gate: BudgetGate, sized: bool, pause_s: float) -> bool:
    """Admit, "call the model", settle at the call's real cost; False when refused."""
    try:
        admission = gate.admit_llm_call(request(sized))
    except BudgetExceeded:
        return False
    time.sleep(pause_s)
    gate.settle_llm_call(admission, usage=USAGE, cost_usd=CALL_USD, response_id=None)
    return True


def spent_micros(ledger: LedgerBackend, name: str) -> int:
    counter = Counter(budget=name, unit="usd", scope_key="global", limit=LIMIT_MICROS)
    [(spent, reserved)] = ledger.usage([counter], now_s=time.time())
    assert reserved == 0
    return int(spent)


def test_unsized_calls_one_after_another_stop_before_the_limit(
    ledger_factory: LedgerFactory,
) -> None:
    """The sequential order: a call is admitted while spent + $0.0512 <= $0.50 (18 calls)."""
    name = unique("cap")
    gate = gate_for(ledger_factory.url, name)
    try:
        admitted = sum(one_call(gate, sized=False, pause_s=0) for _ in range(100))
        spent = spent_micros(gate.enforcer.ledger, name)
    finally:
        gate.close()
    assert admitted == math.floor((LIMIT_USD - UNSIZED_WORST_USD) / CALL_USD) + 1 == 18
    assert spent == 18 * 26_000  # $0.468


@pytest.mark.parametrize("sized", [False, True], ids=["unsized", "sized"])
def test_sixteen_threads_of_first_calls_never_overspend(
    ledger_factory: LedgerFactory, sized: bool
) -> None:
    """16 threads of first calls, sizes given or not: admitted spend stays <= the limit."""
    name = unique("cap")
    gate = gate_for(ledger_factory.url, name)
    counts = [0] * 16
    barrier = threading.Barrier(16)

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(10):
            counts[index] += one_call(gate, sized, pause_s=0.001)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        spent = spent_micros(gate.enforcer.ledger, name)
    finally:
        gate.close()
    assert spent == sum(counts) * 26_000
    assert 0 < spent <= LIMIT_MICROS


@pytest.mark.parametrize("sized", [False, True], ids=["unsized", "sized"])
def test_a_hundred_concurrent_first_calls_never_overspend(
    ledger_factory: LedgerFactory, sized: bool
) -> None:
    """The reported case: 100 tasks at once spent $2.60 against $0.50 when unsized calls
    reserved nothing; now the spend stays <= $0.50."""
    name = unique("cap")
    gate = gate_for(ledger_factory.url, name)

    async def task() -> bool:
        try:
            admission = await asyncio.to_thread(gate.admit_llm_call, request(sized))
        except BudgetExceeded:
            return False
        await asyncio.sleep(0.01)  # every task is admitted before any settles
        await asyncio.to_thread(
            gate.settle_llm_call, admission, usage=USAGE, cost_usd=CALL_USD, response_id=None
        )
        return True

    async def main() -> list[bool]:
        return await asyncio.gather(*(task() for _ in range(100)))

    try:
        admitted = sum(asyncio.run(main()))
        spent = spent_micros(gate.enforcer.ledger, name)
    finally:
        gate.close()
    assert spent == admitted * 26_000
    assert 0 < spent <= LIMIT_MICROS


WORKER = r"""
import json, os, sys, time, uuid
from kit_telemetry.budgets.calls import CallScope, LLMRequest
from kit_telemetry.budgets.config import Budget, BudgetConfig
from kit_telemetry.budgets.gate import BudgetGate
from kit_telemetry.errors import BudgetExceeded
from kit_telemetry.pricing import ModelPrice
from kit_telemetry.tokens import TokenUsage

url, go, index, sized, name = sys.argv[1:6]

class Prices:
    def find_price(self, provider, model):
        return ModelPrice(input_per_mtok=2.5, output_per_mtok=10.0)

# A long lock timeout: this test is about exactness, and a disk stalled by other work on
# the machine must not turn into a LedgerError (whose spend waits in the journal).
config = BudgetConfig(budgets=(Budget(name=name, limit_usd=0.5),), ledger=url, ledger_timeout_s=60)
gate = BudgetGate(config, prices=Prices())
open(go + "." + index, "w").close()  # ready
while not os.path.exists(go):
    time.sleep(0.001)
admitted = 0
for _ in range(20):
    scope = CallScope(session_id="s", run_id=uuid.uuid4().hex, provider="openai", model="gpt-4o")
    sizes = {"max_tokens": 2100, "estimated_input_tokens": 2000} if sized == "1" else {}
    try:
        admission = gate.admit_llm_call(LLMRequest(scope=scope, **sizes))
    except BudgetExceeded:
        continue
    time.sleep(0.002)
    usage = TokenUsage(input_tokens=2000, output_tokens=2100)
    gate.settle_llm_call(admission, usage=usage, cost_usd=0.026, response_id=None)
    admitted += 1
gate.close()
json.dump(admitted, sys.stdout)
"""


@pytest.mark.parametrize("sized", [False, True], ids=["unsized", "sized"])
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_four_processes_of_first_calls_never_overspend(
    backend: str, sized: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four processes on one SQLite file or one redis-server: spend stays <= the limit."""
    from conftest import make_factory

    redis_url = request.getfixturevalue("redis_server").url if backend == "redis" else None
    factory = make_factory(backend, tmp_path, redis_url)
    name = unique("cap")
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, factory.url, str(go), str(i), str(int(sized)), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"go.{i}").exists() for i in range(4)):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(worker.poll() is None for worker in workers), "a worker died"
            time.sleep(0.01)
        go.touch()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    admitted = sum(json.loads(stdout) for stdout, _ in outputs)
    ledger = open_ledger(factory.url)  # as the workers opened it
    try:
        spent = spent_micros(ledger, name)
    finally:
        ledger.close()
    stderr = "".join(err for _, err in outputs)
    assert spent == admitted * 26_000, f"admitted {admitted}, spent {spent}: {stderr}"
    assert 0 < spent <= LIMIT_MICROS


def overshoot_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "admission reserved" in r.getMessage()]


# 2000 input + 22000 output tokens: 0.005 + 0.22 = $0.225.
BIG = TokenUsage(input_tokens=2_000, output_tokens=22_000)
BIG_USD = 0.225
BIG_REQUEST = LLMRequest(
    scope=CallScope(session_id="s", run_id="r", provider="openai", model="gpt-4o"),
    estimated_input_tokens=2_000,
)


def test_a_call_costing_more_than_its_reservation_is_logged(
    ledger_factory: LedgerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported case: a hard $0.10 budget, no max_tokens, one call spent 225% of its
    limit and nobody was told. The overshoot is logged; the next call is refused."""
    name = unique("cap")
    config = BudgetConfig(budgets=(Budget(name=name, limit_usd=0.10),), ledger=ledger_factory.url)
    gate = BudgetGate(config, prices=GPT4o())
    try:
        with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
            admission = gate.admit_llm_call(BIG_REQUEST)
            gate.settle_llm_call(admission, usage=BIG, cost_usd=BIG_USD, response_id=None)
        with pytest.raises(BudgetExceeded) as refused:
            gate.admit_llm_call(BIG_REQUEST)
    finally:
        gate.close()
    assert refused.value.spent == pytest.approx(BIG_USD)
    # Reserved: 2000 input + 4096 output tokens (the default) = 0.005 + 0.04096 = $0.04596.
    assert overshoot_warnings(caplog) == [
        f"budget '{name}' (global): a call used $0.225 but admission reserved $0.04596; raise "
        "max_tokens, estimated_input_tokens or the [admission] defaults so the limit holds "
        "(further overshoots of this budget are not logged)"
    ]


def test_overshoots_are_logged_once_per_budget(
    ledger_factory: LedgerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A loop of underestimated calls gives one warning, not one per call."""
    config = BudgetConfig(
        budgets=(Budget(name=unique("cap"), limit_usd=5.0),), ledger=ledger_factory.url
    )
    gate = BudgetGate(config, prices=GPT4o())
    try:
        with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
            for _ in range(3):
                admission = gate.admit_llm_call(BIG_REQUEST)
                gate.settle_llm_call(admission, usage=BIG, cost_usd=BIG_USD, response_id=None)
    finally:
        gate.close()
    assert len(overshoot_warnings(caplog)) == 1


def test_a_call_within_its_reservation_logs_nothing(
    ledger_factory: LedgerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls that cost less than reserved (the normal case) are not reported."""
    name = unique("cap")
    gate = gate_for(ledger_factory.url, name)
    try:
        with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
            assert one_call(gate, sized=False, pause_s=0)
            assert one_call(gate, sized=True, pause_s=0)
    finally:
        gate.close()
    assert overshoot_warnings(caplog) == []


def test_configured_defaults_set_what_an_unsized_call_reserves() -> None:
    """default_max_tokens / default_input_estimate from [admission] decide the reservation."""
    config = parse_budget_config(
        {
            "budget": [{"name": "cap", "limit_usd": LIMIT_USD}],
            "admission": {"default_max_tokens": 1000, "default_input_estimate": 500},
        },
        source="budgets.toml",
    )
    gate = BudgetGate(config, prices=GPT4o())
    try:
        admission = gate.admit_llm_call(request(sized=False))
    finally:
        gate.close()
    # 500 * 2.5 / 1e6 + 1000 * 10 / 1e6 = 0.00125 + 0.01 = $0.01125
    assert [amount for counter, amount in admission.amounts] == [11_250]


@pytest.mark.parametrize(
    ("key", "value"),
    [("default_max_tokens", -1), ("default_input_estimate", 2.5), ("default_max_tokens", True)],
)
def test_bad_admission_defaults_are_a_config_error_naming_them(key: str, value: object) -> None:
    """A bad default fails at start-up, naming the file, the key, the value and the range."""
    with pytest.raises(ConfigError, match=rf"budgets.toml: admission: {key} {value!r} must be"):
        parse_budget_config(
            {"budget": [{"name": "cap", "limit_usd": 1.0}], "admission": {key: value}},
            source="budgets.toml",
        )


def test_an_unknown_admission_key_is_a_config_error() -> None:
    """A typo in [admission] is reported with the allowed keys."""
    with pytest.raises(ConfigError, match="unknown key 'default_max_token'"):
        parse_budget_config(
            {"budget": [{"name": "cap", "limit_usd": 1.0}], "admission": {"default_max_token": 1}},
            source="budgets.toml",
        )
