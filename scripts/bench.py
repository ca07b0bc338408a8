"""Throughput of ``artfs push`` / ``artfs pull`` against curl on the same registry.

Run it as ``scripts/bench [--size-mib 1024] [--small-files 10000] [--runs 3] [--json PATH]``.

METHOD

One real ``artfs serve`` (SQLite + blob folder) is started by this script in a
fresh temporary directory, on a free loopback port; every measurement of the run
talks to that one server, and the server, its data and all test files are
removed at the end (also on failure or Ctrl-C). Each row compares an ``artfs``
CLI command with a curl reference that moves the same number of bytes through
the same server endpoints, so the server's own costs (digest check, fsync,
SQLite) are in both columns and the ratio shows what the artfs *client* adds:

A  push of one ``--size-mib`` random file: ``artfs push NAME FILE`` vs one
   ``curl -T FILE`` PUT to ``/api/v1/projects/default/blobs/{sha256}``.
   The server accepts a blob only when an upload references it, so before the
   (untimed) curl PUT the script creates a PENDING upload whose manifest names
   that digest. Dedup: curl and artfs get two *different* random files of equal
   size (curl file X, artfs file Y), generated fresh for every run, so neither
   side finds its blob already stored.
B  pull of that version: ``artfs pull NAME:v1 DEST`` into an empty directory vs
   ``curl -o`` GET of the same blob (Y). Each run pulls into fresh empty dirs.
C  push of ``--small-files`` files of 4 KiB, distinct random content: ``artfs push
   NAME DIR`` vs ONE curl process uploading the same number of other fresh 4 KiB
   blobs (``--parallel --parallel-max 8 -K config`` with ``url``/``upload-file``
   pairs) after a PENDING upload that references them. artfs uses 8 workers too.
D  pull of those files: ``artfs pull`` into an empty directory vs ONE curl
   process (``--parallel --parallel-max 8 -K config``, ``url``/``output`` pairs)
   GETting the same blobs that artfs pulled.

What is timed: the wall time (``time.perf_counter``) of the one subprocess, so
artfs includes its interpreter start and imports (printed separately as "CLI
start"), hashing the files before a push, the manifest requests and the commit;
pulls include artfs' verification (sha256) and whatever else the client does
with the bytes (today: it also fills the machine chunk cache, which the script
points at an empty directory of its own via ``XDG_CACHE_HOME``, so every artfs
pull is a cold-cache pull and nothing lands in the user's cache). curl does
none of that bookkeeping: it is the floor of "just move the bytes over HTTP/1.1"
through this server. Setting up the reference (creating the pending upload,
hashing, writing the curl config) is not timed. Besides wall time the script
records CPU seconds of the timed process (client, from ``RUSAGE_CHILDREN``) and
of the server (``/proc/PID/stat``), to show which side is the bottleneck.

Caches: page caches are NOT dropped between runs. Every input file was just
written by this script, so it is in the page cache for both sides equally, and
every blob a pull reads was just written by the server. Before each timed step
``sync`` is called, so write-back of earlier steps does not land in the timing.
Within a row the side that goes first alternates from run to run; this also
spreads the server's 60 s blob-visibility cache, which the first GET of a blob
warms for the second side in rows B and D.

Numbers: each row reports the median over ``--runs`` of the artfs seconds and,
separately, of the reference seconds; MB/s is payload bytes (file contents only)
/ 10^6 / median seconds; ratio = artfs MB/s / reference MB/s (1.0 = as fast as
curl, 0.5 = takes twice as long).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
ARTFS = Path(sys.executable).with_name("artfs")
CURL = shutil.which("curl") or "/usr/bin/curl"
PROJECT = "default"
SMALL_SIZE = 4096
PARALLEL = 8
GENERATE_BLOCK = 16 << 20
#: Manifest entries per request, as the SDK batches them.
MANIFEST_BATCH = 10_000
XDG_KINDS = ("CONFIG", "CACHE", "DATA", "STATE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    wall: float
    client_cpu: float
    server_cpu: float


@dataclass
class Row:
    key: str
    label: str
    payload_bytes: int
    artfs: list[Sample] = field(default_factory=list)
    reference: list[Sample] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        artfs_s = statistics.median(sample.wall for sample in self.artfs)
        reference_s = statistics.median(sample.wall for sample in self.reference)
        artfs_mbs = self.payload_bytes / 1e6 / artfs_s
        reference_mbs = self.payload_bytes / 1e6 / reference_s
        return {
            "row": self.key,
            "label": self.label,
            "payload_bytes": self.payload_bytes,
            "artfs_seconds": artfs_s,
            "reference_seconds": reference_s,
            "artfs_mb_per_s": artfs_mbs,
            "reference_mb_per_s": reference_mbs,
            "ratio": artfs_mbs / reference_mbs,
            "artfs_cpu_seconds": _cpu_medians(self.artfs),
            "reference_cpu_seconds": _cpu_medians(self.reference),
            "artfs_samples": [vars(sample) for sample in self.artfs],
            "reference_samples": [vars(sample) for sample in self.reference],
        }


def _cpu_medians(samples: list[Sample]) -> dict[str, float]:
    return {
        "client": statistics.median(sample.client_cpu for sample in samples),
        "server": statistics.median(sample.server_cpu for sample in samples),
    }


class Bench:
    def __init__(self, work: Path, url: str, server_pid: int) -> None:
        self.work = work
        self.url = url
        self.server_pid = server_pid
        self.api = f"{url}/api/v1/projects/{PROJECT}"
        self.http = requests.Session()
        self.env = {
            **os.environ,
            "ARTFS_URL": url,
            "ARTFS_PROJECT": PROJECT,
            # No user config can point the CLI elsewhere, and the chunk cache (and any
            # other per-user state) starts empty and is removed with the rest.
            **{f"XDG_{kind}_HOME": str(work / "home" / kind.lower()) for kind in XDG_KINDS},
        }
        self.env.pop("ARTFS_TOKEN", None)

    # -- helpers -------------------------------------------------------------

    def server_cpu(self) -> float:
        with open(f"/proc/{self.server_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def timed(self, argv: Sequence[str]) -> tuple[Sample, str]:
        """Wall and CPU seconds of one subprocess, after flushing earlier writes."""
        os.sync()
        client_before, server_before = children_cpu(), self.server_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        sample = Sample(elapsed, children_cpu() - client_before, self.server_cpu() - server_before)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:4])} … exited {done.returncode}:\n{done.stderr[-2000:]}"
            )
        return sample, done.stdout

    def pending_upload(self, name: str, entries: list[dict[str, Any]]) -> str:
        """A PENDING upload referencing ``entries``, so the server accepts their blob PUTs."""
        first, rest = entries[:MANIFEST_BATCH], entries[MANIFEST_BATCH:]
        answer = self.http.post(f"{self.api}/artifacts/{name}/uploads", json={"files": first})
        answer.raise_for_status()
        upload_id: str = answer.json()["upload_id"]
        for start in range(0, len(rest), MANIFEST_BATCH):
            more = self.http.post(
                f"{self.api}/uploads/{upload_id}/files",
                json={"files": rest[start : start + MANIFEST_BATCH]},
            )
            more.raise_for_status()
        return upload_id

    def check_stored(self, digests: list[str]) -> None:
        for start in range(0, len(digests), MANIFEST_BATCH):
            answer = self.http.post(
                f"{self.api}/blobs/missing",
                json={"digests": digests[start : start + MANIFEST_BATCH]},
            )
            answer.raise_for_status()
            if missing := answer.json()["missing"]:
                raise RuntimeError(f"curl upload left {len(missing)} blobs missing")

    def blob_url(self, digest: str) -> str:
        return f"{self.api}/blobs/{digest}"

    def artfs_push(self, name: str, path: Path) -> tuple[Sample, str]:
        sample, out = self.timed([str(ARTFS), "push", name, str(path)])
        version = out.strip().splitlines()[-1]
        if not version.startswith("v"):
            raise RuntimeError(f"artfs push printed {out!r}, not a version id")
        return sample, version

    def artfs_pull(self, ref: str, dest: Path) -> Sample:
        return self.timed([str(ARTFS), "pull", ref, str(dest)])[0]

    def curl_many(self, config_lines: list[str], config: Path) -> Sample:
        config.write_text("\n".join(config_lines) + "\n")
        return self.timed(
            [
                CURL,
                "-sS",
                "--fail",
                "--parallel",
                "--parallel-max",
                str(PARALLEL),
                "-K",
                str(config),
            ]
        )[0]

    # -- rows ----------------------------------------------------------------

    def big(self, run: int, size: int, push: Row, pull: Row) -> None:
        here = self.work / f"run{run}-big"
        here.mkdir()
        file_x, file_y = here / "x.bin", here / "y.bin"
        digest_x = write_random(file_x, size)
        write_random(file_y, size)
        name = f"bench-big-{run}"
        self.pending_upload(
            f"curl-big-{run}", [{"path": "x.bin", "size": size, "digest": digest_x}]
        )

        def curl_put() -> Sample:
            return self.timed(
                [
                    CURL, "-sS", "--fail", "-o", os.devnull, "-H", "Expect:",
                    "-H", "Content-Type: application/octet-stream",
                    "-T", str(file_x), self.blob_url(digest_x),
                ]
            )[0]  # fmt: skip

        version = ""

        def artfs_push() -> Sample:
            nonlocal version
            sample, version = self.artfs_push(name, file_y)
            return sample

        both(run, push, artfs_push, curl_put)
        self.check_stored([digest_x])
        file_x.unlink()

        digest_y = sha256_file(file_y)
        file_y.unlink()
        artfs_dest, curl_dest = here / "pull-artfs", here / "pull-curl"
        curl_dest.mkdir()

        def curl_get() -> Sample:
            return self.timed(
                [CURL, "-sS", "--fail", "-o", str(curl_dest / "y.bin"), self.blob_url(digest_y)]
            )[0]

        both(run, pull, lambda: self.artfs_pull(f"{name}:{version}", artfs_dest), curl_get)
        for got in (artfs_dest / "y.bin", curl_dest / "y.bin"):
            if got.stat().st_size != size:
                raise RuntimeError(f"{got} has {got.stat().st_size} bytes, not {size}")
        shutil.rmtree(here)

    def small(self, run: int, count: int, push: Row, pull: Row) -> None:
        here = self.work / f"run{run}-small"
        dir_x, dir_y = here / "x", here / "y"
        digests_x = write_small_files(dir_x, count)
        digests_y = write_small_files(dir_y, count)
        name = f"bench-small-{run}"
        self.pending_upload(
            f"curl-small-{run}",
            [
                {"path": file_name(i), "size": SMALL_SIZE, "digest": digest}
                for i, digest in enumerate(digests_x)
            ],
        )
        put_config = ['header = "Expect:"', 'header = "Content-Type: application/octet-stream"']
        for i, digest in enumerate(digests_x):
            put_config += [
                f'url = "{self.blob_url(digest)}"',
                f'upload-file = "{dir_x / file_name(i)}"',
                f'output = "{os.devnull}"',
            ]
        version = ""

        def artfs_push() -> Sample:
            nonlocal version
            sample, version = self.artfs_push(name, dir_y)
            return sample

        both(run, push, artfs_push, lambda: self.curl_many(put_config, here / "put.curl"))
        self.check_stored(digests_x)

        artfs_dest, curl_dest = here / "pull-artfs", here / "pull-curl"
        curl_dest.mkdir()
        get_config = []
        for i, digest in enumerate(digests_y):
            get_config += [
                f'url = "{self.blob_url(digest)}"',
                f'output = "{curl_dest / file_name(i)}"',
            ]
        both(
            run,
            pull,
            lambda: self.artfs_pull(f"{name}:{version}", artfs_dest),
            lambda: self.curl_many(get_config, here / "get.curl"),
        )
        for dest in (artfs_dest, curl_dest):
            got = sorted(dest.iterdir())
            if len(got) != count or any(path.stat().st_size != SMALL_SIZE for path in got):
                raise RuntimeError(f"{dest} does not hold {count} files of {SMALL_SIZE} bytes")
        shutil.rmtree(here)

    def cli_start(self) -> float:
        return statistics.median(self.timed([str(ARTFS), "--version"])[0].wall for _ in range(3))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def code_version() -> str:
    """``<commit>`` or ``<commit>+dirty.<hash of the diff>`` of the code under test."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    diff = git("diff", "HEAD", "--", "artfs")
    return commit + (f"+dirty.{hashlib.sha256(diff.encode()).hexdigest()[:8]}" if diff else "")


