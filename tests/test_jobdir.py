import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from videostyle.executor import claim, run_claimed, run_in_order
from videostyle.jobdir import JobDir, lock_is_live, lock_path, process_identity, read_json, try_lock, write_json
from videostyle.journal import read_journal
from videostyle.units import Unit, UnitResult, by_critical_path


def test_manifest_round_trip_and_corrupt_reads_empty(tmp_path: Path) -> None:
    job = JobDir(tmp_path / "job")
    job.create()
    job.update_manifest(a=1)
    job.update_manifest(b=[1, 2])
    assert job.read_manifest() == {"a": 1, "b": [1, 2]}
    job.manifest_path.write_text("{not json")
    assert job.read_manifest() == {}
    assert not list(job.root.glob(".*.tmp"))  # atomic writes leave no temp files


def test_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    first = try_lock(tmp_path, "unit/a", ttl=60)
    assert first is not None
    assert try_lock(tmp_path, "unit/a", ttl=60) is None
    first.release()
    second = try_lock(tmp_path, "unit/a", ttl=60)
    assert second is not None
    second.release()


def _plant_claim(locks_dir: Path, unit: str, number: int, age: float, **holder) -> Path:
    folder = lock_path(locks_dir, unit)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{number:08d}.lock"
    write_json(path, {"token": "theirs", "ttl": 60, **holder})
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_expired_lock_of_dead_worker_is_taken_over(tmp_path: Path) -> None:
    planted = _plant_claim(tmp_path, "unit/b", 1, age=120, host="elsewhere", pid=1)
    lock = try_lock(tmp_path, "unit/b", ttl=60)
    assert lock is not None and lock.number == 2 and read_json(lock.path)["token"] == lock.token
    assert not planted.exists()  # older claims are forgotten
    lock.release()
    assert not lock.path.exists() and try_lock(tmp_path, "unit/b", ttl=60).number == 3  # numbers only grow


def test_the_lifetime_is_the_locks_own_not_the_claimers(tmp_path: Path) -> None:
    _plant_claim(tmp_path, "u", 1, age=100, ttl=3600)  # a holder that beats every 15 minutes
    assert try_lock(tmp_path, "u", ttl=60) is None
    assert lock_is_live(tmp_path, "u", ttl=60)


def test_a_client_with_a_fast_clock_takes_no_live_lock(tmp_path: Path, monkeypatch) -> None:
    _plant_claim(tmp_path, "u", 1, age=0, ttl=60)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 480)  # this machine's clock 8 minutes fast
    assert try_lock(tmp_path, "u", ttl=60) is None  # the age is read off the file server's clock
    _plant_claim(tmp_path, "v", 1, age=-480, ttl=60)  # a lock whose mtime is in the future
    assert try_lock(tmp_path, "v", ttl=60) is None


