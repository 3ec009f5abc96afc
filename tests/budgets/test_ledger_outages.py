"""Ledger trouble: configurable timeouts, SQLite files deleted or replaced while open, and
spend admitted during an outage, journaled and replayed once when the ledger is back."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit_telemetry.budgets.calls import CallScope
from kit_telemetry.budgets.config import Budget, BudgetConfig, parse_budget_config
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.journal import JournalEntry, SpendJournal
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


# --- spend during an outage is journaled and replayed once ---------------------------------

USD = [0.01, 0.02, 0.03, 0.04]  # the actual cost of calls A, B, C, D
MICROS = [10_000, 20_000, 30_000, 40_000]


class Outage:
    """Makes one ledger unreachable and brings it back, whatever its backend."""

    def __init__(self, backend: str, target: str) -> None:
        self.backend = backend
        self.target = target
        self._blocker: sqlite3.Connection | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.backend == "sqlite":  # another process holding the write lock
            self._blocker = sqlite3.connect(self.target, isolation_level=None)
            self._blocker.execute("BEGIN IMMEDIATE")
        else:  # a server that stops answering, as over a broken network
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)

    def end(self) -> None:
        if self._blocker is not None:
            self._blocker.execute("ROLLBACK")
            self._blocker.close()
            self._blocker = None
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)


@pytest.fixture(params=["sqlite", "redis"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Outage]]:
    """A ledger URL of each persistent backend and the means to cut it off."""
    if request.param == "sqlite":
        path = str(tmp_path / "l.db")
        yield f"sqlite:{path}", Outage("sqlite", path)
        return
    from conftest import _start_redis

    server = _start_redis(tmp_path)  # its own server: this test stops it
    cut = Outage("redis", server.url)
    cut.process = server.process
    try:
        yield server.url, cut
    finally:
        cut.end()
        server.process.terminate()
        server.process.wait(timeout=10)
        if server.process.stdout is not None:
            server.process.stdout.close()


def outage_enforcer(url: str, journal: Path) -> BudgetEnforcer:
    config = BudgetConfig(
        budgets=(Budget(name="cap", limit_usd=1.0),),
        ledger=url,
        ledger_timeout_s=0.2,
        journal=str(journal),
        on_ledger_error="allow",
    )
    return BudgetEnforcer(config)


def spent(enforcer: BudgetEnforcer) -> int:
    [(value, _)] = enforcer.ledger.usage([COUNTER], now_s=time.time())
    return int(value)


def test_spend_during_an_outage_is_journaled_and_replayed_once(
    outage: tuple[str, Outage], tmp_path: Path
) -> None:
    """Calls let in while the ledger is down are counted when it is back, each once."""
    url, cut = outage
    journal = tmp_path / "budgets.journal"
    enforcer = outage_enforcer(url, journal)
    try:
        first = enforcer.admit_llm_call(SCOPE, worst_case_usd=0.05, worst_case_tokens=1)
        enforcer.settle(first, cost_usd=USD[0], tokens=1, idempotency_key=None)
        cut.start()
        try:
            during = [
                enforcer.admit_llm_call(SCOPE, worst_case_usd=0.05, worst_case_tokens=1)
                for _ in range(2)
            ]
            assert all(admission.ledger_failed for admission in during)
            enforcer.settle(during[0], cost_usd=USD[1], tokens=1, idempotency_key=None)
            enforcer.settle(during[1], cost_usd=USD[2], tokens=1, idempotency_key="resp-c")
        finally:
            cut.end()
        lines = journal.read_text().splitlines()
        assert len(lines) == 2 and all('"spend"' in line for line in lines)
        last = enforcer.admit_llm_call(SCOPE, worst_case_usd=0.05, worst_case_tokens=1)
        assert spent(enforcer) == sum(MICROS[:3])  # replayed before the next call settles
        enforcer.settle(last, cost_usd=USD[3], tokens=1, idempotency_key=None)
        assert spent(enforcer) == sum(MICROS)
        assert journal.read_text() == ""  # emptied once everything was in
    finally:
        enforcer.close()


def test_a_journal_left_by_a_crashed_process_is_replayed_by_the_next(
    outage: tuple[str, Outage], tmp_path: Path
) -> None:
    """The journal is a file: spend kept by a process that died is counted by the next."""
    url, cut = outage
    journal = tmp_path / "budgets.journal"
    crashed = outage_enforcer(url, journal)
    cut.start()
    try:
        admission = crashed.admit_llm_call(SCOPE, worst_case_usd=0.05, worst_case_tokens=1)
        crashed.settle(admission, cost_usd=USD[1], tokens=1, idempotency_key=None)
    finally:
        cut.end()
    crashed.close()
    restarted = outage_enforcer(url, journal)
    try:
        admission = restarted.admit_llm_call(SCOPE, worst_case_usd=0.05, worst_case_tokens=1)
        restarted.release(admission)
        assert spent(restarted) == MICROS[1]
    finally:
        restarted.close()


def test_a_replay_interrupted_after_its_commit_counts_once(tmp_path: Path) -> None:
    """A crash between a record's commit and its done mark: the next replay's commit is
    recognised by its idempotency key."""
    ledger = SQLiteLedger(tmp_path / "l.db")
    journal = SpendJournal(tmp_path / "budgets.journal")
    try:
        journal.append("call-1", [(COUNTER, 20_000)], None)
        journal.append("call-2", [(COUNTER, 30_000)], "resp-2")

        def commit_then_die(entry: JournalEntry) -> None:
            ledger.commit(
                entry.entry_id, entry.amounts, now_s=1.0, idempotency_key=entry.idempotency_key
            )
            raise KeyboardInterrupt  # the process dies before writing the done mark

        with pytest.raises(KeyboardInterrupt):
            journal.replay(commit_then_die)
        assert journal.pending

        def commit(entry: JournalEntry) -> None:
            ledger.commit(
                entry.entry_id, entry.amounts, now_s=2.0, idempotency_key=entry.idempotency_key
            )

        assert journal.replay(commit) == 2
        assert ledger.usage([COUNTER], now_s=3.0) == [(50_000, 0)]
        assert journal.replay(commit) == 0
        assert ledger.usage([COUNTER], now_s=3.0) == [(50_000, 0)]
    finally:
        journal.close()
        ledger.close()


def test_a_cut_journal_line_is_skipped_and_the_rest_replayed(tmp_path: Path) -> None:
    """A crash mid-write leaves at most one cut line, which a replay skips."""
    path = tmp_path / "budgets.journal"
    journal = SpendJournal(path)
    journal.append("call-1", [(COUNTER, 20_000)], None)
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'{"spend":{"id":"call-2","key":"jour')  # the process died here
    journal = SpendJournal(path)
    seen: list[str] = []
    try:
        assert journal.replay(lambda entry: seen.append(entry.entry_id)) == 1
    finally:
        journal.close()
    assert seen == ["call-1"]


def test_a_journal_path_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    """A configured journal must work: it is where outage spend would go."""
    config = BudgetConfig(
        budgets=(Budget(name="cap", limit_usd=1.0),),
        ledger=f"sqlite:{tmp_path / 'l.db'}",
        journal=str(tmp_path / "missing-dir" / "j"),
    )
    with pytest.raises(ConfigError, match=r"ledger: journal .* cannot be opened"):
        BudgetEnforcer(config)


def test_an_sqlite_ledger_keeps_its_journal_beside_its_file(tmp_path: Path) -> None:
    """Without a configured path the journal sits next to the database."""
    enforcer = BudgetEnforcer(
        BudgetConfig(
            budgets=(Budget(name="cap", limit_usd=1.0),), ledger=f"sqlite:{tmp_path / 'l.db'}"
        )
    )
    try:
        assert enforcer.journal is not None
        assert enforcer.journal.path == f"{tmp_path / 'l.db'}.journal"
    finally:
        enforcer.close()


def test_no_journal_file_is_made_until_there_is_something_to_keep(tmp_path: Path) -> None:
    """Most processes never see an outage: they leave no empty journal behind."""
    path = tmp_path / "budgets.journal"
    journal = SpendJournal(path)
    try:
        assert not path.exists() and not journal.pending
        assert journal.replay(lambda entry: None) == 0
        journal.append("call-1", [(COUNTER, 1)], None)
        assert path.exists() and journal.pending
    finally:
        journal.close()


def test_a_journal_another_process_started_is_seen(tmp_path: Path) -> None:
    """A journal opened before the file existed finds the records another process kept."""
    clock = [0.0]
    path = tmp_path / "budgets.journal"
    reader = SpendJournal(path, clock=lambda: clock[0])
    writer = SpendJournal(path)
    try:
        writer.append("call-1", [(COUNTER, 5)], None)
        assert not reader.pending  # looked for again only every few seconds
        clock[0] = 10.0
        assert reader.pending
        seen: list[str] = []
        assert reader.replay(lambda entry: seen.append(entry.entry_id)) == 1
        assert seen == ["call-1"]
    finally:
        writer.close()
        reader.close()


def test_appends_racing_a_replay_lose_nothing_and_count_once(tmp_path: Path) -> None:
    """8 threads keep spend while another replays: every record reaches the ledger once."""
    ledger = SQLiteLedger(tmp_path / "l.db")
    journal = SpendJournal(tmp_path / "budgets.journal")
    done = threading.Event()
    errors: list[BaseException] = []

    def commit(entry: JournalEntry) -> None:
        ledger.commit(
            entry.entry_id, entry.amounts, now_s=1.0, idempotency_key=entry.idempotency_key
        )

    def writer(index: int) -> None:
        try:
            for n in range(50):
                journal.append(f"call-{index}-{n}", [(COUNTER, 1)], None)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    def replayer() -> None:
        try:
            while not done.is_set():
                journal.replay(commit)
        except BaseException as exc:
            errors.append(exc)

    replaying = threading.Thread(target=replayer)
    replaying.start()
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    try:
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
    finally:
        done.set()
        replaying.join()
    try:
        journal.replay(commit)  # whatever the racing replays left
        assert not errors, errors
        assert ledger.usage([COUNTER], now_s=2.0) == [(400, 0)]
        assert not journal.pending
    finally:
        journal.close()
        ledger.close()
