"""Races between replicas (tests/support/replicas.py) over one blob: ``verify`` on one
replica while the other stores the blob's bytes again.

Each race is made certain at the point that matters: the test takes the lock one side
waits for (an upload's digest lock), in PostgreSQL, and waits (by polling ``pg_locks``)
until the replica's transaction is queued behind it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from artfs.client.models import VerifyReport
from artfs.server.db.engine import await_claim, lock_digests
from artfs.store.s3 import S3BlobStore
from tests.integration.test_replicas import (
    every_version_reads_back,
    files_of,
    lock_waiters,
    log,
    raw_client,
)
from tests.support.polling import wait_until
from tests.support.postgres import engine
from tests.support.registry import RegistryProcess
from tests.support.replicas import Replicas, SharedStore, replicas, shared_store
from tests.support.s3_source import S3Source

__all__ = ["engine", "replicas", "shared_store"]  # the fixtures, used by name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def the_store(shared_store: SharedStore, s3_server: S3Source) -> S3BlobStore:
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
    replicas: Replicas,
    engine: Engine,
    shared_store: SharedStore,
    s3_server: S3Source,
    name: str,
    tmp_path: Path,
) -> None:
    a, b = replicas.servers
    files = files_of(40)
    log(b.url, name, files)
    weights = files["weights.bin"]
    digest = sha256(weights)
    store = the_store(shared_store, s3_server)
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
