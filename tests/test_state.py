"""Tests for kit_telemetry.state: the session key-value store and its sidecar file."""

from __future__ import annotations

import enum
import gc
import importlib.util
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kit_telemetry.errors import ConfigError, UsageError
from kit_telemetry.state import STATE_SUFFIX, SessionState, sidecar_path

CHILD = Path(__file__).with_name("state_child.py")


def _load_child_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("state_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _load_child_module()


def run_child(mode: str, path: Path, timeout: float = 30) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(CHILD), mode, str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    return result


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def temp_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.fixture
def sidecar(tmp_path: Path) -> Path:
    return tmp_path / f"s-1{STATE_SUFFIX}"


@pytest.fixture
def errors() -> list[BaseException]:
    return []


# -- where the sidecar lives ------------------------------------------------------------------


def test_sidecar_replaces_jsonl_extension(tmp_path: Path) -> None:
    """The design names the file after the session file, without its .jsonl."""
    path = sidecar_path(session_file=tmp_path / "s-1.jsonl", session_id="s-1", state_dir=None)
    assert path == tmp_path / "s-1.ext-state.json"


def test_sidecar_appends_to_other_extensions(tmp_path: Path) -> None:
    """A session file not ending in .jsonl keeps its whole name."""
    path = sidecar_path(session_file=tmp_path / "s-1.log", session_id="x", state_dir=tmp_path)
    assert path == tmp_path / "s-1.log.ext-state.json"
    bare = sidecar_path(session_file=str(tmp_path / "session"), session_id="x", state_dir=None)
    assert bare == tmp_path / "session.ext-state.json"


def test_sidecar_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Session files are usually given as ~/...; the sidecar must not land in a folder named ~."""
    monkeypatch.setenv("HOME", str(tmp_path))
    by_file = sidecar_path(session_file="~/.agent/s.jsonl", session_id="s", state_dir=None)
    assert by_file == tmp_path / ".agent" / "s.ext-state.json"
    by_dir = sidecar_path(session_file=None, session_id="s", state_dir="~/state")
    assert by_dir == tmp_path / "state" / "s.ext-state.json"


def test_sidecar_in_state_dir_or_memory_only(tmp_path: Path) -> None:
    """Without a session file the state goes to state_dir, and without either it stays in memory."""
    assert sidecar_path(session_file=None, session_id="s-1", state_dir=tmp_path) == (
        tmp_path / "s-1.ext-state.json"
    )
    assert sidecar_path(session_file=None, session_id="s-1", state_dir=None) is None


@pytest.mark.parametrize("session_id", ["../../etc/passwd", "a/b", "..", "/abs", "a\\b", "a\x00b"])
def test_session_id_cannot_escape_state_dir(tmp_path: Path, session_id: str) -> None:
    """A session id is not trusted to be a file name: separators must not reach the path."""
    path = sidecar_path(session_file=None, session_id=session_id, state_dir=tmp_path)
    assert path is not None
    assert path.parent == tmp_path
    assert "/" not in path.name and "\\" not in path.name and "\x00" not in path.name
    store = SessionState(path)
    store.set("k", 1)
    store.close()
    assert os.listdir(tmp_path) == [path.name]


def test_distinct_session_ids_get_distinct_files(tmp_path: Path) -> None:
    """Encoding must not merge two sessions' state, even for very long ids."""
    ids = ["a/b", "a%2Fb", "a_b", "x" * 300, "x" * 299 + "y", "é"]
    paths = {sidecar_path(session_file=None, session_id=i, state_dir=tmp_path) for i in ids}
    assert len(paths) == len(ids)
    for path in paths:
        assert path is not None and len(path.name.encode()) < 200


@pytest.mark.parametrize(
    "stem",
    ["a" * (255 - len(".jsonl")), "é" * 124, "x" * 226],
    ids=["255-byte-ascii", "254-byte-utf8", "241-byte-sidecar"],
)
def test_a_session_file_with_the_longest_name_keeps_its_state(tmp_path: Path, stem: str) -> None:
    """A valid file name must not make the sidecar name too long and the state memory-only."""
    session_file = tmp_path / f"{stem}.jsonl"
    session_file.write_text("")  # the name is legal where the session file lives
    path = sidecar_path(session_file=session_file, session_id="s", state_dir=None)
    assert path is not None and path.parent == tmp_path
    assert len(os.fsencode(path.name)) <= 255 - len("..12345678.tmp")
    assert path.name.endswith(STATE_SUFFIX) and path.name.startswith(stem[:100])
    errors: list[BaseException] = []
    store = SessionState(path, on_error=errors.append)
    store.set("k", {"v": 1})
    store.close()
    assert errors == [] and store.persistent and store.write_count == 1
    # A restart computes the same name again and finds the state.
    again = sidecar_path(session_file=str(session_file), session_id="s", state_dir=None)
    assert again == path
    assert SessionState(again).get("k") == {"v": 1}


def test_long_session_file_names_sharing_a_prefix_get_distinct_sidecars(tmp_path: Path) -> None:
    """Shortening must not merge two sessions whose names differ only at the end."""
    names = ["a" * 240 + "1.jsonl", "a" * 240 + "2.jsonl", "a" * 240 + "1.log"]
    paths = {sidecar_path(session_file=tmp_path / n, session_id="s", state_dir=None) for n in names}
    assert len(paths) == len(names)


def test_names_that_fit_keep_their_plain_sidecar(tmp_path: Path) -> None:
    """Sidecars written before names were shortened must still be found."""
    stem = "b" * (255 - len("..12345678.tmp") - len(STATE_SUFFIX))
    path = sidecar_path(session_file=tmp_path / f"{stem}.jsonl", session_id="s", state_dir=None)
    assert path == tmp_path / f"{stem}{STATE_SUFFIX}"


def test_empty_session_id_is_refused_for_state_dir(tmp_path: Path) -> None:
    """An empty id would name every such session's file '.ext-state.json'."""
    with pytest.raises(ValueError, match="session id"):
        sidecar_path(session_file=None, session_id="", state_dir=tmp_path)


# -- values and keys --------------------------------------------------------------------------


JSON_VALUES: list[Any] = [
    "text",
    "",
    'ünïcødé 😀 \u2028 \x00 "quoted" \\',
    0,
    -7,
    2**70,
    1.5,
    -0.0,
    1e308,
    True,
    False,
    None,
    [],
    {},
    [1, "a", None, [2, [3.5]], {"k": False}],
    {"nested": {"deeper": [{"x": 1}], "empty": {}}, "": "empty key inside is fine"},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_json_values_round_trip_through_the_file(sidecar: Path, value: Any) -> None:
    """Whatever JSON can hold reads back equal, in memory and from a fresh load."""
    store = SessionState(sidecar)
    store.set("k", value)
    assert store.get("k") == value
    assert type(store.get("k")) is type(value)
    again = SessionState(sidecar)
    assert again.get("k") == value
    assert type(again.get("k")) is type(value)
    if isinstance(value, float):
        assert math.copysign(1.0, again.get("k")) == math.copysign(1.0, value)


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


class Name(str):
    pass


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "set is not a JSON value"),
        ((1, 2), "tuple is not a JSON value.*use a list"),
        (object(), "object is not a JSON value"),
        (b"bytes", "bytes is not a JSON value"),
        (Colour.RED, "Colour is not a JSON value"),
        (float("nan"), "nan.*no NaN or infinity"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        ({1: "a"}, "dict key 1 is a int"),
        ({None: "a"}, "dict key None"),
        ([1, {"a": (1,)}], r"at \[1\]\['a'\]: tuple"),
        ({"a": [float("nan")]}, r"at \['a'\]\[0\]"),
    ],
    ids=repr,
)
def test_non_json_values_are_refused_and_change_nothing(
    sidecar: Path, value: Any, message: str
) -> None:
    """A value that could not be written (or would read back different) is a UsageError at set."""
    store = SessionState(sidecar, strict=True)
    store.set("k", "before")
    on_disk = sidecar.read_bytes()
    with pytest.raises(UsageError, match=message):
        store.set("k", value)
    assert store.get("k") == "before"
    assert store.items() == {"k": "before"}
    with pytest.raises(UsageError):
        store.set("fresh", value)
    assert "fresh" not in store
    assert sidecar.read_bytes() == on_disk
    assert store.write_count == 1


