"""Taking over a stale point lock is atomic: of two contenders that find the same stale lock
exactly one replaces it, a take-over that died midway does not block the folder, a live lock
is never taken over, and a take-over leaves nothing but its lock behind."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from multitask_evidence.experiments import backends
from multitask_evidence.experiments.backends import FolderInUseError, PointLock, lock_path


def _dead_pid() -> int:
    """The id of a process of this host that has exited (and been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _plant_stale(run: Path) -> str:
    """A lock for ``run`` left by a process of this host that is gone; its path."""
    path = lock_path(run)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text(f"{socket.gethostname()} {_dead_pid()} None\n")
    return path


def _marker(path: str, generation: int) -> str:
    """The take-over marker of the lock now at ``path``, of the given generation."""
    seen = backends._lock_identity(path)
    assert seen is not None
    return f"{path}.takeover-{seen[1]}-{generation}"


def test_two_contenders_for_one_stale_lock_exactly_one_takes_it(tmp_path, monkeypatch) -> None:
    run = tmp_path / "runs" / "p"
    path = _plant_stale(run)
    found_stale: list[str] = []

    def slow_takeover() -> None:  # both have read the stale lock before either replaces it
        found_stale.append(threading.current_thread().name)
        time.sleep(0.5)

    monkeypatch.setattr(backends, "_before_takeover", slow_takeover)
    locks = {"a": PointLock(run, owner="a"), "b": PointLock(run, owner="b")}
    outcome: dict[str, object] = {}
    start = threading.Barrier(len(locks))

    def contend(name: str) -> None:
        start.wait()
        try:
            locks[name].acquire()
            outcome[name] = "acquired"
        except FolderInUseError as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=contend, args=(n,), name=n) for n in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)

    assert sorted(found_stale) == ["a", "b"]  # both contenders found the lock stale
    winners = [n for n, o in outcome.items() if o == "acquired"]
    assert len(winners) == 1
    (loser,) = set(locks) - set(winners)
    assert isinstance(outcome[loser], FolderInUseError)
    assert f"is being written by process {os.getpid()} on {socket.gethostname()}" in str(
        outcome[loser]
    )
    # the lock holds the winner, and nothing else is left beside it
    assert Path(path).read_text() == locks[winners[0]].me + "\n"
    assert Path(path).read_text().split()[3] == winners[0]
    assert os.listdir(run.parent) == [os.path.basename(path)]
    locks[loser].release()  # the loser's release leaves the winner's lock alone
    assert Path(path).read_text() == locks[winners[0]].me + "\n"
    locks[winners[0]].release()
    assert os.listdir(run.parent) == []


@pytest.mark.parametrize("dead_takeovers", [1, 3])
def test_markers_of_take_overs_that_died_do_not_block(tmp_path, dead_takeovers) -> None:
    run = tmp_path / "p"
    path = _plant_stale(run)
    for generation in range(dead_takeovers):
        Path(_marker(path, generation)).write_text(f"{socket.gethostname()} {_dead_pid()} None\n")
    with PointLock(run, owner="next") as lock:
        assert Path(path).read_text().split() == lock.me.split()
        assert lock.me.split()[1:2] == [str(os.getpid())]
        assert os.listdir(tmp_path) == [os.path.basename(path)]  # the dead markers are gone
    assert os.listdir(tmp_path) == []


def test_too_many_dead_take_overs_give_up_without_touching_the_lock(tmp_path) -> None:
    run = tmp_path / "p"
    path = _plant_stale(run)
    stale = Path(path).read_text()
    markers = [_marker(path, g) for g in range(backends._TAKEOVER_GENERATIONS)]
    for m in markers:
        Path(m).write_text(f"{socket.gethostname()} {_dead_pid()} None\n")
    with pytest.raises(FolderInUseError, match="could not take over the stale lock"):
        PointLock(run).acquire()
    assert Path(path).read_text() == stale
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in [path, *markers])


def test_a_live_take_over_is_waited_for_and_never_undercut(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(backends, "_TAKEOVER_POLLS", 3)
    run = tmp_path / "p"
    path = _plant_stale(run)
    stale = Path(path).read_text()
    marker = _marker(path, 0)
    live = PointLock(run, owner="busy").me  # this very process: alive
    Path(marker).write_text(live + "\n")
    t0 = time.monotonic()
    with pytest.raises(FolderInUseError, match=rf"process {os.getpid()} .*taking over") as err:
        PointLock(run, owner="late").acquire()
    assert time.monotonic() - t0 >= 3 * backends._TAKEOVER_POLL_S
    assert marker in str(err.value)
    # the stale lock and the live contender's marker are untouched
    assert Path(path).read_text() == stale
    assert Path(marker).read_text() == live + "\n"
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in [path, marker])


def test_a_live_lock_is_never_taken_over(tmp_path) -> None:
    run = tmp_path / "p"
    with PointLock(run, owner="a") as held:
        with pytest.raises(FolderInUseError, match=rf"is being written by process {os.getpid()}"):
            PointLock(run, owner="b").acquire()
        assert Path(held.path).read_text() == held.me + "\n"
        assert os.listdir(tmp_path) == [os.path.basename(held.path)]
    # a lock of another host cannot be checked, so it counts as live
    Path(lock_path(run)).write_text("otherhost 1 None\n")
    with pytest.raises(FolderInUseError, match="by process 1 on otherhost"):
        PointLock(run).acquire()
    assert Path(lock_path(run)).read_text() == "otherhost 1 None\n"


def test_a_take_over_leaves_no_marker(tmp_path) -> None:
    run = tmp_path / "p"
    path = _plant_stale(run)
    marker = _marker(path, 0)
    lock = PointLock(run, owner="x")
    lock.acquire()
    assert Path(path).read_text() == lock.me + "\n"
    assert not os.path.exists(marker)
    assert os.listdir(tmp_path) == [os.path.basename(path)]
    lock.release()
    assert os.listdir(tmp_path) == []


def test_take_over_without_hard_links(tmp_path, monkeypatch) -> None:
    """On a file system without hard links the marker is an exclusive create instead."""

    def no_link(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted", dst)

    monkeypatch.setattr(backends.os, "link", no_link)
    run = tmp_path / "p"
    path = _plant_stale(run)
    with PointLock(run) as lock:
        assert Path(path).read_text() == lock.me + "\n"
        assert os.listdir(tmp_path) == [os.path.basename(path)]
