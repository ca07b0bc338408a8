"""Rows S1-S3 (group ``s3``, ``--backend postgres-s3`` only): issue 20's first bench row.

One ``--size-mib`` file is read cold (fresh mount, empty cache dir, dropped) three ways:
through a mount of the registry that hands out presigned URLs (direct reads: the bytes
come from SeaweedFS), through a mount of a second registry on the same database and
bucket started with ``--direct-reads off`` (the bytes go through it), and with ``curl``
of a presigned URL straight from SeaweedFS, the reference. Besides MB/s each side's
registry CPU is recorded: the point of direct reads is that the registry does almost
nothing while a mount reads."""

# The table is Markdown: it writes the multiplication sign for "times".
# ruff: noqa: RUF001

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from artfs.store.s3 import S3BlobStore
from benchlib.engines import S3Server
from benchlib.harness import CURL, Harness, Sample, tree_cpu, write_pattern
from benchlib.report import TableRow

ALL = ["S1", "S2", "S3"]
#: Presigned URL lifetime for the reference: longer than any bench run.
PRESIGN_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Registry:
    """One running ``artfs serve``: where it answers, its pid, its access log."""

    url: str
    pid: int
    access_log: Path

    def blob_gets(self) -> int:
        """Blob requests answered so far (the access log has one line per request)."""
        if not self.access_log.exists():
            return 0
        return sum("/blobs/" in line for line in self.access_log.read_text().splitlines())


@dataclass(frozen=True)
class Side:
    """One cold read: the sample, and the registry's CPU and blob requests meanwhile."""

    sample: Sample
    registry_cpu: float
    blob_gets: int

    def registry_cpu_per_gib(self, size: int) -> float:
        return self.registry_cpu * (1 << 30) / size


def s3_rows(size: int) -> dict[str, TableRow]:
    gib = f"{size / (1 << 30):g} GiB"
    curl = "curl of a presigned URL from SeaweedFS, cold"
    return {
        row.key: row
        for row in [
            TableRow("S1", f"cold read through the mount, direct reads, {gib}", curl, "MB/s", "ratio >=", 0.9, "≥ 0.9× (as row 1)"),  # noqa: E501
            TableRow("S2", f"cold read through the mount, via the registry (`--direct-reads off`), {gib}", curl, "MB/s", "ratio >=", 0.9, "≥ 0.9× (as row 1)"),  # noqa: E501
            TableRow("S3", "registry CPU per cold GiB read through the mount, direct reads", "the same via the registry", "CPU-s/GiB", "ratio <=", 0.1, "≤ 0.1×"),  # noqa: E501
        ]
    }  # fmt: skip


@dataclass
class S3Bench:
    """Rows S1-S3 over two registries (``direct``, ``proxied``) on one database and bucket."""

    h: Harness
    direct: Registry
    proxied: Registry
    s3: S3Server
    store_url: str
    size: int
    rows: dict[str, TableRow]
    #: Set by ``prepare``: the version read and the reference's presigned URL.
    version: str = ""
    presigned: str = ""

    def prepare(self) -> None:
        """Push the file through the direct registry (untimed) and presign its blob."""
        source = self.h.work / "src-s3" / "big.bin"
        source.parent.mkdir(parents=True)
        digest = write_pattern(source, self.size, b"s3big")
        _, self.version = self.h.artfs_push("s3-big", source)
        # The local copy is read by no row: gone, it takes no disk and no page cache.
        source.unlink()
        store = S3BlobStore.from_url(self.store_url, client=self.s3.client)
        self.presigned = store.presign_get(digest, PRESIGN_SECONDS)

    def run(self, run: int) -> None:
        mb = self.size / 1e6
        sides: list[tuple[str, Callable[[], Side]]] = [
            ("direct", lambda: self.through_mount(self.direct)),
            ("proxied", lambda: self.through_mount(self.proxied)),
            ("curl", self.curl),
        ]
        # Which side goes first turns with the run, as in the other rows.
        turn = run % len(sides)
        done = {name: step() for name, step in sides[turn:] + sides[:turn]}
        direct, proxied, curl = done["direct"], done["proxied"], done["curl"]
        s1, s2, s3 = (self.rows[key] for key in ALL)
        for row, side in ((s1, direct), (s2, proxied)):
            row.artfs.append(mb / side.sample.wall)
            row.ref.append(mb / curl.sample.wall)
            row.details.setdefault("registry_cpu", []).append(side.registry_cpu)
            row.details.setdefault("daemon_cpu", []).append(side.sample.daemon_cpu)
            row.details.setdefault("registry_blob_gets", []).append(side.blob_gets)
        s3.artfs.append(direct.registry_cpu_per_gib(self.size))
        s3.ref.append(proxied.registry_cpu_per_gib(self.size))

    def through_mount(self, registry: Registry) -> Side:
        self.h.drop_caches()
        with self.h.fresh_mount(url=registry.url) as mount:
            target = mount.path / "s3-big" / self.version / "big.bin"
            gets, cpu = registry.blob_gets(), tree_cpu(registry.pid)
            sample = self.h.cat(target, daemon_pid=mount.daemon_pid())
            side = Side(sample, tree_cpu(registry.pid) - cpu, registry.blob_gets() - gets)
            if (fetched := mount.cached_bytes()) != self.size:
                raise RuntimeError(f"cold read left {fetched} bytes cached, not {self.size}")
        return side

    def curl(self) -> Side:
        self.h.drop_caches()
        cpu = tree_cpu(self.direct.pid)
        # No Authorization header: the URL carries its own signature.
        sample, _ = self.h.timed([CURL, "-sS", "--fail", "-o", os.devnull, self.presigned])
        return Side(sample, tree_cpu(self.direct.pid) - cpu, 0)


def notes(rows: dict[str, TableRow]) -> list[str]:
    """Under the table: each mount side's registry and daemon CPU, and its blob requests."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    found = []
    for key, how in (("S1", "direct reads"), ("S2", "via the registry")):
        if d := rows[key].details if key in rows else {}:
            found.append(
                f"{key} ({how}): registry CPU {median(d['registry_cpu']):.2f} CPU-s, mount "
                f"daemon CPU {median(d['daemon_cpu']):.2f} CPU-s, blob requests the registry "
                f"answered {median(d['registry_blob_gets']):.0f}"
            )
    return found