def test_circular_and_too_deep_values_are_refused(sidecar: Path) -> None:
    """Such values would break encoding on every later write, so they never get in."""
    store = SessionState(sidecar, strict=True)
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(UsageError, match="circular"):
        store.set("k", loop)
    deep: list[Any] = []
    for _ in range(250):
        deep = [deep]
    with pytest.raises(UsageError, match="nested more than 200 levels"):
        store.set("k", deep)
    shared = [1, 2]
    store.set("k", {"a": shared, "b": shared})  # the same list twice is not a cycle
    assert store.get("k") == {"a": [1, 2], "b": [1, 2]}
    assert SessionState(sidecar).get("k") == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize(
    "value", ["\ud800", "\ud83d\ude00", ["ok", "\udfff"], {"\ud800": 1}], ids=repr
)
def test_strings_with_surrogates_are_refused(sidecar: Path, value: Any) -> None:
    """Surrogates cannot round-trip through JSON (a pair reads back as one other character)."""
    store = SessionState(sidecar, strict=True)
    with pytest.raises(UsageError, match="surrogate"):
        store.set("k", value)
    with pytest.raises(UsageError, match="surrogate"):
        store.set("\ud800", 1)
    assert store.items() == {}
    assert not sidecar.exists()


def test_int_too_large_to_write_is_refused(sidecar: Path) -> None:
    """Python will not print ints of ~5000 digits; storing one would make every write fail."""
    store = SessionState(sidecar, strict=True)
    with pytest.raises(UsageError, match="too large"):
        store.set("k", 10**5000)
    assert "k" not in store