def test_a_dead_process_of_this_namespace_is_seen_at_once_another_containers_is_not(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    here = process_identity()
    _plant_claim(tmp_path, "mine", 1, age=0, **{**here, "pid": proc.pid, "start": "1"})
    assert try_lock(tmp_path, "mine", ttl=60) is not None  # killed here: resumed without waiting
    _plant_claim(tmp_path, "theirs", 1, age=0, **{**here, "pidns": "other-container", "pid": proc.pid})
    assert try_lock(tmp_path, "theirs", ttl=60) is None  # same host name, other PIDs: wait for expiry
    _plant_claim(tmp_path, "alive", 1, age=0, **here)  # this very process
    assert try_lock(tmp_path, "alive", ttl=60) is None


def _hammer(locks_dir: Path, rounds: int, live: list, numbers: list[int], doubles: list[str],
            guard: threading.Lock, barrier: threading.Barrier) -> None:
    barrier.wait()
    end = time.monotonic() + rounds * 0.06
    while time.monotonic() < end:
        lock = try_lock(locks_dir, "contended", ttl=0.05)  # every claim is stale almost at once
        if lock is None:
            continue
        lock._stop.set()  # its heartbeat stops, as if the process paused: the claim goes stale
        with guard:
            numbers.append(lock.number)
            holders = [other for other in live if other.still_held()]
            if holders:
                doubles.append(f"{lock.number} taken while {[h.number for h in holders]} held")
            live.append(lock)
        time.sleep(0.08)  # past the lifetime: others take it over meanwhile
        with guard:
            live.remove(lock)
        lock.release()


def test_no_two_workers_hold_a_unit_even_when_taking_over_stale_locks(tmp_path: Path) -> None:
    live: list = []
    numbers: list[int] = []
    doubles: list[str] = []
    guard, barrier = threading.Lock(), threading.Barrier(6)
    threads = [threading.Thread(target=_hammer, args=(tmp_path, 25, live, numbers, doubles, guard, barrier))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(numbers) > 25  # many claims, most of them takeovers of a stale one
    assert len(set(numbers)) == len(numbers)  # each claim number won by one worker alone
    assert doubles == []  # and a new claim always ended the old one's hold


def test_a_worker_paused_past_its_lifetime_records_nothing(tmp_path: Path) -> None:
    job = JobDir(tmp_path)
    out = tmp_path / "out"

    def slow() -> UnitResult:
        # meanwhile its lock expires and another worker takes the unit over
        assert try_lock(job.locks_dir, "u", ttl=60) is not None
        out.write_text("late")
        return UnitResult(iterations=1)

    unit = Unit("u", "test", (out,), (), slow)
    lock = try_lock(job.locks_dir, "u", ttl=60)
    old = time.time() - 120
    os.utime(lock.path, (old, old))
    lock._stop.set()  # its heartbeat stopped (the process was paused)
    run_claimed(unit, lock, job, lambda p: p.is_file())
    assert read_journal(tmp_path) == []


def _writer(path: Path, calls: list[str]):
    def work() -> UnitResult:
        calls.append(path.name)
        path.write_text("done")
        return UnitResult(iterations=1)
    return work


def test_run_in_order_skips_done_units_records_and_reports_each(tmp_path: Path) -> None:
    calls: list[str] = []
    units = [Unit(name=f"u{i}", stage="test", outputs=(tmp_path / f"out{i}",), needs=(),
                  work=_writer(tmp_path / f"out{i}", calls)) for i in range(3)]
    (tmp_path / "out1").write_text("already there")
    events = []
    run_in_order(units, JobDir(tmp_path), lambda p: p.is_file(), events.append)
    assert calls == ["out0", "out2"]
    assert [(e.done, e.total, e.skipped) for e in events] == [(1, 3, False), (2, 3, True), (3, 3, False)]
    assert [(e["unit"], e["outputs"], e["iterations"]) for e in read_journal(tmp_path)] == [
        ("u0", {"out0": 4}, 1), ("u2", {"out2": 4}, 1)]
    assert not list((tmp_path / "locks").glob("*/*.lock"))  # every lock released
    calls.clear()
    run_in_order(units, JobDir(tmp_path), lambda p: p.is_file(), events.append)
    assert calls == []


def test_units_with_the_longest_chain_behind_them_come_first(tmp_path: Path) -> None:
    def unit(name: str, *needs: str) -> Unit:
        return Unit(name, "stylize", (tmp_path / name,), needs, lambda: None)

    plan = [unit("a"), unit("b1"), unit("c", "a"), unit("b2", "b1"), unit("b3", "b2")]
    # b1 has b2 and b3 waiting on it, a only c; equal chains keep plan order (a before b2)
    assert [u.name for u in by_critical_path(plan)] == ["b1", "a", "b2", "c", "b3"]
    order = {u.name: k for k, u in enumerate(by_critical_path(plan))}
    assert all(order[need] < order[u.name] for u in plan for need in u.needs)  # still runnable in this order


def test_a_unit_is_claimed_only_when_free_and_not_done(tmp_path: Path) -> None:
    job = JobDir(tmp_path)
    out = tmp_path / "out"
    unit = Unit("u", "test", (out,), (), _writer(out, []))
    held = try_lock(job.locks_dir, "u", ttl=60)
    assert held is not None and claim(unit, job, lambda p: p.is_file(), 60) is None  # another worker has it
    held.release()
    out.write_text("finished meanwhile")
    assert claim(unit, job, lambda p: p.is_file(), 60) is None  # done: checked again under the lock
    assert not list(job.lock_path("u").glob("*.lock"))  # and the lock given back
    out.unlink()
    lock = claim(unit, job, lambda p: p.is_file(), 60)
    assert lock is not None and run_claimed(unit, lock, job, lambda p: p.is_file()).iterations == 1
    assert [e["unit"] for e in read_journal(tmp_path)] == ["u"] and not list(job.lock_path("u").glob("*.lock"))


def test_the_ledger_lists_the_journal_once_per_tick_and_at_once_when_asked(tmp_path: Path) -> None:
    """A worker checks every unit before each claim: within a folder stamp's tick the journal is
    not listed for each of them, yet a record made in that tick is seen once asked (a claim, or
    this process's own record)."""
    from videostyle import journal
    from videostyle.journal import Ledger, record_done

    out, other = tmp_path / "out", tmp_path / "other"
    out.write_text("x")
    other.write_text("y")
    record_done(tmp_path, "first", 0.1, [other])
    ledger = Ledger(tmp_path)
    assert ledger.recorded_size(other) == 1
    folder = tmp_path / "journal"
    stamp = folder.stat().st_mtime_ns
    listings = []
    real = journal.os.scandir
    journal.os.scandir = lambda path: listings.append(path) or real(path)
    try:
        record_done(tmp_path, "u", 0.1, [out])
        os.utime(folder, ns=(stamp, stamp))  # renamed in within the same tick: the stamp did not move
        for _ in range(500):
            ledger.recorded_size(out)
        assert len(listings) <= 1  # not once per call
        ledger.read_again()  # as a claim does
        assert ledger.recorded_size(out) == 1
    finally:
        journal.os.scandir = real