def both(run: int, row: Row, artfs: Any, reference: Any) -> None:
    """Time both sides of a row; which one goes first alternates with the run."""
    if run % 2:
        row.artfs.append(artfs())
        row.reference.append(reference())
    else:
        row.reference.append(reference())
        row.artfs.append(artfs())


def file_name(i: int) -> str:
    return f"f{i:06d}.bin"


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; returns their sha256."""
    hasher = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, GENERATE_BLOCK))
            hasher.update(block)
            out.write(block)
            left -= len(block)
    return hasher.hexdigest()


def write_small_files(directory: Path, count: int) -> list[str]:
    directory.mkdir(parents=True)
    digests = []
    for i in range(count):
        data = os.urandom(SMALL_SIZE)
        (directory / file_name(i)).write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return digests


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(GENERATE_BLOCK), b""):
            hasher.update(block)
    return hasher.hexdigest()


def print_results(rows: list[dict[str, Any]]) -> None:
    print_table(
        ("row", "artfs s", "ref s", "artfs MB/s", "ref MB/s", "ratio"),
        [
            (
                row["label"],
                f"{row['artfs_seconds']:.2f}",
                f"{row['reference_seconds']:.2f}",
                f"{row['artfs_mb_per_s']:.1f}",
                f"{row['reference_mb_per_s']:.1f}",
                f"{row['ratio']:.2f}",
            )
            for row in rows
        ],
    )
    print("\nCPU seconds (medians) of the timed client process and of the server meanwhile:")
    print_table(
        ("row", "artfs client", "artfs server", "curl client", "curl server"),
        [
            (
                row["label"],
                f"{row['artfs_cpu_seconds']['client']:.2f}",
                f"{row['artfs_cpu_seconds']['server']:.2f}",
                f"{row['reference_cpu_seconds']['client']:.2f}",
                f"{row['reference_cpu_seconds']['server']:.2f}",
            )
            for row in rows
        ],
    )


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="artfs push/pull vs curl against one local artfs serve (method: see source).",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="big file size (default 1024)")
    parser.add_argument(
        "--small-files", type=int, default=10_000, help="number of 4 KiB files (default 10000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.small_files < 1 or args.runs < 1:
        parser.error("--size-mib, --small-files and --runs must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not ARTFS.exists():
        sys.exit(f"bench: {ARTFS} not found; run scripts/setup first")
    sys.path.insert(0, str(ROOT))
    from tests.support.registry import RegistryProcess

    size = args.size_mib << 20
    big_label, small_label = f"{args.size_mib} MiB", f"{args.small_files} x 4 KiB"
    rows = [
        Row("A", f"A push {big_label}", size),
        Row("B", f"B pull {big_label}", size),
        Row("C", f"C push {small_label}", args.small_files * SMALL_SIZE),
        Row("D", f"D pull {small_label}", args.small_files * SMALL_SIZE),
    ]
    work = Path(tempfile.mkdtemp(prefix="artfs-bench-"))
    server = RegistryProcess(work / "registry")
    try:
        version_at_start = code_version()
        server.start()
        assert server.process is not None
        bench = Bench(work, server.url, server.process.pid)
        cli_start = bench.cli_start()
        for run in range(args.runs):
            started = time.perf_counter()
            bench.big(run, size, rows[0], rows[1])
            bench.small(run, args.small_files, rows[2], rows[3])
            print(
                f"run {run + 1}/{args.runs} done in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
        bench.http.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    results = [row.summary() for row in rows]
    commit = code_version()
    if commit != version_at_start:
        print(f"WARNING: artfs/ changed during the run ({version_at_start} -> {commit})")
        commit = f"{version_at_start}..{commit}"
    print(
        f"artfs {commit} vs curl on one local `artfs serve`; median of {args.runs} run(s); "
        f"MB = 10^6 bytes; ratio = artfs MB/s / curl MB/s"
    )
    print_results(results)
    print(f"(artfs CLI start, `artfs --version`: {cli_start:.2f}s, included in artfs seconds)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "method": (__doc__ or "").strip(),
                    "commit": commit,
                    "parameters": {
                        "size_mib": args.size_mib,
                        "small_files": args.small_files,
                        "small_file_bytes": SMALL_SIZE,
                        "runs": args.runs,
                        "parallel": PARALLEL,
                    },
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "platform": platform.platform(),
                        "curl": subprocess.run(
                            [CURL, "--version"], capture_output=True, text=True, check=False
                        ).stdout.splitlines()[0],
                    },
                    "cli_start_seconds": cli_start,
                    "rows": results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
