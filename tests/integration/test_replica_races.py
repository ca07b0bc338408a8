"""Races between replicas (tests/support/replicas.py) over one blob: ``verify`` on one
replica while the other stores the blob's bytes again, and a batch upload on one replica
while gc on the other forgets a blob the batch found stored.

Each race is made certain at the point that matters: the test takes the lock one side
waits for (an upload's digest lock, a blob's row), in PostgreSQL, and waits (by polling
``pg_locks``) until the replica's transaction is queued behind it; where a replica must
stop between two steps that take no lock, its requests to the object store are held at
a proxy (``FaultProxy.stop("hang")``) as a slow store would hold them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from artfs.client.models import NewVersion, VerifyReport
from artfs.server.db.engine import await_claim, lock_digests
from artfs.store.s3 import S3BlobStore
from tests.integration.test_replicas import (
    BLOB_ROW,
    every_version_reads_back,
    files_of,
    gc,
    lock_waiters,
    log,
    raw_client,
    records_of,
    row_locked,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.polling import wait_until
from tests.support.postgres import engine
from tests.support.registry import RegistryProcess
from tests.support.replicas import Replicas, SharedStore, replicas, shared_store
from tests.support.s3_source import S3Source

__all__ = ["engine", "replicas", "shared_store"]  # the fixtures, used by name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(shared_store: SharedStore, s3_server: S3Source) -> S3BlobStore:
    """The replicas' blob store, as the test reaches it (to damage and read its objects)."""
    return S3BlobStore.from_url(shared_store.serve_args[-1], client=s3_server.client)


def stored_bytes(store: S3BlobStore, digest: str) -> bytes | None:
    try:
        answer = store.client.get_object(Bucket=store.bucket, Key=store.key_for(digest))
    except store.client.exceptions.NoSuchKey:
        return None
    return answer["Body"].read()


def blob_rows(engine: Engine, digest: str) -> int:
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM blobs WHERE digest = :digest")
        return int(conn.execute(query, {"digest": digest}).scalar_one())


@contextmanager
def digest_locked(engine: Engine, digest: str) -> Iterator[None]:
    """Hold the blob's digest lock for the block, as an upload does while it records the
    blob (``lock_digests``): what gc's and verify's claims wait for."""
    with engine.connect() as conn, conn.begin():
        lock_digests(conn, [digest])
        yield


def verify(server: RegistryProcess, name: str) -> VerifyReport:
    with closing(raw_client(server)) as client:
        return client.verify(name)


def upload_blob(server: RegistryProcess, digest: str, data: bytes) -> None:
    with closing(raw_client(server)) as client:
        client.upload_blob(digest, data, len(data))


def upload_batch(server: RegistryProcess, blobs: list[tuple[str, bytes]]) -> None:
    with closing(raw_client(server)) as client:
        client.upload_blob_batch(blobs)


# -- verify on one replica, the same bytes stored again on the other ----------


def test_a_claim_not_granted_in_time_is_refused_and_its_transaction_goes_on(
    engine: Engine,
) -> None:
    held, free = sha256(b"held"), sha256(b"free")
    show = text("SELECT current_setting('lock_timeout')")
    with digest_locked(engine, held), engine.connect() as conn, conn.begin():
        before = conn.execute(show).scalar_one()
        assert not await_claim(conn, held, 0.2)
        assert conn.execute(show).scalar_one() == before
        assert await_claim(conn, free, 0.2)
        assert conn.execute(show).scalar_one() == before


def test_verify_leaves_a_corrupt_blob_that_another_replica_stores_again_good(
    replicas: Replicas, engine: Engine, store: S3BlobStore, name: str, tmp_path: Path
) -> None:
    a, b = replicas.servers
    files = files_of(40)
    log(b.url, name, files)
    weights = files["weights.bin"]
    digest = sha256(weights)
    damaged = bytes([weights[0] ^ 1]) + weights[1:]
    store.client.put_object(Bucket=store.bucket, Key=store.key_for(digest), Body=damaged)
    with ThreadPoolExecutor(2) as pool:
        with digest_locked(engine, digest):
            # An upload of the blob on B is recording it: verify on A, which has hashed
            # the bad bytes, must wait for it before it forgets anything...
            verifying = pool.submit(verify, a, name)
            wait_until(
                lambda: verifying.done() or lock_waiters(engine) >= 1,
                "verify done, or waiting for the blob's lock",
            )
            assert blob_rows(engine, digest) == 1, "verify forgot a blob an upload is recording"
            # ...while B stores the good bytes (its row waits for verify in turn).
            storing = pool.submit(upload_blob, b, digest, weights)
            wait_until(
                lambda: stored_bytes(store, digest) == weights and lock_waiters(engine) >= 2,
                "B's bytes stored and its row waiting",
            )
        report = verifying.result(timeout=60)
        storing.result(timeout=60)
    # Looked at again under the claim: good bytes, nothing to repair.
    assert report.bad == ()
    assert blob_rows(engine, digest) == 1
    assert stored_bytes(store, digest) == weights
    every_version_reads_back(a.url, name, {"v1": files}, tmp_path)


# -- a batch upload on one replica, gc on the other -----------------------------


def test_a_batch_upload_of_a_blob_gc_forgets_meanwhile_stores_its_bytes(
    replicas: Replicas,
    engine: Engine,
    shared_store: SharedStore,
    s3_server: S3Source,
    store: S3BlobStore,
    name: str,
    tmp_path: Path,
) -> None:
    a = replicas.servers[0]
    url = engine.url.render_as_string(hide_password=False)
    with FaultProxy(s3_server.endpoint) as proxy:
        # B reaches the store through a proxy that can hold its requests.
        b = RegistryProcess(
            tmp_path / "b",
            log_path=tmp_path / "b.log",
            serve_args=shared_store.serve_args,
            database_url=url,
            env={"AWS_ENDPOINT_URL": proxy.url},
        )
        b.start()
        try:
            files = files_of(50)
            weights = files["weights.bin"]
            digest = sha256(weights)
            log(b.url, name, files)  # B now knows the blob as uploadable, for a while
            with closing(raw_client(a)) as client:
                client.delete_version(name, "v1")  # garbage now, still stored
            extra = {"extra.bin": b"new bytes of an upload in progress\n"}
            with closing(raw_client(b)) as client:
                client.start_upload(name, NewVersion(type="model"), records_of(extra))
            new = extra["extra.bin"]
            with ThreadPoolExecutor(2) as pool:
                with row_locked(engine, BLOB_ROW, digest):
                    # gc on A has claimed the blob and waits to forget it...
                    collecting = pool.submit(gc, a)
                    wait_until(lambda: lock_waiters(engine) >= 1, "gc waiting for the row")
                    # ...as B takes a batch that sends it again, sees it stored, and goes on
                    # to write the new blob: B's store requests are held there.
                    proxy.stop("hang")
                    batching = pool.submit(upload_batch, b, [(sha256(new), new), (digest, weights)])
                    wait_until(
                        lambda: proxy.faults["hang"] >= 1 or lock_waiters(engine) >= 2,
                        "B writing the new blob, or waiting for gc",
                    )
                # gc forgets the blob, and deletes its bytes, before B goes on.
                assert collecting.result(timeout=60) >= 1
                proxy.resume()
                batching.result(timeout=60)
            assert blob_rows(engine, digest) == 1
            assert stored_bytes(store, digest) == weights
            # The project holds the blob now: a version naming it sends no bytes, and reads.
            again = log(a.url, name, files).version
            every_version_reads_back(a.url, name, {again: files}, tmp_path)
        finally:
            b.stop()
