"""Rows S4-S8 (group ``s3``, ``--backend postgres-s3`` only): pushes to the object store,
``find`` over a big version and metadata requests/s with two replicas vs one.

S4-S5 push through the bench's registry (PostgreSQL + SeaweedFS) against ``curl`` PUTs
signed with SigV4 straight to the same SeaweedFS (no registry on the path); S6 lists a
``--many-files`` version on a fresh mount of that registry against the same on a fresh
mount of an embedded registry (SQLite + blob folder) started beside it; S7-S8 load one or
two single-process registries on the one database with ``wrk``. The method in full is in
scripts/bench.py's docstring."""

# The table is Markdown: it writes the multiplication sign for "times".
# ruff: noqa: RUF001

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from benchlib.engines import S3Server
from benchlib.harness import (
    CURL,
    SMALL_SIZE,
    Harness,
    Sample,
    both,
    family_cpu,
    file_name,
    tree_cpu,
    write_pattern,
    write_small_files,
)
from benchlib.peers import LoadResult, get_load
from benchlib.report import TableRow
from benchlib.transfer import Transfer

ALL = ["S4", "S5", "S6", "S7", "S8", "S9", "S10"]
METADATA_ROWS = {"S7", "S8", "S9", "S10"}
#: PostgreSQL tables whose rows S6 and the capacity plan count (docs/deploy.md).
GROWING_TABLES = ("files", "versions", "blobs", "held_blobs")
#: Files of the version S7 asks the manifest of: 100 M files over 1 M versions is 100 each.
META_FILES = 100
META_ALIAS = "production"
#: S10: a project of this many artifacts, listed as one page (the API's default page).
LISTED_ARTIFACTS = 1000
LISTED_PROJECT = "bench-list"
#: S7-S8: one wrk per target URL, each with this many connections on one thread.
CONNECTIONS_EACH = 32


@dataclass(frozen=True)
class Engines:
    """What S7-S8 charge CPU to besides the registries: the database and the object store."""

    postgres_pid: int
    database_url: str
    s3: S3Server


