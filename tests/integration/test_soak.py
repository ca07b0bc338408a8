"""The short soak: readers, committers and a server killed every 8 s, for about 25 s.

``scripts/soak`` runs the long form by hand (docs/design.md, "The soak"); this
form keeps the promise in CI: no wrong byte reaches a reader, no committed
version is lost, every stored blob verifies.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.soak import SoakSettings, run_soak


def test_a_short_soak_reads_no_wrong_byte_and_loses_no_version(tmp_path: Path) -> None:
    result = run_soak(SoakSettings(tmp_path / "soak", seconds=25, kill_every=8))
    print("\n".join(result.lines()))  # shown with -s, and in the report of a failure

    assert result.crashed == ()
    assert result.kills >= 2
    assert result.wrong_bytes == 0
    assert result.lost_versions == ()
    assert result.bad_blobs == 0
    assert result.blobs_verified > 0
    # Every path did work, or the figures above would prove little.
    for reader in ("mount-a", "mount-b"):
        assert result.reads.get(reader, 0) > 0, reader
    assert result.reads.get("sdk", 0) + result.reads.get("sdk (no cache)", 0) > 0
    for committer in ("mv", "commit", "push"):
        assert result.commits.get(committer, 0) > 0, committer
