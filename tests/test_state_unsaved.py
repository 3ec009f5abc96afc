"""State that could not be saved is retried while the process lives, and never reloaded stale.

The attack: a counter is written while the disk is full, the session ends, the disk frees,
and the next session reloads the older file (the counter goes 5 -> 2). These tests run on a
real small tmpfs (root only), like the trace file's full-disk test.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from kit_telemetry.state import SessionState, StateNotSavedError
from kit_telemetry.state.registry import StateRegistry
from kit_telemetry.testing import capture

INTERNAL_ERRORS = "kit_telemetry_internal_errors_total"


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; the filler file, to free it again."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def _on_disk(sidecar: Path) -> object:
    return json.loads(sidecar.read_text())


def test_state_unsaved_at_session_end_is_saved_when_the_disk_frees(small_disk: Path) -> None:
    """The next session gets the newest counter, and force_flush writes it once space is back."""
    session_file = small_disk / "s.jsonl"
    sidecar = small_disk / "s.ext-state.json"
    with capture(strict=False) as cap:
        tel = cap.telemetry
        with tel.session("s", session_file=session_file) as session:
            session.state.set("counter", 2)
            filler = _fill(small_disk)
            session.state.set("counter", 5)  # the disk is full: not saved
        assert _on_disk(sidecar) == {"counter": 2}
        filler.unlink()
        with tel.session("s", session_file=session_file) as session:
            assert session.state.get("counter") == 5  # not the stale 2 of the file
        assert _on_disk(sidecar) == {"counter": 5}
        assert (cap.metric(INTERNAL_ERRORS, component="state") or 0) >= 1


def test_force_flush_retries_state_of_an_ended_session(small_disk: Path) -> None:
    """No new write is needed: a flush of telemetry saves what a full disk held back."""
    session_file = small_disk / "s.jsonl"
    sidecar = small_disk / "s.ext-state.json"
    with capture(strict=False) as cap:
        with cap.telemetry.session("s", session_file=session_file) as session:
            session.state.set("counter", 2)
            filler = _fill(small_disk)
            session.state.set("counter", 5)
        filler.unlink()
        assert cap.telemetry.force_flush()
        assert _on_disk(sidecar) == {"counter": 5}


def test_state_never_saved_is_reported_and_its_stale_file_not_reloaded(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Still full at shutdown: the loss is logged and counted; the next process starts empty."""
    session_file = small_disk / "s.jsonl"
    sidecar = small_disk / "s.ext-state.json"
    with capture(strict=False) as cap:
        with cap.telemetry.session("s", session_file=session_file) as session:
            session.state.set("counter", 2)
            filler = _fill(small_disk)
            session.state.set("counter", 5)
        before = cap.metric(INTERNAL_ERRORS, component="state") or 0
        with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
            cap.telemetry.shutdown()
        assert (cap.metric(INTERNAL_ERRORS, component="state") or 0) > before
    dropped = [r for r in caplog.records if "dropped unsaved session state" in r.getMessage()]
    assert len(dropped) == 1
    assert not sidecar.exists()
    kept = [p.name for p in small_disk.iterdir() if p.name.startswith("s.ext-state.json.stale-")]
    assert len(kept) == 1  # the old bytes are kept aside, never deleted
    filler.unlink()
    # The next process: a new registry loading the same sidecar.
    assert SessionState(sidecar).get("counter") is None


def test_a_store_given_up_outside_telemetry_reports_to_on_error(small_disk: Path) -> None:
    """SessionState.give_up alone: on_error sees a StateNotSavedError naming the file."""
    sidecar = small_disk / "x.ext-state.json"
    errors: list[BaseException] = []
    store = SessionState(sidecar, on_error=errors.append)
    store.set("counter", 2)
    filler = _fill(small_disk)
    store.set("counter", 5)
    assert not store.saved
    assert store.give_up() is True
    assert isinstance(errors[-1], StateNotSavedError)
    assert str(sidecar) in str(errors[-1])
    assert store.get("counter") == 5  # memory still holds the newest
    assert store.give_up() is False  # given up once, reported once
    assert len(errors) == 2  # the failed write, then the drop
    filler.unlink()
    assert not sidecar.exists()


def test_saved_stores_are_not_kept_after_their_session(tmp_path: Path) -> None:
    """A registry keeps only stores that are behind their file: a saved one is reopened fresh."""
    registry = StateRegistry(state_dir=tmp_path)
    registry.session_started("a", None)
    first = registry.state_for("a")
    first.set("k", 1)
    registry.session_ended("a")
    registry.session_started("a", None)
    second = registry.state_for("a")
    assert second is not first
    assert second.get("k") == 1
    registry.close()