@dataclass
class ScaleBench:
    """Rows S4-S8. ``h`` talks to the bench's registry (PostgreSQL + SeaweedFS);
    ``embedded`` to the SQLite + folder registry S6 compares with; ``replicas`` are the two
    single-process registries of S7-S8 (pids), on the bench's database and bucket."""

    h: Harness
    embedded: Harness
    replicas: list[tuple[str, int]]
    engines: Engines
    sizes: ScaleSizes
    rows: dict[str, TableRow]
    selected: set[str]
    #: Set by ``prepare``.
    many: dict[str, str] = field(default_factory=dict)
    meta_version: str = ""
    meta_digest: str = ""
    #: ``database_size`` after the latest run.
    database: dict[str, tuple[int, int]] = field(default_factory=dict)

    def prepare(self) -> None:
        if "S6" in self.selected:
            # The same version on both registries; how long making it took is context.
            for side, harness in (("postgres-s3", self.h), ("embedded", self.embedded)):
                started = time.perf_counter()
                version, _, _ = harness.many_files_version("bench-many", self.sizes.many_files)
                self.rows["S6"].details[f"make_seconds_{side}"] = time.perf_counter() - started
                self.many[side] = version
        if self.selected & METADATA_ROWS:
            self.meta_version, _, _ = self.h.many_files_version("bench-meta", META_FILES)
            answer = self.h.http.put(
                f"{self.h.api}/artifacts/bench-meta/aliases/{META_ALIAS}",
                json={"version": self.meta_version},
            )
            answer.raise_for_status()
            manifest = self.h.http.get(
                f"{self.h.api}/artifacts/bench-meta/versions/{self.meta_version}/manifest"
            )
            manifest.raise_for_status()
            self.meta_digest = manifest.json()["digests"][0]
        if "S10" in self.selected:
            made = f"{self.h.url}/api/v1/projects/{LISTED_PROJECT}/artifacts"
            for i in range(LISTED_ARTIFACTS):
                answer = self.h.http.post(made, json={"name": f"model-{i:05d}", "type": "model"})
                answer.raise_for_status()

    def database_size(self) -> dict[str, tuple[int, int]]:
        """Rows and bytes (with indexes and TOAST) of PostgreSQL's tables that grow with
        files, blobs and versions: the capacity plan's bytes per row."""
        sizes = {}
        with psycopg.connect(self.engines.database_url) as conn:
            for table in GROWING_TABLES:
                # Names from the constant above, not from input.
                rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                size = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
                sizes[table] = (rows[0] if rows else 0, size[0] if size else 0)
        return sizes

    def run(self, run: int) -> None:
        if "S4" in self.selected:
            self.push_big(run)
        if "S5" in self.selected:
            self.push_small(run)
        if "S6" in self.selected:
            self.find_many(run)
        for key, path in (
            ("S7", f"default/artifacts/bench-meta/versions/{self.meta_version}/manifest"),
            ("S8", f"default/artifacts/bench-meta/versions/{META_ALIAS}"),
            ("S9", f"default/blobs/{self.meta_digest}/url"),
            ("S10", f"{LISTED_PROJECT}/artifacts?limit={LISTED_ARTIFACTS}"),
        ):
            if key in self.selected:
                self.metadata_load(run, self.rows[key], path)
        # After every run (the last one's is printed): rows grow with each push.
        self.database = self.database_size()

    # -- S4-S5: pushes ---------------------------------------------------------

    def s3_put(self, source: Path, key: str) -> list[str]:
        """curl's options for one SigV4-signed PUT of ``source`` to ``key`` in the bucket."""
        return [
            "--url", f"{self.engines.s3.endpoint}/{self.engines.s3.bucket}/{key}",
            "-T", str(source),
        ]  # fmt: skip

    def sigv4(self) -> list[str]:
        s3 = self.engines.s3
        # The payload is not hashed into the signature (curl would read every file
        # twice). No "Expect:" to drop curl's 100-continue: curl would sign it.
        return [
            "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{s3.access_key}:{s3.secret_key}",
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ]  # fmt: skip

    def stored_under(self, prefix: str) -> tuple[int, int]:
        """Objects and bytes under ``prefix`` in the bucket."""
        s3 = self.engines.s3
        count = size = 0
        pages = s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                count, size = count + 1, size + item["Size"]
        return count, size

    def push_big(self, run: int) -> None:
        here = self.h.work / f"s3-push-{run}"
        here.mkdir()
        size = self.sizes.big
        ours, theirs = here / "ours.bin", here / "theirs.bin"
        write_pattern(ours, size, b"s3push%d" % run)
        write_pattern(theirs, size, b"s3curl%d" % run)
        key = f"reference/big-{run}.bin"
        artfs, curl = both(
            run,
            lambda: self.h.artfs_push(f"s3-push-{run}", ours)[0],
            lambda: self.h.timed([CURL, "-sS", "--fail", "-o", os.devnull, *self.sigv4(),
                                  *self.s3_put(theirs, key)])[0],
        )  # fmt: skip
        if self.stored_under(key) != (1, size):
            raise RuntimeError(f"curl did not store {size} bytes under {key}")
        record_push(self.rows["S4"], size, artfs, curl)
        shutil.rmtree(here)

    def push_small(self, run: int) -> None:
        here = self.h.work / f"s3-small-{run}"
        count = self.sizes.small_files
        ours, theirs = here / "ours", here / "theirs"
        write_small_files(ours, count)
        write_small_files(theirs, count)
        prefix = f"reference/small-{run}/"
        config = []
        for i in range(count):
            name = file_name(i)
            url = f"{self.engines.s3.endpoint}/{self.engines.s3.bucket}/{prefix}{name}"
            config += [f'url = "{url}"', f'upload-file = "{theirs / name}"', 'output = "/dev/null"']
        moves = Transfer(self.h)
        artfs, curl = both(
            run,
            lambda: self.h.artfs_push(f"s3-small-{run}", ours)[0],
            lambda: moves.curl_many(config, here / "put.curl", auth=self.sigv4()),
        )
        if self.stored_under(prefix) != (count, count * SMALL_SIZE):
            raise RuntimeError(f"curl did not store {count} files under {prefix}")
        record_push(self.rows["S5"], count * SMALL_SIZE, artfs, curl)
        # Kept until the work directory goes, as rows C-D's (ext4's recently deleted inodes).

    # -- S6: find over a big version ------------------------------------------

    def find_many(self, run: int) -> None:
        row = self.rows["S6"]

        def find(harness: Harness, side: str) -> Callable[[], float]:
            def step() -> float:
                self.h.drop_caches()
                with self.h.fresh_mount(url=harness.url) as mount:
                    top = mount.path / "bench-many" / self.many[side]
                    sample, out = self.h.timed(
                        ["sh", "-c", 'find "$1" -type f | wc -l', "sh", str(top)],
                        daemon_pid=mount.daemon_pid(),
                    )
                if int(out) != self.sizes.many_files:
                    raise RuntimeError(f"find listed {out.strip()} files on {side}")
                return sample.wall

            return step

        ours, theirs = both(run, find(self.h, "postgres-s3"), find(self.embedded, "embedded"))
        row.artfs.append(ours)
        row.ref.append(theirs)

    # -- S7-S8: metadata requests/s, two replicas vs one -----------------------

    def metadata_load(self, run: int, row: TableRow, path: str) -> None:
        urls = [f"{url}/api/v1/projects/{path}" for url, _ in self.replicas]
        pids = [pid for _, pid in self.replicas]
        postgres = self.engines.postgres_pid

        def load(targets: list[str]) -> Callable[[], LoadResult]:
            def step() -> LoadResult:
                registries = sum(map(tree_cpu, pids))
                database = family_cpu(postgres)
                result = get_load(
                    targets, self.h.work, connections=CONNECTIONS_EACH, threads=1,
                    seconds=self.sizes.server_seconds, server_cpu=lambda: 0.0,
                )  # fmt: skip
                if result.errors:
                    raise RuntimeError(f"wrk against {targets}: {result}")
                side = "two" if len(set(targets)) == 2 else "one"
                spent = row.details.setdefault(f"{side}_replicas", [])
                spent.append(
                    {
                        **vars(result),
                        "registry_cpu": sum(map(tree_cpu, pids)) - registries,
                        "postgres_cpu": family_cpu(postgres) - database,
                    }
                )
                return result

            return step

        # Two wrk either way (the same client CPU): both at one replica, or one at each.
        two, one = both(run, load(urls), load([urls[0], urls[0]]))
        row.artfs.append(two.per_second)
        row.ref.append(one.per_second)


