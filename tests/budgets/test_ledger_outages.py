"""Ledger trouble: configurable timeouts, and SQLite files deleted or replaced while open."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig, parse_budget_config
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.ledger import Counter, LedgerError
from kit_telemetry.budgets.redis import RedisLedger
from kit_telemetry.budgets.sqlite import SQLiteLedger
from kit_telemetry.errors import BudgetExceeded, ConfigError

SCOPE = CallScope(session_id="s", run_id="r", provider="p", model="m")
COUNTER = Counter(budget="cap", unit="usd", scope_key="global", limit=1_000_000)


# --- timeouts ------------------------------------------------------------------------------


def test_ledger_timeout_is_read_from_the_ledger_table() -> None:
    """``[ledger] timeout_s`` reaches the configuration as ``ledger_timeout_s``."""
    config = parse_budget_config(
        {"budget": [{"name": "cap", "limit_usd": 1.0}], "ledger": {"timeout_s": 0.25}},
        source="budgets.toml",
    )
    assert config.ledger_timeout_s == 0.25


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), 301, "5", True])
def test_a_bad_ledger_timeout_is_a_config_error_naming_it(value: object) -> None:
    """A timeout that is no positive number of seconds fails at start-up."""
    with pytest.raises(ConfigError, match=rf"budgets.toml: ledger: timeout_s {value!r} must be"):
        parse_budget_config(
            {"budget": [{"name": "cap", "limit_usd": 1.0}], "ledger": {"timeout_s": value}},
            source="budgets.toml",
        )


def test_the_sqlite_lock_timeout_is_the_configured_one(tmp_path: Path) -> None:
    """A writer holding the lock makes admission fail after timeout_s, not the default 5 s."""
    path = tmp_path / "l.db"
    config = BudgetConfig(
        budgets=(Budget(name="cap", limit_usd=1.0),),
        ledger=f"sqlite:{path}",
        ledger_timeout_s=0.2,
        on_ledger_error="deny",
    )
    enforcer = BudgetEnforcer(config)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        started = time.monotonic()
        with pytest.raises(BudgetExceeded, match="ledger is unavailable"):
            enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=1)
        waited = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        enforcer.close()
    assert waited < 4.0  # far below the 5 s default: the configured 0.2 s applied


def test_the_redis_network_timeout_is_the_configured_one() -> None:
    """A Redis server that accepts but never answers fails admission after timeout_s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        config = BudgetConfig(
            budgets=(Budget(name="cap", limit_usd=1.0),),
            ledger=f"redis://127.0.0.1:{port}/0",
            ledger_timeout_s=0.2,
            on_ledger_error="deny",
        )
        enforcer = BudgetEnforcer(config)
        assert isinstance(enforcer.ledger, RedisLedger)
        try:
            started = time.monotonic()
            with pytest.raises(BudgetExceeded, match="ledger is unavailable"):
                enforcer.admit_llm_call(SCOPE, worst_case_usd=0.01, worst_case_tokens=1)
            waited = time.monotonic() - started
        finally:
            enforcer.close()
    assert waited < 1.9  # below Redis's 2 s default: the configured 0.2 s applied


# --- SQLite files deleted or replaced -------------------------------------------------------


def test_a_deleted_sqlite_file_is_noticed_and_opened_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Spend after the file was deleted goes to a file other processes see, and is logged."""
    path = tmp_path / "l.db"
    ledger = SQLiteLedger(path)
    try:
        ledger.commit(None, [(COUNTER, 100)], now_s=1.0)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
            ledger.commit(None, [(COUNTER, 7)], now_s=2.0)
        assert ledger.reopens == 1
        assert path.exists()
        other = SQLiteLedger(path)  # another process opening the path
        try:
            assert other.usage([COUNTER], now_s=3.0) == [(7, 0)]
        finally:
            other.close()
    finally:
        ledger.close()
    assert any("deleted or replaced" in r.getMessage() for r in caplog.records)


def test_a_replaced_sqlite_file_is_noticed_and_opened_again(tmp_path: Path) -> None:
    """A restore from backup (a new file at the same path) is used from the next call on."""
    path = tmp_path / "l.db"
    backup = tmp_path / "backup.db"
    seed = SQLiteLedger(backup)
    seed.commit(None, [(COUNTER, 500)], now_s=1.0)
    seed.close()
    ledger = SQLiteLedger(path)
    try:
        ledger.commit(None, [(COUNTER, 100)], now_s=1.0)
        os.replace(backup, path)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        assert ledger.usage([COUNTER], now_s=2.0) == [(500, 0)]
        assert ledger.reopens == 1
        ledger.commit(None, [(COUNTER, 1)], now_s=2.0)
        assert ledger.reopens == 1  # the new file is kept from then on
    finally:
        ledger.close()


def test_an_unchanged_sqlite_file_is_never_reopened(tmp_path: Path) -> None:
    """The identity check costs a stat, not a reconnect, on every call."""
    ledger = SQLiteLedger(tmp_path / "l.db")
    threads = [
        threading.Thread(
            target=lambda: [ledger.commit(None, [(COUNTER, 1)], now_s=1.0) for _ in range(50)]
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert ledger.usage([COUNTER], now_s=2.0) == [(200, 0)]
        assert ledger.reopens == 0
    finally:
        ledger.close()


def test_a_ledger_error_names_the_file(tmp_path: Path) -> None:
    """A path that cannot hold a database fails to open with a LedgerError naming it."""
    with pytest.raises(LedgerError, match="cannot open"):
        SQLiteLedger(tmp_path)  # a directory
