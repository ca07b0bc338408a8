"""Two ``artfs serve`` replicas on one PostgreSQL and one blob store (tests/support/replicas.py),
with clients alternating between them: what one replica does, the other sees at once, and
the registry's rules hold across them through the database alone — version numbers,
alias compare-and-swap, the no-op on identical content, a replica killed mid-commit, and
gc on one replica while the other commits.

Races are made certain, not hoped for, where a row lock can hold one side at the point
that matters: the test takes the lock itself, in PostgreSQL, and waits (by polling
``pg_locks``) until the replica's transaction is queued behind it.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, text

import artfs
from artfs.client.http import RegistryClient
from artfs.client.models import FileRecord, NewVersion, RunStart
from artfs.config import resolve_config
from artfs.server.db.engine import create_registry_engine, migrate
from tests.integration.trees import read_tree
from tests.support.polling import wait_until
from tests.support.postgres import engine
from tests.support.registry import RegistryProcess, auth_headers
from tests.support.replicas import Replicas, own_replicas, replicas, shared_store

__all__ = ["engine", "own_replicas", "replicas", "shared_store"]  # the fixtures, used by name

T = TypeVar("T")
KiB = 1 << 10


def files_of(seed: int) -> dict[str, bytes]:
    """Two small files of content ``seed`` alone produces."""
    return {
        "weights.bin": hashlib.sha256(b"w%d" % seed).digest() * (2 * KiB),
        "config.json": b'{"seed": %d}\n' % seed,
    }


def log(url: str, name: str, files: dict[str, bytes]) -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name, type="model")
    for path, data in files.items():
        artifact.add(io.BytesIO(data), path)
    with artfs.Client(url=url, use_cache=False) as client:
        return client.log_artifact(artifact)


def read_version(url: str, name: str, version: str, dest: Path) -> dict[str, bytes]:
    """Every file of ``name:version``, downloaded (and verified) through ``url``."""
    with artfs.Client(url=url, use_cache=False) as client:
        return read_tree(client.get_artifact(name, version).download(dest / version))


def version_names(url: str, name: str) -> list[str]:
    with artfs.Client(url=url, use_cache=False) as client:
        return [version.version for version in client.list_versions(name)]


def records_of(files: dict[str, bytes]) -> list[FileRecord]:
    return [
        FileRecord(path, len(data), hashlib.sha256(data).hexdigest())
        for path, data in files.items()
    ]


def blobs_of(files: dict[str, bytes]) -> dict[str, bytes]:
    return {hashlib.sha256(data).hexdigest(): data for data in files.values()}


def raw_client(server: RegistryProcess, retries: int = 5) -> RegistryClient:
    return RegistryClient(resolve_config(server.url, None, None), retries=retries)


def all_at_once(calls: list[Callable[[], T]]) -> list[Future[T]]:
    """Run ``calls`` in threads released together, and wait for every one to end."""
    gate = threading.Barrier(len(calls))

    def released(call: Callable[[], T]) -> T:
        gate.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [pool.submit(released, call) for call in calls]


#: The rows a test holds ``FOR UPDATE`` to stop a replica's transaction at them: an
#: artifact's, where every commit to it queues, and a blob's, where a gc that decided
#: to forget the blob waits to delete it.
ARTIFACT_ROW = "SELECT id FROM artifacts WHERE name = :key FOR UPDATE"
BLOB_ROW = "SELECT digest FROM blobs WHERE digest = :key FOR UPDATE"


@contextmanager
def row_locked(engine: Engine, query: str, key: str) -> Iterator[None]:
    """Hold the row ``query`` selects by ``key`` ``FOR UPDATE`` for the block."""
    with engine.connect() as conn, conn.begin():
        conn.execute(text(query), {"key": key}).one()
        yield


def lock_waiters(engine: Engine) -> int:
    """How many transactions wait for a lock another one holds."""
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
        )


def test_replicas_starting_at_once_on_a_new_database_migrate_it_once(engine: Engine) -> None:
    fresh = f"fresh_{uuid.uuid4().hex[:8]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {fresh}"))
    url = engine.url.set(database=fresh).render_as_string(hide_password=False)
    engines = [create_registry_engine(url) for _ in range(4)]
    try:
        for future in all_at_once([partial(migrate, each) for each in engines]):
            future.result()
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        for each in engines:
            each.dispose()


# -- one registry, seen through either replica -------------------------------


def test_what_one_replica_writes_the_other_serves(
    replicas: Replicas, name: str, tmp_path: Path
) -> None:
    a, b = replicas.urls()
    first = log(a, name, files_of(1))
    assert first.version == "v1"
    assert read_version(b, name, "v1", tmp_path) == files_of(1)
    with artfs.Client(url=b, use_cache=False) as client:
        client.get_artifact(name, "v1").set_alias("production")
    with artfs.Client(url=a, use_cache=False) as client:
        assert client.get_artifact(name, "production").version == "v1"
    assert log(b, name, files_of(2)).version == "v2"
    assert version_names(a, name) == ["v1", "v2"]
    with artfs.Client(url=a, use_cache=False) as client:
        client.registry.delete_version(name, "v2")
    assert version_names(b, name) == ["v1"]
    assert read_version(b, name, "latest", tmp_path) == files_of(1)


def test_eight_committers_across_replicas_get_distinct_contiguous_versions(
    replicas: Replicas, name: str, tmp_path: Path
) -> None:
    # The artifact does not exist yet: the first commits race to create it too.
    futures = all_at_once([partial(log, replicas.pick(i).url, name, files_of(i)) for i in range(8)])
    got = {i: future.result().version for i, future in enumerate(futures)}
    assert sorted(got.values(), key=lambda v: int(v[1:])) == [f"v{n}" for n in range(1, 9)]
    for i, version in got.items():
        # Read back through the replica the committer did not use.
        assert read_version(replicas.pick(i + 1).url, name, version, tmp_path) == files_of(i)


def test_identical_content_committed_through_both_replicas_is_one_version(
    replicas: Replicas, name: str
) -> None:
    futures = all_at_once([partial(log, replicas.pick(i).url, name, files_of(7)) for i in range(6)])
    logged = [future.result() for future in futures]
    assert {version.version for version in logged} == {"v1"}
    assert sorted(version.noop for version in logged) == [False] + [True] * 5
    for url in replicas.urls():
        assert log(url, name, files_of(7)).noop
        assert version_names(url, name) == ["v1"]


def test_alias_compare_and_swap_racing_across_replicas_has_one_winner(
    replicas: Replicas, name: str
) -> None:
    for seed in range(4):
        log(replicas.pick(seed).url, name, files_of(seed))

    def swap(i: int, target: str, expect: str | None) -> bool:
        client = raw_client(replicas.pick(i))
        try:
            client.set_alias(name, "production", target, expect, check_expect=True)
        except artfs.Conflict:
            return False
        finally:
            client.close()
        return True

    expect: str | None = None
    for _ in range(3):  # from nothing, then from each round's winner
        # Every racer moves the alias away from what it expects, so a second
        # success would mean two swaps saw the same alias.
        targets = [v for v in ("v1", "v2", "v3", "v4") if v != expect] * 2
        futures = all_at_once(
            [partial(swap, i, target, expect) for i, target in enumerate(targets)]
        )
        won = [targets[i] for i, future in enumerate(futures) if future.result()]
        assert len(won) == 1, won
        expect = won[0]
        for server in replicas.servers:
            with closing(raw_client(server)) as client:
                assert client.get_version(name, "production").version == expect


def test_one_run_reading_a_version_through_both_replicas_at_once_is_one_input(
    replicas: Replicas, engine: Engine, name: str
) -> None:
    log(replicas.pick(0).url, name, files_of(50))
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    with closing(raw_client(replicas.pick(0))) as client:
        client.start_run(run_id, RunStart())
    with engine.connect() as conn, conn.begin():
        # The same input, being recorded by a transaction not committed yet: both
        # replicas find no row, and their inserts queue behind this one.
        conn.execute(
            text(
                "INSERT INTO run_inputs (run_id, version_id, first_at) "
                "SELECT r.id, v.id, now() FROM runs r, versions v "
                "JOIN artifacts a ON a.id = v.artifact_id "
                "WHERE r.run_id = :run AND a.name = :name AND v.number = 1"
            ),
            {"run": run_id, "name": name},
        )

        def read(i: int) -> bool:
            with closing(raw_client(replicas.pick(i))) as client:
                return client.record_use(run_id, RunStart(), name, "v1")

        with ThreadPoolExecutor(2) as pool:
            reads = [pool.submit(read, i) for i in range(2)]
            wait_until(lambda: lock_waiters(engine) >= 2, "both inputs waiting")
            conn.commit()
            assert [future.result(timeout=30) for future in reads] == [False, False]


# -- a replica killed ---------------------------------------------------------


def test_replica_killed_mid_commit_leaves_nothing_and_the_other_commits_the_retry(
    own_replicas: Replicas, engine: Engine, name: str, tmp_path: Path
) -> None:
    a, b = own_replicas.servers
    log(b.url, name, files_of(1))
    files = files_of(2)
    doomed = raw_client(a, retries=0)
    started = doomed.start_upload(name, NewVersion(type="model"), records_of(files))
    for digest, data in blobs_of(files).items():
        doomed.upload_blob(digest, data, len(data))
    with ThreadPoolExecutor(1) as pool:
        with row_locked(engine, ARTIFACT_ROW, name):
            # A's commit is inside its transaction, queued behind the test's row lock.
            commit = pool.submit(doomed.commit_upload, started.upload_id, ["candidate"], [])
            wait_until(lambda: lock_waiters(engine) >= 1, "A's commit waiting for the row")
            a.stop(kill=True)
        with pytest.raises(artfs.ArtfsError):
            commit.result(timeout=30)
    doomed.close()
    # Nothing of the killed commit shows; B serves on, and the client's retry of the
    # same upload there commits it whole.
    assert version_names(b.url, name) == ["v1"]
    with closing(raw_client(b)) as client:
        committed = client.commit_upload(started.upload_id, ["candidate"], [])
    assert committed.version.version == "v2"
    assert version_names(b.url, name) == ["v1", "v2"]
    assert read_version(b.url, name, "candidate", tmp_path) == files


def test_one_upload_committed_through_both_replicas_at_once_is_one_version(
    replicas: Replicas, engine: Engine, name: str
) -> None:
    log(replicas.pick(0).url, name, files_of(40))
    files = files_of(41)
    with closing(raw_client(replicas.pick(0))) as client:
        started = client.start_upload(name, NewVersion(type="model"), records_of(files))
        for digest, data in blobs_of(files).items():
            client.upload_blob(digest, data, len(data))

    def commit(i: int) -> str:
        with closing(raw_client(replicas.pick(i))) as client:
            return client.commit_upload(started.upload_id, [], []).version.version

    with ThreadPoolExecutor(2) as pool:
        with row_locked(engine, ARTIFACT_ROW, name):
            # A client's retry, sent to the other replica while the first try is queued.
            commits = [pool.submit(commit, i) for i in range(2)]
            wait_until(lambda: lock_waiters(engine) >= 2, "both commits waiting for the row")
        assert [future.result(timeout=30) for future in commits] == ["v2", "v2"]
    assert version_names(replicas.pick(1).url, name) == ["v1", "v2"]


def test_replica_killed_mid_upload_stream_and_the_upload_finishes_on_the_other(
    own_replicas: Replicas, name: str, tmp_path: Path
) -> None:
    a, b = own_replicas.servers
    big = hashlib.sha256(b"big").digest() * (256 * KiB)  # 8 MiB: streamed, not read whole
    digest = hashlib.sha256(big).hexdigest()
    record = FileRecord("big.bin", len(big), digest)
    with closing(raw_client(a)) as client:
        started = client.start_upload(name, NewVersion(type="model"), [record])
    assert started.missing == {digest}
    put = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    put.putrequest("PUT", f"/api/v1/projects/default/blobs/{digest}")
    for header, value in {**auth_headers(), "Content-Length": str(len(big))}.items():
        put.putheader(header, value)
    put.endheaders()
    put.send(big[: len(big) // 2])
    a.stop(kill=True)

    def send_the_rest() -> None:
        put.send(big[len(big) // 2 :])
        put.getresponse()

    with pytest.raises((OSError, http.client.HTTPException)):
        send_the_rest()
    put.close()
    with closing(raw_client(b)) as client:
        assert client.missing_blobs([digest]) == {digest}  # half a blob is no blob
        client.upload_blob(digest, big, len(big))
        committed = client.commit_upload(started.upload_id, [], [])
    assert committed.version.version == "v1"
    assert read_version(b.url, name, "v1", tmp_path) == {"big.bin": big}


# -- gc on one replica, commits on the other ----------------------------------


def gc(server: RegistryProcess) -> int:
    with closing(raw_client(server)) as client:
        return client.gc().blobs_deleted


def every_version_reads_back(
    url: str, name: str, expected: dict[str, dict[str, bytes]], dest: Path
) -> None:
    assert version_names(url, name) == sorted(expected, key=lambda v: int(v[1:]))
    for version, files in expected.items():
        assert read_version(url, name, version, dest) == files


def test_gc_forgetting_a_blob_as_another_replica_commits_it_again_loses_nothing(
    replicas: Replicas, engine: Engine, name: str, tmp_path: Path
) -> None:
    a, b = replicas.servers
    reused = files_of(30)
    log(b.url, name, {"keep.txt": b"kept\n"})
    log(b.url, name, reused)
    with closing(raw_client(b)) as client:
        client.delete_version(name, "v2")  # its blobs are garbage now, still held
    weights = hashlib.sha256(reused["weights.bin"]).hexdigest()
    with ThreadPoolExecutor(2) as pool:
        with row_locked(engine, BLOB_ROW, weights):
            # gc on A has decided the blob is garbage and waits to forget it...
            collecting = pool.submit(gc, a)
            wait_until(lambda: lock_waiters(engine) >= 1, "gc waiting for the blob's row")
            # ...while B is asked to commit the same bytes again.
            committing = pool.submit(log, b.url, name, reused)
            wait_until(
                lambda: committing.done() or lock_waiters(engine) >= 2,
                "the commit done, or waiting for gc",
            )
        assert collecting.result(timeout=30) >= 1
        assert committing.result(timeout=30).version == "v3"
    every_version_reads_back(a.url, name, {"v1": {"keep.txt": b"kept\n"}, "v3": reused}, tmp_path)


def test_gc_on_one_replica_while_the_other_commits_keeps_every_committed_blob(
    replicas: Replicas, name: str, tmp_path: Path
) -> None:
    a, b = replicas.servers
    expected: dict[str, dict[str, bytes]] = {}
    for round_ in range(4):
        # Bytes that a deleted version left behind, committed again beside new ones.
        garbage = files_of(100 + round_)
        dropped = log(b.url, name, garbage).version
        with closing(raw_client(b)) as client:
            client.delete_version(name, dropped)
        files = {**garbage, "round.txt": b"%d\n" % round_}
        with ThreadPoolExecutor(1) as pool:
            committing = pool.submit(log, b.url, name, files)
            while not committing.done():
                gc(a)
            expected[committing.result().version] = files
        gc(a)
    every_version_reads_back(a.url, name, expected, tmp_path)
