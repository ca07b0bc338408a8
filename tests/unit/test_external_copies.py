"""The journal of external copies: shared by processes, torn lines, older records, rewrites."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from artfs.cache import externals
from artfs.cache.externals import ExternalCopies, ExternalCopy

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _record_in_another_process(root: str, digest: str, path: str) -> None:
    ExternalCopies(Path(root)).add(digest, ExternalCopy(path, 3, 7))


def test_copies_recorded_by_another_process_are_learnt_on_refresh(tmp_path: Path) -> None:
    mine = ExternalCopies(tmp_path)
    mine.add(A, ExternalCopy("/data/a", 1, 2))
    process = multiprocessing.get_context("spawn").Process(
        target=_record_in_another_process, args=(str(tmp_path), B, "/data/b")
    )
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert B not in mine  # memory only, until asked to look
    mine.refresh()
    assert mine.get(B) == ExternalCopy("/data/b", 3, 7)
    assert ExternalCopies(tmp_path).get(A) == ExternalCopy("/data/a", 1, 2)


def test_a_dropped_copy_is_gone_for_everyone_and_the_last_line_wins(tmp_path: Path) -> None:
    first = ExternalCopies(tmp_path)
    first.add(A, ExternalCopy("/data/a", 1, 2))
    first.add(B, ExternalCopy("/data/b", 1, 2))
    second = ExternalCopies(tmp_path)
    first.drop(A)
    first.add(B, ExternalCopy("/elsewhere/b", 5, 6))
    second.refresh()
    assert A not in second
    assert second.get(B) == ExternalCopy("/elsewhere/b", 5, 6)
    assert len(ExternalCopies(tmp_path)) == 1


def test_a_torn_line_costs_that_line_only(tmp_path: Path) -> None:
    copies = ExternalCopies(tmp_path)
    copies.add(A, ExternalCopy("/data/a", 1, 2))
    with open(copies.path, "ab") as journal:  # a writer that crashed mid-line
        journal.write(b'\n{"digest": "' + B.encode() + b'", "pa')
    copies.add(C, ExternalCopy("/data/c", 1, 2))
    fresh = ExternalCopies(tmp_path)
    assert (A in fresh, B in fresh, C in fresh) == (True, False, True)
    copies.refresh()
    assert C in copies


def test_records_of_the_older_layout_are_adopted(tmp_path: Path) -> None:
    old = tmp_path / "external" / A[:2] / A
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"path": "/data/a", "size": 1, "mtime_ns": 2}))
    damaged = tmp_path / "external" / B[:2] / B
    damaged.parent.mkdir(parents=True)
    damaged.write_text("{not json")
    copies = ExternalCopies(tmp_path)
    assert copies.get(A) == ExternalCopy("/data/a", 1, 2)
    assert B not in copies
    assert not (tmp_path / "external").exists()


def test_a_journal_of_mostly_dead_lines_is_rewritten_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(externals, "COMPACT_SLACK", 10)
    copies = ExternalCopies(tmp_path)
    for round_ in range(20):
        copies.add(A, ExternalCopy(f"/data/a{round_}", 1, round_))
    copies.add(B, ExternalCopy("/data/b", 1, 2))
    reader = ExternalCopies(tmp_path)  # rewrites: 21 lines, 2 live copies
    assert len(reader.path.read_bytes().splitlines()) == 2
    assert reader.get(A) == ExternalCopy("/data/a19", 1, 19)
    copies.add(C, ExternalCopy("/data/c", 1, 2))  # appends to the new journal
    copies.refresh()  # notices the rewrite and reads it whole
    assert (copies.get(A), C in copies) == (ExternalCopy("/data/a19", 1, 19), True)
    reader.refresh()
    assert C in reader


def test_a_rewrite_a_crash_interrupted_is_removed_once_stale(tmp_path: Path) -> None:
    ExternalCopies(tmp_path).add(A, ExternalCopy("/data/a", 1, 2))
    stale = tmp_path / "external.log.dead.part"
    recent = tmp_path / "external.log.live.part"
    for part in (stale, recent):
        part.write_bytes(b"half a rewrite")
    old = time.time() - externals.STALE_REWRITE_SECONDS - 60
    os.utime(stale, (old, old))
    assert A in ExternalCopies(tmp_path)
    assert (stale.exists(), recent.exists()) == (False, True)


def test_a_line_damaged_inside_costs_that_copy_only_when_it_is_asked_for(tmp_path: Path) -> None:
    copies = ExternalCopies(tmp_path)
    copies.add(A, ExternalCopy("/data/a", 1, 2))
    copies.add(B, ExternalCopy("/data/b", 1, 2))
    journal = copies.path.read_bytes()
    # Bit rot inside B's line: its digest and its end still look right.
    damaged = journal.replace(b'"/data/b", "size": 1', b'"/data/b", "size": "?"')
    assert damaged != journal
    copies.path.write_bytes(damaged)
    fresh = ExternalCopies(tmp_path)
    assert fresh.get(B) is None
    assert B not in fresh
    assert fresh.get(A) == ExternalCopy("/data/a", 1, 2)
