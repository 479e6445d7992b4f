import os
import time
from pathlib import Path

from videostyle.executor import claim, run_claimed, run_in_order
from videostyle.jobdir import JobDir, read_json, try_lock, write_json
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


def test_expired_lock_of_dead_worker_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "unit__b.lock"
    write_json(path, {"token": "dead", "pid": 999999})
    old = time.time() - 120
    os.utime(path, (old, old))
    lock = try_lock(tmp_path, "unit/b", ttl=60)
    assert lock is not None and read_json(path)["token"] == lock.token
    lock.release()
    assert not path.exists()


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
    assert not list((tmp_path / "locks").iterdir())  # every lock released
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
    assert not job.lock_path("u").exists()  # and the lock given back
    out.unlink()
    lock = claim(unit, job, lambda p: p.is_file(), 60)
    assert lock is not None and run_claimed(unit, lock, job).iterations == 1
    assert [e["unit"] for e in read_journal(tmp_path)] == ["u"] and not job.lock_path("u").exists()