@dataclass(frozen=True)
class ScaleSizes:
    big: int
    small_files: int
    many_files: int
    server_seconds: int


def record_push(row: TableRow, size: int, artfs: Sample, curl: Sample) -> None:
    row.artfs.append(size / 1e6 / artfs.wall)
    row.ref.append(size / 1e6 / curl.wall)
    row.details.setdefault("artfs_cpu", []).append(
        {"client": artfs.client_cpu, "registry": artfs.server_cpu}
    )
    row.details.setdefault("curl_cpu", []).append(curl.client_cpu)


def scale_rows(sizes: ScaleSizes) -> dict[str, TableRow]:
    gib = f"{sizes.big / (1 << 30):g} GiB"
    small = f"{sizes.small_files:,} × 4 KiB files"
    curl = "curl PUT signed with SigV4 straight to SeaweedFS"
    many = f"{sizes.many_files:,}-file version"
    wrk = f"2 wrk × {CONNECTIONS_EACH} connections"
    return {
        row.key: row
        for row in [
            TableRow("S4", f"`artfs push` of {gib}", curl, "MB/s", "ratio >=", 0.8, "≥ 0.8× (as row 12)"),  # noqa: E501
            TableRow("S5", f"`artfs push` of {small}", f"{curl}, 8 at once (`--parallel`)", "MB/s", "ratio >=", 0.8, "≥ 0.8×"),  # noqa: E501
            TableRow("S6", f"`find -type f` over a {many}, fresh mount", "the same on an embedded registry (SQLite + folder)", "s", "ratio <=", 1.2, "≤ 1.2× time"),  # noqa: E501
            TableRow("S7", f"manifest GETs ({META_FILES} files), 2 single-process replicas, {wrk}", "1 replica, the same load", "req/s", "ratio >=", 1.5, "≥ 1.5×"),  # noqa: E501
            TableRow("S8", f"alias lookups, 2 single-process replicas, {wrk}", "1 replica, the same load", "req/s", "ratio >=", 1.5, "≥ 1.5×"),  # noqa: E501
            TableRow("S9", f"presigned URL requests, 2 single-process replicas, {wrk}", "1 replica, the same load", "req/s", "ratio >=", 1.5, "≥ 1.5×"),  # noqa: E501
            TableRow("S10", f"artifact list pages of {LISTED_ARTIFACTS:,} artifacts, 2 single-process replicas, {wrk}", "1 replica, the same load", "req/s", "ratio >=", 1.5, "≥ 1.5×"),  # noqa: E501
        ]
    }  # fmt: skip


def database_notes(sizes: dict[str, tuple[int, int]]) -> list[str]:
    """Under the table: PostgreSQL's rows and bytes per row of the growing tables."""
    return [
        f"PostgreSQL after the last run: {table} {count:,} rows, {size / 1e6:.1f} MB "
        f"({size / max(count, 1):.0f} bytes per row, indexes included)"
        for table, (count, size) in sizes.items()
    ]


def notes(rows: dict[str, TableRow]) -> list[str]:
    """Under the table: CPU of each push side, make times of S6, CPU per request of S7-S8."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    found = []
    for key in ("S4", "S5"):
        if d := rows[key].details if key in rows else {}:
            found.append(
                f"{key}: artfs push CPU client {median([c['client'] for c in d['artfs_cpu']]):.2f}"
                f" s, registry {median([c['registry'] for c in d['artfs_cpu']]):.2f} s; curl "
                f"{median(d['curl_cpu']):.2f} s"
            )
    d = rows["S6"].details if "S6" in rows else {}
    if "make_seconds_embedded" in d:
        found.append(
            f"S6: making the version through the HTTP API took {d['make_seconds_postgres-s3']:.1f}"
            f" s on PostgreSQL + S3, {d['make_seconds_embedded']:.1f} s embedded"
        )
    for key in ("S7", "S8", "S9", "S10"):
        d = rows[key].details if key in rows else {}
        for side in ("one", "two"):
            if loads := d.get(f"{side}_replicas"):
                best = sorted(loads, key=lambda load: load["requests"])[len(loads) // 2]
                per_k = 1000 / best["requests"]
                found.append(
                    f"{key}, {side} replica(s): {best['requests'] / best['seconds']:.0f} req/s, "
                    f"p50 {best['p50_ms']:.1f} ms, p99 {best['p99_ms']:.1f} ms; CPU-s per 1,000 "
                    f"requests: registries {best['registry_cpu'] * per_k:.3f}, PostgreSQL "
                    f"{best['postgres_cpu'] * per_k:.3f}, wrk {best['wrk_cpu'] * per_k:.3f}"
                )
    return found