def test_scalar_subclasses_are_stored_as_plain_values(sidecar: Path) -> None:
    """An IntEnum or str subclass reads back as what JSON wrote, before and after a reload."""
    store = SessionState(sidecar)
    store.set("k", {"size": Size.BIG, Name("key"): Name("value")})
    value = store.get("k")
    assert value == {"size": 3, "key": "value"}
    assert type(value["size"]) is int
    assert type(value["key"]) is str
    assert all(type(k) is str for k in value)
    assert SessionState(sidecar).get("k") == value


@pytest.mark.parametrize("bad_key", [1, None, b"k", ("k",)])
def test_keys_must_be_strings(bad_key: Any) -> None:
    """Keys become JSON object keys, which are strings; strict names the field and the value."""
    store = SessionState(None, strict=True)
    with pytest.raises(UsageError, match=r"state\.key: .* is not a non-empty string"):
        store.set(bad_key, 1)
    with pytest.raises(UsageError):
        store.get(bad_key)
    with pytest.raises(UsageError):
        store.delete(bad_key)
    assert store.items() == {}


def test_keys_must_not_be_empty() -> None:
    """The design requires non-empty keys."""
    store = SessionState(None, strict=True)
    for call in (lambda: store.set("", 1), lambda: store.get(""), lambda: store.delete("")):
        with pytest.raises(UsageError, match="non-empty"):
            call()
    assert len(store) == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [(1, "v"), ("", "v"), ("\ud800", "v"), ("k", (1, 2)), ("k", {"a": [math.nan]})],
    ids=repr,
)
def test_a_lenient_store_drops_bad_writes_and_logs_once(
    sidecar: Path, key: Any, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Lenient: a bad key or value never raises; the write is dropped and logged once."""
    store = SessionState(sidecar)
    store.set("k", "before")
    on_disk = sidecar.read_bytes()
    with caplog.at_level(logging.DEBUG, logger="kit_telemetry"):
        store.set(key, value)
        store.set(key, value)
        assert store.get(key, "default") == ("before" if key == "k" else "default")
        assert store.delete(key) is (key == "k")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "state." in warnings[0].getMessage()
    if key == "k":
        assert sidecar.read_bytes() != on_disk  # the good delete was written
        assert store.items() == {}
    else:
        assert sidecar.read_bytes() == on_disk
        assert store.items() == {"k": "before"}


def test_store_keeps_its_own_copy_of_values(sidecar: Path) -> None:
    """A caller mutating its list after set, or the list get returned, must not change the store."""
    store = SessionState(sidecar)
    mine: dict[str, Any] = {"list": [1, 2], "dict": {"a": 1}}
    store.set("k", mine)
    mine["list"].append(3)
    mine["dict"]["b"] = 2
    assert store.get("k") == {"list": [1, 2], "dict": {"a": 1}}
    got = store.get("k")
    got["list"].append(99)
    got["dict"].clear()
    assert store.get("k") == {"list": [1, 2], "dict": {"a": 1}}
    everything = store.items()
    everything["k"]["list"].append(5)
    everything["new"] = 1
    assert store.items() == {"k": {"list": [1, 2], "dict": {"a": 1}}}
    assert read_json(sidecar) == {"k": {"list": [1, 2], "dict": {"a": 1}}}


def test_get_default_and_delete(sidecar: Path) -> None:
    """delete says whether the key existed; get falls back to the caller's default."""
    store = SessionState(sidecar)
    assert store.get("missing") is None
    sentinel: list[int] = []
    assert store.get("missing", sentinel) is sentinel
    store.set("a", None)
    assert store.get("a", "default") is None  # a stored None is a value, not a miss
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.get("a", "default") == "default"
    assert read_json(sidecar) == {}


def test_reads_come_from_memory_not_the_file(sidecar: Path) -> None:
    """Reading is O(1) from memory: editing the file behind the store's back changes no read."""
    store = SessionState(sidecar)
    store.set("k", "mine")
    sidecar.write_text('{"k": "theirs", "other": 1}')
    assert store.get("k") == "mine"
    assert store.items() == {"k": "mine"}


def test_memory_only_store_works_without_a_path() -> None:
    """A session without a file or state_dir still has working state."""
    store = SessionState(None)
    store.set("a", [1])
    assert store.get("a") == [1]
    assert store.path is None and not store.persistent
    assert store.flush() is True
    store.close()
    assert store.write_count == 0


def test_bad_configuration_raises_config_error(sidecar: Path) -> None:
    """Configuration mistakes fail at once, naming the value and what is allowed."""
    with pytest.raises(ConfigError, match="durability 'fast' is not one of sync, batched"):
        SessionState(sidecar, durability="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch_interval_ms -1"):
        SessionState(sidecar, batch_interval_ms=-1)


# -- sync writes --------------------------------------------------------------------------------


def test_sync_set_is_on_disk_when_it_returns(sidecar: Path) -> None:
    """In sync mode each change is in the file, complete, before set/delete return."""
    store = SessionState(sidecar)
    assert not sidecar.exists()
    for i in range(5):
        store.set(f"k{i}", {"i": i})
        assert read_json(sidecar) == store.items()
    store.delete("k0")
    assert read_json(sidecar) == store.items()
    assert store.write_count == 6
    assert temp_files(sidecar.parent) == []
    assert SessionState(sidecar).items() == store.items()


def test_write_replaces_the_file_rather_than_rewriting_it(sidecar: Path) -> None:
    """Atomic replacement: a reader holding the old file keeps a complete old snapshot."""
    store = SessionState(sidecar)
    store.set("k", "old")
    with sidecar.open("rb") as reader:
        old_inode = os.fstat(reader.fileno()).st_ino
        store.set("k", "new" * 1000)
        assert json.loads(reader.read()) == {"k": "old"}
    assert sidecar.stat().st_ino != old_inode
    assert read_json(sidecar) == {"k": "new" * 1000}


def test_missing_folder_is_created_on_first_write(tmp_path: Path) -> None:
    """A state_dir that does not exist yet must not lose the state."""
    path = sidecar_path(session_file=None, session_id="s", state_dir=tmp_path / "new" / "dir")
    assert path is not None
    store = SessionState(path)
    store.set("k", 1)
    assert read_json(path) == {"k": 1}


def test_concurrent_writers_never_see_an_older_snapshot_land(sidecar: Path) -> None:
    """Many threads in sync mode: the file only moves forward and holds each set once it returns."""
    store = SessionState(sidecar)
    threads_n, per_thread = 8, 40
    failures: list[str] = []
    done = threading.Event()

    def work(t: int) -> None:
        for i in range(per_thread):
            store.set(f"t{t}", i)
            on_disk = read_json(sidecar)[f"t{t}"]
            if on_disk != i:
                failures.append(f"thread {t} set {i} but the file holds {on_disk}")

    def watch() -> None:
        # Every thread's value only grows, so a key going back means an old snapshot landed.
        seen: dict[str, int] = {}
        while not done.is_set():
            snapshot = read_json_or_none(sidecar) or {}
            for key, value in snapshot.items():
                if value < seen.get(key, -1):
                    failures.append(f"{key} went back from {seen[key]} to {value}")
                seen[key] = max(value, seen.get(key, -1))

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert failures == []
    expected = {f"t{t}": per_thread - 1 for t in range(threads_n)}
    assert store.items() == expected
    assert read_json(sidecar) == expected
    assert 0 < store.write_count <= threads_n * per_thread
    assert temp_files(sidecar.parent) == []


def test_many_threads_mixed_operations_give_exact_final_state(sidecar: Path) -> None:
    """The one-lock concurrency test: exact contents after interleaved set/delete/get/items."""
    store = SessionState(sidecar, durability="batched", batch_interval_ms=5)
    threads_n, per_thread = 16, 300
    barrier = threading.Barrier(threads_n)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            store.set(f"t{t}-{i}", [t, i])
            if i % 3 == 0:
                assert store.delete(f"t{t}-{i}") is True
            store.set(f"last-{t}", i)
            assert store.get(f"t{t}-{i}") == (None if i % 3 == 0 else [t, i])
            if i % 25 == 0:
                assert store.items()[f"last-{t}"] == i

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    expected: dict[str, Any] = {f"last-{t}": per_thread - 1 for t in range(threads_n)}
    for t in range(threads_n):
        expected.update({f"t{t}-{i}": [t, i] for i in range(per_thread) if i % 3})
    assert store.items() == expected
    assert read_json(sidecar) == expected
    assert SessionState(sidecar).items() == expected


# -- failing writes -------------------------------------------------------------------------------


def test_write_failure_is_reported_not_raised(
    sidecar: Path, errors: list[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    """A folder where the file goes fails the rename: reported, the value kept, no temp left."""
    store = SessionState(sidecar, on_error=errors.append)
    store.set("a", 1)
    sidecar.unlink()
    sidecar.mkdir()
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        store.set("b", 2)  # must not raise
    assert [type(e) for e in errors] == [IsADirectoryError]
    assert store.items() == {"a": 1, "b": 2}
    assert temp_files(sidecar.parent) == []
    record = next(r for r in caplog.records if "could not write session state" in r.getMessage())
    assert str(sidecar) in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is IsADirectoryError
    assert store.flush() is False
    # Once the obstacle is gone the next write carries everything, the failed change included.
    sidecar.rmdir()
    store.set("c", 3)
    assert read_json(sidecar) == {"a": 1, "b": 2, "c": 3}


def test_write_failure_raises_when_strict(tmp_path: Path) -> None:
    """strict=True surfaces the failure (for tests) and still keeps the value in memory."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    store = SessionState(blocker / "s.ext-state.json", strict=True)
    with pytest.raises(NotADirectoryError):
        store.set("k", 1)
    assert store.get("k") == 1
    with pytest.raises(NotADirectoryError):
        store.flush()
    assert blocker.read_text() == "a file where the folder should be"


def test_on_error_that_raises_is_contained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken error callback must not turn a reported failure into a crash."""
    blocker = tmp_path / "file"
    blocker.write_text("")

    def broken(exc: BaseException) -> None:
        raise RuntimeError("callback bug")

    store = SessionState(blocker / "s.ext-state.json", on_error=broken)
    with caplog.at_level(logging.ERROR, logger="kit_telemetry"):
        store.set("k", 1)
    assert store.get("k") == 1
    assert any("on_error callback failed" in r.getMessage() for r in caplog.records)


def test_full_disk_leaves_previous_file_intact(tmp_path: Path) -> None:
    """A write cut short by the file-size limit (EFBIG, like ENOSPC) keeps the old snapshot."""
    path = tmp_path / "s.ext-state.json"
    result = run_child("fsize", path)
    assert result["raised"] is None
    assert result["errors"] == ["OSError"]  # EFBIG has no OSError subclass
    assert result["file_intact"] is True
    assert result["big_in_memory"] == 20_000
    assert result["files_after_failure"] == ["s.ext-state.json"]  # its temp file was removed
    assert "could not write session state" in result["stderr"]
    assert "Traceback" in result["stderr"]  # logged with exc_info
    assert result["flushed"] is True
    assert result["final"] == {"small": 1, "big": "x" * 20_000}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the nobody user can reach (pytest's tmp_path sits under a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="kit-state-test-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def test_read_only_folder_is_reported_and_keeps_the_file(shared_dir: Path) -> None:
    """EACCES on the temp file: the old sidecar stays as it was and the value stays in memory."""
    path = shared_dir / "s.ext-state.json"
    SessionState(path).set("old", 1)
    path.chmod(0o644)
    before = path.read_bytes()
    if os.geteuid() != 0:
        shared_dir.chmod(0o555)  # as root the child drops to nobody instead
    result = run_child("readonly", path)
    shared_dir.chmod(0o755)
    assert result["dropped"] is (os.geteuid() == 0)
    assert result["loaded"] == {"old": 1}
    assert result["errors"] == ["PermissionError"]
    assert result["new_in_memory"] == 2
    assert result["flushed"] is False
    assert result["errors_after_flush"] == 2
    assert path.read_bytes() == before
    assert os.listdir(shared_dir) == ["s.ext-state.json"]


def test_unreadable_file_is_never_overwritten(shared_dir: Path) -> None:
    """An unreadable sidecar is reported; the store goes memory-only rather than clobber it."""
    path = shared_dir / "s.ext-state.json"
    SessionState(path).set("precious", 1)
    before = path.read_bytes()
    if os.geteuid() != 0:
        path.chmod(0o000)  # as root the file is already 0600 and the child drops to nobody
    result = run_child("unreadable", path)
    path.chmod(0o600)
    assert result["errors"] == ["PermissionError"]
    assert result["persistent"] is False
    assert result["items"] == {"new": 3}
    assert path.read_bytes() == before


# -- batched writes -------------------------------------------------------------------------------


class ReplaceCounter:
    """Counts real file replacements by wrapping os.replace."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.times: list[float] = []
        self._real = os.replace

    def __call__(self, src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(dst) == self.target:
            self.times.append(time.monotonic())
        self._real(src, dst, **kwargs)


def test_batched_writes_are_coalesced(sidecar: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds of changes within an interval cost one file replacement, not hundreds."""
    counter = ReplaceCounter(sidecar)
    monkeypatch.setattr(os, "replace", counter)
    store = SessionState(sidecar, durability="batched", batch_interval_ms=10_000)
    for i in range(500):
        store.set("n", i)
        store.set(f"k{i % 10}", i)
    assert not sidecar.exists()  # nothing written yet: the interval has not passed
    assert store.flush() is True
    assert counter.times and len(counter.times) == 1
    assert read_json(sidecar)["n"] == 499
    assert store.flush() is True  # nothing new: no second write
    assert len(counter.times) == 1
    store.close()
    assert len(counter.times) == 1


def test_batched_timer_writes_at_most_every_interval(
    sidecar: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steady stream of changes is written by the timer, at least an interval apart."""
    counter = ReplaceCounter(sidecar)
    monkeypatch.setattr(os, "replace", counter)
    interval_ms = 50
    store = SessionState(sidecar, durability="batched", batch_interval_ms=interval_ms)
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < 0.5:
        store.set("n", i)
        i += 1
        time.sleep(0.001)
    deadline = time.monotonic() + 5
    while read_json_or_none(sidecar) != {"n": i - 1} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert read_json(sidecar) == {"n": i - 1}  # the last change landed without a flush
    elapsed = counter.times[-1] - started
    assert 2 <= len(counter.times) <= elapsed / (interval_ms / 1000) + 2
    gaps = [b - a for a, b in zip(counter.times[:-1], counter.times[1:], strict=True)]
    assert min(gaps) >= interval_ms / 1000 * 0.95
    assert len(counter.times) < i / 10  # and far fewer writes than changes
    store.close()


def read_json_or_none(path: Path) -> Any:
    try:
        return read_json(path)
    except FileNotFoundError:
        return None


def test_close_flushes_and_is_idempotent(sidecar: Path) -> None:
    """Session end must not lose batched changes; closing twice is harmless."""
    store = SessionState(sidecar, durability="batched", batch_interval_ms=60_000)
    store.set("a", 1)
    store.close()
    assert read_json(sidecar) == {"a": 1}
    writes = store.write_count
    store.close()
    assert store.write_count == writes
    # A straggler after close is written at once rather than lost.
    store.set("late", True)
    assert read_json(sidecar) == {"a": 1, "late": True}


def test_batched_changes_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    """A process that ends without flushing still leaves its batched state on disk."""
    path = tmp_path / "s.ext-state.json"
    result = run_child("atexit", path)
    assert result["written_before_exit"] is False
    assert read_json(path) == {"a": 1, "b": [1, {"c": None}]}


def test_stores_can_be_garbage_collected(sidecar: Path) -> None:
    """The exit hook holds stores weakly, so finished sessions do not leak."""
    store = SessionState(sidecar, durability="batched", batch_interval_ms=10)
    store.set("a", 1)
    ref = weakref.ref(store)
    del store
    deadline = time.monotonic() + 5
    while ref() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    assert ref() is None
    assert read_json(sidecar) == {"a": 1}  # its pending write happened before it went


# -- loading ------------------------------------------------------------------------------------


def test_missing_file_means_empty_store(sidecar: Path) -> None:
    """A new session has no state, and loading creates no file."""
    store = SessionState(sidecar)
    assert store.items() == {}
    assert not sidecar.exists()


@pytest.mark.parametrize("content", [b"", b"  \n\t "])
def test_empty_file_means_empty_store(sidecar: Path, content: bytes) -> None:
    """An empty sidecar (e.g. touched by a tool) is not corrupt: it is simply empty."""
    sidecar.write_bytes(content)
    store = SessionState(sidecar)
    assert store.items() == {}
    store.set("k", 1)
    assert read_json(sidecar) == {"k": 1}
    assert not list(sidecar.parent.glob("*corrupt*"))


CORRUPT = [
    b"{not json",
    b'{"a": 1',
    b"[1, 2]",
    b'"a string"',
    b"42",
    b"null",
    b'{"a": NaN}',
    b'{"a": "\\ud800"}',
    b'{"\\udfff": 1}',
    b"[" * 300 + b"]" * 300,
    b'{"deep": ' + b"[" * 250 + b"]" * 250 + b"}",
    b"\xff\xfe\x00garbage",
]


@pytest.mark.parametrize("content", CORRUPT, ids=lambda c: repr(c[:24]))
def test_corrupt_file_is_moved_aside_never_overwritten(
    sidecar: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The corrupt bytes may be someone's only copy: keep them, warn, start empty."""
    sidecar.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        store = SessionState(sidecar)
    assert store.items() == {}
    asides = list(sidecar.parent.glob(f"{sidecar.name}.corrupt-*"))
    assert len(asides) == 1
    assert re.fullmatch(
        re.escape(sidecar.name) + r"\.corrupt-\d{8}T\d{6}-[0-9a-f]{8}", asides[0].name
    )
    assert asides[0].read_bytes() == content
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert str(sidecar) in warning.getMessage() and str(asides[0]) in warning.getMessage()
    store.set("k", 1)
    assert read_json(sidecar) == {"k": 1}
    assert asides[0].read_bytes() == content


def test_a_corrupt_file_is_reported_to_on_error_but_never_raised(
    sidecar: Path, errors: list[BaseException]
) -> None:
    """The lost state must be counted; the store still works, so even strict does not raise."""
    sidecar.write_bytes(b'{"k": ')
    store = SessionState(sidecar, on_error=errors.append, strict=True)
    assert [type(e) for e in errors] == [json.JSONDecodeError]
    assert store.persistent and store.items() == {}
    sidecar.write_bytes(b"[1]")
    SessionState(sidecar, on_error=errors.append)
    assert len(errors) == 2 and "not an object" in str(errors[1])
    assert len(list(sidecar.parent.glob("*.corrupt-*"))) == 2


def test_a_corrupt_sidecar_with_the_longest_name_is_still_moved_aside(tmp_path: Path) -> None:
    """The ".corrupt-..." name must fit the file system too, or the bytes stay in the way."""
    path = sidecar_path(
        session_file=tmp_path / ("c" * 249 + ".jsonl"), session_id="s", state_dir=None
    )
    assert path is not None
    path.write_bytes(b"{not json")
    errors: list[BaseException] = []
    store = SessionState(path, on_error=errors.append)
    assert store.persistent
    (aside,) = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert aside.read_bytes() == b"{not json" and len(os.fsencode(aside.name)) <= 255
    assert [type(e) for e in errors] == [json.JSONDecodeError]


def test_repeated_corruption_keeps_every_copy(sidecar: Path) -> None:
    """Two corrupt files in the same second must not overwrite each other aside."""
    for content in (b"{first", b"{second"):
        sidecar.write_bytes(content)
        SessionState(sidecar)
    asides = sorted(p.read_bytes() for p in sidecar.parent.glob("*.corrupt-*"))
    assert asides == [b"{first", b"{second"]


def test_path_that_is_a_directory_keeps_state_in_memory(
    sidecar: Path, errors: list[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    """A folder at the sidecar path is reported clearly; the session still has working state."""
    sidecar.mkdir()
    (sidecar / "inside").write_text("untouched")
    with caplog.at_level(logging.WARNING, logger="kit_telemetry"):
        store = SessionState(sidecar, on_error=errors.append)
    assert [type(e) for e in errors] == [IsADirectoryError]
    assert any("is a directory" in r.getMessage() for r in caplog.records)
    store.set("k", [1])
    assert store.get("k") == [1]
    assert store.persistent is False
    assert errors and len(errors) == 1  # reported once, not on every change
    assert (sidecar / "inside").read_text() == "untouched"
    with pytest.raises(IsADirectoryError):
        SessionState(sidecar, strict=True)


def test_stale_temp_files_are_cleaned_up_fresh_ones_kept(sidecar: Path) -> None:
    """Leftovers of a crash go on the next load; a temp another writer may be using stays."""
    folder = sidecar.parent
    stale = folder / f".{sidecar.name}.abc123.tmp"
    fresh = folder / f".{sidecar.name}.def456.tmp"
    unrelated = folder / ".other.ext-state.json.abc.tmp"
    for path in (stale, fresh, unrelated):
        path.write_text('{"half": ')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(unrelated, (old, old))
    SessionState(sidecar)
    assert not stale.exists()
    assert fresh.exists() and unrelated.exists()


# -- crash safety -------------------------------------------------------------------------------


def test_sigkill_mid_stream_always_leaves_a_complete_snapshot(tmp_path: Path) -> None:
    """Killed at random moments, the sidecar is always a whole, valid, acknowledged state."""
    path = tmp_path / "s.ext-state.json"
    rng = random.Random(1234)
    acked_total = 0
    for _ in range(24):
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), "stream", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode()
        assert ready.startswith("ready "), proc.stderr.read() if proc.stderr else ready
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        # Only complete lines count: the kill may cut an acknowledgement in half.
        lines = rest.decode().split("\n")[:-1]
        acked = int(lines[-1]) if lines else int(ready.split()[1]) - 1
        acked_total += len(lines)

        state = read_json(path) if path.exists() else {}
        assert isinstance(state, dict)
        op = child.last_op(state)  # raises unless the content is exactly a state of the stream
        assert op >= acked, f"set({acked}) had returned but the file holds op {op}"
        assert SessionState(path).items() == state
        for name in os.listdir(tmp_path):
            assert name == path.name or re.fullmatch(rf"\.{re.escape(path.name)}\..+\.tmp", name), (
                name
            )
    assert acked_total > 24  # the children did real work between kills
    # Leftover temp files prove some kills landed mid-write, the case this test is for.
    assert list(tmp_path.glob(".*.tmp"))
    assert not list(tmp_path.glob("*corrupt*"))
