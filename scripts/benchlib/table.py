"""The rows of the issue-5 table (method: the docstring of scripts/bench.py)."""

# The table is Markdown for the README: it writes the multiplication sign for "times".
# ruff: noqa: RUF001

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from artfs.cli.output import human_size
from benchlib import fetch_ceiling
from benchlib.harness import (
    ARTFS,
    PROJECT,
    SMALL_SIZE,
    Harness,
    MiB,
    Sample,
    both,
    file_name,
    pattern_blocks,
    process_cpu,
    time_bare_creates,
    write_pattern,
    write_small_files,
)
from benchlib.peers import LoadResult, Nginx, RcloneMount, ranged_load
from benchlib.report import TableRow

#: Row 11: random reads of this size, this many.
RANDOM_READ = 4096
RANDOM_READS = 64
#: Row 7: parallel readers.
READERS = 4
#: Row 13: the mount's cache bound while streaming, and the RSS sampling period.
STREAM_CACHE_SIZE = "2G"
RSS_PERIOD = 0.1
#: Row 14: wrk connections and threads.
CONNECTIONS = 64
WRK_THREADS = 2
#: Context of rows 1-2: the fetch path alone, run as a program of its own.
CEILING = Path(fetch_ceiling.__file__)
#: Rows that need each peer.
NEEDS_RCLONE = {"2", "6"}
NEEDS_NGINX = {"2", "6", "14"}
NEEDS_WRK = {"14"}
#: Row 21 is measured in row 1's cold read (it came with issue 19's targets).
ALL = [*(str(n) for n in range(1, 15)), "21"]
#: The versions each row reads (row 12 writes its own files).
NEEDS_DATA = {
    "big": {"1", "2", "3", "4", "11", "14", "21"},
    "four": {"7"},
    "small": {"5", "6"},
    "many": {"8", "9"},
    "thousand": {"10"},
    "stream": {"13"},
}

#: Row 8 probe: stat + open + read 1 byte, timed inside (no interpreter start).
PROBE_FIRST_BYTE = """
import os, sys, time
path = sys.argv[1]
start = time.perf_counter()
os.stat(path)
fd = os.open(path, os.O_RDONLY)
try:
    data = os.read(fd, 1)
finally:
    os.close(fd)
print(time.perf_counter() - start, data.hex())
"""

#: Row 11 probe: 4 KiB preads at random aligned offsets after POSIX_FADV_RANDOM.
PROBE_RANDOM_READS = """
import hashlib, json, os, random, sys
path, count, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
fd = os.open(path, os.O_RDONLY)
hasher = hashlib.sha256()
offsets = []
try:
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    blocks = os.fstat(fd).st_size // size
    for _ in range(count):
        offset = rng.randrange(blocks) * size
        data = os.pread(fd, size, offset)
        if len(data) != size:
            sys.exit(f"short read at {offset}: {len(data)} bytes")
        hasher.update(data)
        offsets.append(offset)
finally:
    os.close(fd)
print(json.dumps({"offsets": offsets, "sha256": hasher.hexdigest()}))
"""


@dataclass(frozen=True)
class Sizes:
    big: int  # rows 1-4, 11, 12, 14 (bytes)
    small_files: int  # rows 5-6
    many_files: int  # rows 8-9
    pull_files: int  # row 10
    stream: int  # row 13 (bytes)
    server_seconds: int  # row 14


@dataclass
class Version:
    name: str
    version: str

    def under(self, root: Path) -> Path:
        return root / self.name / self.version


@dataclass
class Data:
    """What the rows read, created once before the first run (untimed)."""

    big: Version
    big_file: Path  # the local copy (rows 3, 4), also the truth for row 11
    big_digest: str
    four: Version
    four_files: list[Path]
    four_digests: list[str]
    small: Version
    small_dir: Path  # the local tree (row 5)
    many: Version
    many_path: str  # the path in the middle of the sorted manifest
    many_first_byte: str
    thousand: Version
    stream: Version
    stream_name: str
    peer_root: Path  # what nginx serves: hard links to the registry's own blob files


def table_rows(sizes: Sizes) -> dict[str, TableRow]:
    gib = f"{sizes.big / (1 << 30):g} GiB"
    quarter = f"{sizes.big // READERS // MiB} MiB"
    small = f"{sizes.small_files:,} × 4 KiB"
    return {
        row.key: row
        for row in [
            TableRow("1", f"cold sequential read, {gib}", "curl, cold", "MB/s", "ratio >=", 0.9, "≥ 0.9×"),  # noqa: E501
            TableRow("2", f"cold sequential read, {gib}", "rclone mount over nginx, cold", "MB/s", "ratio >=", 1.5, "≥ 1.5×"),  # noqa: E501
            TableRow("3", f"re-read (page cache), {gib}", "cat of a local copy, page cache warm", "MB/s", "ratio >=", 0.9, "≥ 0.9×"),  # noqa: E501
            TableRow("4", "warm read (artfs cache on disk, page cache dropped)", "cat of a local copy, page cache dropped", "MB/s", "ratio >=", 0.7, "≥ 0.7×"),  # noqa: E501
            TableRow("5", f"`ls -lR` of a {sizes.small_files:,}-file version, fresh mount", "same tree on local disk, caches dropped", "s", "ratio <=", 2.0, "≤ 2× time"),  # noqa: E501
            TableRow("6", f"`find \\| xargs cat`, {small}, cold", "rclone mount over nginx, cold", "s", "ratio <=", 0.5, "≤ 0.5× time"),  # noqa: E501
            TableRow("7", f"{READERS} parallel readers of {READERS} different {quarter} files, cold", f"curl ×{READERS} in parallel, cold", "MB/s", "ratio >=", 0.8, "≥ 0.8× aggregate"),  # noqa: E501
            TableRow("8", f"first byte of one file in a {sizes.many_files:,}-file version, fresh mount", "", "s", "below", 0.2, "< 0.2 s"),  # noqa: E501
            TableRow("9", f"`find -type f` over a {sizes.many_files:,}-file version, fresh mount", "", "s", "at most", 2.0, "≤ 2 s"),  # noqa: E501
            TableRow("10", f"`artfs pull` of a {sizes.pull_files:,}-file version already in the cache", "", "s", "at most", 0.5, "≤ 0.5 s, no request per file"),  # noqa: E501
            TableRow("11", f"random 4 KiB reads ({RANDOM_READS} preads, fresh mount)", "", "chunks/read", "at most", 1.0, "≤ 1 chunk fetched per read"),  # noqa: E501
            TableRow("12", f"commit of {gib} staged", "curl -T upload of the same size", "MB/s", "ratio >=", 0.8, "≥ 0.8×"),  # noqa: E501
            TableRow("13", f"daemon RSS while streaming a {sizes.stream / (1 << 30):g} GiB file", "", "MiB", "at most", 256.0, "≤ 256 MiB"),  # noqa: E501
            TableRow("14", f"registry server, {CONNECTIONS} concurrent ranged blob GETs of 1 MiB", "nginx, same file", "req/s", "ratio >=", 0.5, "≥ 0.5× requests/s"),  # noqa: E501
            TableRow("21", f"daemon CPU per cold GiB (row 1's read of {gib}), FUSE-serving process", "", "CPU-s/GiB", "at most", 0.5, "≤ 0.5 (was 1.4–1.6)"),  # noqa: E501
        ]
    }  # fmt: skip


@contextlib.contextmanager
def phase(what: str) -> Iterator[None]:
    """Say on stderr how long making ``what`` took."""
    started = time.perf_counter()
    yield
    print(f"  {what} created in {time.perf_counter() - started:.1f}s", file=sys.stderr)


class TableBench:
    def __init__(
        self,
        harness: Harness,
        registry_blobs: Path,
        access_log: Path,
        sizes: Sizes,
        rows: dict[str, TableRow],
        selected: set[str],
    ) -> None:
        self.h = harness
        self.work = harness.work
        self.blobs = registry_blobs
        self.access_log = access_log
        self.sizes = sizes
        self.rows = rows
        self.selected = selected
        self.nginx: Nginx | None = None
        self.data: Data | None = None
        self._rclones = 0

    # -- setup -------------------------------------------------------------------

    def blob_file(self, digest: str) -> Path:
        return self.blobs / "sha256" / digest[:2] / digest

    def prepare(self) -> Data:
        """Create the versions the selected rows read (``NEEDS_DATA``; the others stay empty
        placeholders), and nginx's view of the same files."""
        s, h, src = self.sizes, self.h, self.work / "src"
        needed = {name for name, keys in NEEDS_DATA.items() if keys & self.selected}
        data = Data(
            big=Version("", ""),
            big_file=src / "big" / "big.bin",
            big_digest="",
            four=Version("", ""),
            four_files=[src / "four" / f"part{i}.bin" for i in range(READERS)],
            four_digests=[],
            small=Version("", ""),
            small_dir=src / "small",
            many=Version("", ""),
            many_path="",
            many_first_byte="",
            thousand=Version("", ""),
            stream=Version("", ""),
            stream_name="stream.bin",
            peer_root=self.work / "peer-root",
        )
        small_digests: list[str] = []
        if "big" in needed:
            with phase("bench-big"):
                data.big_file.parent.mkdir(parents=True)
                data.big_digest = write_pattern(data.big_file, s.big, b"big")
                _, version = h.artfs_push("bench-big", data.big_file)
                data.big = Version("bench-big", version)
        if "four" in needed:
            with phase("bench-four"):
                data.four_files[0].parent.mkdir(parents=True)
                for i, path in enumerate(data.four_files):
                    data.four_digests.append(write_pattern(path, s.big // READERS, b"four%d" % i))
                _, version = h.artfs_push("bench-four", data.four_files[0].parent)
                data.four = Version("bench-four", version)
        if "small" in needed:
            with phase("bench-small"):
                small_digests = write_small_files(data.small_dir, s.small_files)
                _, version = h.artfs_push("bench-small", data.small_dir)
                data.small = Version("bench-small", version)
        if "many" in needed:
            with phase("bench-many"):
                version, data.many_path, data.many_first_byte = self.h.many_files_version(
                    "bench-many", s.many_files
                )
                data.many = Version("bench-many", version)
        if "thousand" in needed:
            with phase("bench-pull"):
                write_small_files(src / "thousand", s.pull_files)
                _, version = h.artfs_push("bench-pull", src / "thousand")
                data.thousand = Version("bench-pull", version)
        if "stream" in needed:
            with phase("bench-stream"):
                data.stream = self.stream_version("bench-stream", s.stream)
        # nginx serves hard links to the registry's blob files: the very same bytes (and
        # page cache) the registry serves, under names rclone can list.
        (data.peer_root / "small").mkdir(parents=True)
        if data.big_digest:
            os.link(self.blob_file(data.big_digest), data.peer_root / "big.bin")
        for i, digest in enumerate(small_digests):
            os.link(self.blob_file(digest), data.peer_root / "small" / file_name(i))
        self.data = data
        return data

    def stream_version(self, name: str, size: int) -> Version:
        """A ``size``-byte version (one file, every MiB distinct), never written locally: the
        bytes are made twice, once to hash them and once for a chunked PUT."""
        hasher = hashlib.sha256()
        for block in pattern_blocks(size, b"stream"):
            hasher.update(block)
        digest = hasher.hexdigest()
        upload_id = self.h.pending_upload(
            name, [{"path": "stream.bin", "size": size, "digest": digest}]
        )
        answer = self.h.http.put(
            self.h.blob_url(digest),
            data=pattern_blocks(size, b"stream"),
            headers={"Content-Type": "application/octet-stream"},
        )
        answer.raise_for_status()
        return Version(name, str(self.h.commit_upload(upload_id)["version"]))

    def start_peers(self) -> None:
        from tests.support.registry import free_port

        if self.selected & NEEDS_NGINX:
            assert self.data is not None
            self.nginx = Nginx(self.data.peer_root, self.work / "nginx", free_port())
            self.nginx.start()

    def stop_peers(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()

    def rclone(self) -> RcloneMount:
        assert self.nginx is not None
        self._rclones += 1
        base = self.work / "rclone" / f"r{self._rclones:03d}"
        base.mkdir(parents=True)
        return RcloneMount(self.nginx.url, base / "mnt", base / "rclone.log")

    def rclone_step(self, step: Callable[[Path], Sample]) -> Sample:
        """``step`` on a fresh rclone mount after dropping the page cache; unmounted after."""
        self.h.drop_caches()
        mount = self.rclone()
        try:
            mount.start()
            return step(mount.path)
        finally:
            mount.stop()

    # -- one run -------------------------------------------------------------------

    def run(self, run: int) -> None:
        assert self.data is not None
        steps: list[tuple[set[str], Callable[[int, Data], None]]] = [
            ({"1", "2", "3", "4", "21"}, self.sequential),
            ({"1"}, self.fetch_path_alone),
            ({"5"}, self.listing),
            ({"6"}, self.small_reads),
            ({"7"}, self.parallel_readers),
            ({"8"}, self.first_byte),
            ({"9"}, self.find_many),
            ({"10"}, self.pull_cached),
            ({"11"}, self.random_reads),
            ({"12"}, self.commit),
            ({"13"}, self.stream_rss),
            ({"14"}, self.server),
        ]
        for keys, step in steps:
            if keys & self.selected:
                started = time.perf_counter()
                step(run, self.data)
                print(
                    f"  rows {','.join(sorted(keys & self.selected, key=int))}: "
                    f"{time.perf_counter() - started:.1f}s",
                    file=sys.stderr,
                )

    def sequential(self, run: int, data: Data) -> None:
        """Rows 1-4: cold read vs curl and rclone, page-cache re-read and warm read vs local."""
        size = data.big_file.stat().st_size
        mb = size / 1e6
        vs_curl, vs_rclone, reread, warm = (self.rows[key] for key in "1234")
        cache_dir = self.work / "mounts" / f"warm-cache-{run}"

        def through_mount() -> None:
            self.h.drop_caches()
            with self.h.fresh_mount(cache_dir=cache_dir) as mount:
                pid = mount.daemon_pid()
                target = data.big.under(mount.path) / data.big_file.name
                sample = self.h.cat(target, daemon_pid=pid)
                vs_curl.artfs.append(mb / sample.wall)
                vs_rclone.artfs.append(mb / sample.wall)
                vs_curl.details.setdefault("artfs_daemon_cpu", []).append(sample.daemon_cpu)
                per_gib = (1 << 30) / size
                cpu_row = self.rows["21"]
                cpu_row.artfs.append(sample.daemon_cpu * per_gib)
                cpu_row.details.setdefault("workers_cpu_per_gib", []).append(
                    sample.workers_cpu * per_gib
                )
                workers = sorted(cpu_row.details["workers_cpu_per_gib"])
                cpu_row.artfs_suffix = f"workers {workers[len(workers) // 2]:.2f}"
                if (fetched := mount.cached_bytes()) != size:
                    raise RuntimeError(f"cold read left {fetched} bytes cached, not {size}")
                if "3" in self.selected:
                    self.h.cat(data.big_file)  # the local copy is warm too (untimed)
                    on_mount, local = both(
                        run,
                        lambda: self.h.cat(target, daemon_pid=pid),
                        lambda: self.h.cat(data.big_file),
                    )
                    reread.artfs.append(mb / on_mount.wall)
                    reread.ref.append(mb / local.wall)
                    reread.details.setdefault("artfs_daemon_cpu", []).append(on_mount.daemon_cpu)

        def references() -> None:
            if "1" in self.selected:
                self.h.drop_caches()
                vs_curl.ref.append(mb / self.h.curl_get(self.h.blob_url(data.big_digest)).wall)
            if "2" in self.selected:
                sample = self.rclone_step(lambda root: self.h.cat(root / "big.bin"))
                vs_rclone.ref.append(mb / sample.wall)

        if run % 2:
            through_mount()
            references()
        else:
            references()
            through_mount()
        if "4" in self.selected:

            def warm_mount() -> Sample:
                self.h.drop_caches()
                with self.h.fresh_mount(cache_dir=cache_dir) as mount:
                    before = mount.cached_bytes()
                    target = data.big.under(mount.path) / data.big_file.name
                    pid = mount.daemon_pid()
                    sample = self.h.cat(target, daemon_pid=pid)
                    # Context: the same mount reads it all again from its cache's disk,
                    # every chunk verified here before (each is hashed again).
                    self.h.drop_caches()
                    again = self.h.cat(target, daemon_pid=pid)
                    if mount.cached_bytes() != before:
                        raise RuntimeError("the warm read fetched chunks: the cache was not warm")
                    warm.details.setdefault("same_mount_mb_per_s", []).append(mb / again.wall)
                    warm.details.setdefault("same_mount_daemon_cpu", []).append(again.daemon_cpu)
                    return sample

            def local() -> Sample:
                self.h.drop_caches()
                return self.h.cat(data.big_file)

            on_mount, on_disk = both(run, warm_mount, local)
            warm.artfs.append(mb / on_mount.wall)
            warm.ref.append(mb / on_disk.wall)
            warm.details.setdefault("artfs_daemon_cpu", []).append(on_mount.daemon_cpu)
        shutil.rmtree(cache_dir, ignore_errors=True)

    def fetch_path_alone(self, run: int, data: Data) -> None:
        """Context of rows 1-2: the mount's fetch path alone (no FUSE), cold, step by step."""
        row = self.rows["1"]
        size = data.big_file.stat().st_size
        cache_dir = self.work / "ceiling-cache"
        for step in fetch_ceiling.STEPS:
            self.h.drop_caches()
            try:
                _, out = self.h.timed(
                    [sys.executable, str(CEILING), self.h.url, PROJECT, data.big_digest,
                     str(cache_dir), step]
                )  # fmt: skip
            finally:
                shutil.rmtree(cache_dir, ignore_errors=True)
            result = json.loads(out.splitlines()[-1])
            row.details.setdefault(f"ceiling_{step}_mb_per_s", []).append(
                size / result["seconds"] / 1e6
            )
            row.details.setdefault(f"ceiling_{step}_cpu", []).append(result["cpu"])

    def listing(self, run: int, data: Data) -> None:
        """Row 5: ``ls -lR`` on a fresh mount vs the local tree, caches dropped; then warm."""
        row = self.rows["5"]
        listing = ["ls", "-lR", "."]

        def check(out: str) -> None:
            if out.count("\n") < self.sizes.small_files:
                raise RuntimeError(f"ls -lR listed {out.count(chr(10))} lines")

        def on_mount() -> tuple[Sample, Sample]:
            self.h.drop_caches()
            with self.h.fresh_mount() as mount:
                cwd = data.small.under(mount.path)
                pid = mount.daemon_pid()
                first, out = self.h.timed(listing, cwd=cwd, daemon_pid=pid)
                check(out)
                again, out = self.h.timed(listing, cwd=cwd, daemon_pid=pid)
                check(out)
                return first, again

        def on_disk() -> tuple[Sample, Sample]:
            self.h.drop_caches()
            first, out = self.h.timed(listing, cwd=data.small_dir)
            check(out)
            again, out = self.h.timed(listing, cwd=data.small_dir)
            return first, again

        (cold_mount, warm_mount), (cold_disk, warm_disk) = both(run, on_mount, on_disk)
        row.artfs.append(cold_mount.wall)
        row.ref.append(cold_disk.wall)
        row.details.setdefault("warm_artfs_seconds", []).append(warm_mount.wall)
        row.details.setdefault("warm_local_seconds", []).append(warm_disk.wall)

    def small_reads(self, run: int, data: Data) -> None:
        """Row 6: ``find | xargs cat`` on a fresh mount (empty cache) vs a fresh rclone mount."""
        row = self.rows["6"]
        read_all = ["sh", "-c", "find . -type f -print0 | xargs -0 cat > /dev/null"]
        expected = self.sizes.small_files * SMALL_SIZE

        def on_mount() -> Sample:
            self.h.drop_caches()
            with self.h.fresh_mount() as mount:
                sample = self.h.timed(
                    read_all, cwd=data.small.under(mount.path), daemon_pid=mount.daemon_pid()
                )[0]
                if (fetched := mount.cached_bytes()) != expected:
                    raise RuntimeError(f"find|cat left {fetched} bytes in the cache")
                return sample

        def on_rclone() -> Sample:
            return self.rclone_step(lambda root: self.h.timed(read_all, cwd=root / "small")[0])

        artfs, rclone = both(run, on_mount, on_rclone)
        row.artfs.append(artfs.wall)
        row.ref.append(rclone.wall)

    def parallel_readers(self, run: int, data: Data) -> None:
        """Row 7: 4 ``cat`` of 4 files at once on a fresh mount vs 4 ``curl`` at once, cold."""
        row = self.rows["7"]
        mb = sum(path.stat().st_size for path in data.four_files) / 1e6

        def on_mount() -> Sample:
            self.h.drop_caches()
            with self.h.fresh_mount() as mount:
                root = data.four.under(mount.path)
                return self.h.cat(
                    *(root / path.name for path in data.four_files), daemon_pid=mount.daemon_pid()
                )

        def curl() -> Sample:
            self.h.drop_caches()
            return self.h.curl_get(*map(self.h.blob_url, data.four_digests))

        artfs, reference = both(run, on_mount, curl)
        row.artfs.append(mb / artfs.wall)
        row.ref.append(mb / reference.wall)

    def first_byte(self, run: int, data: Data) -> None:
        """Row 8: stat + open + read 1 byte in the many-file version, fresh mount."""
        self.h.drop_caches()
        with self.h.fresh_mount() as mount:
            target = data.many.under(mount.path) / data.many_path
            _, out = self.h.timed(
                [sys.executable, "-c", PROBE_FIRST_BYTE, str(target)],
                daemon_pid=mount.daemon_pid(),
            )
        seconds, first = out.split()
        if first != data.many_first_byte:
            raise RuntimeError(f"first byte {first}, expected {data.many_first_byte}")
        self.rows["8"].artfs.append(float(seconds))

    def find_many(self, run: int, data: Data) -> None:
        """Row 9: ``find VERSION -type f | wc -l`` on a fresh mount."""
        self.h.drop_caches()
        with self.h.fresh_mount() as mount:
            sample, out = self.h.timed(
                ["sh", "-c", 'find "$1" -type f | wc -l', "sh", str(data.many.under(mount.path))],
                daemon_pid=mount.daemon_pid(),
            )
        if int(out) != self.sizes.many_files:
            raise RuntimeError(f"find listed {out.strip()} files, not {self.sizes.many_files}")
        self.rows["9"].artfs.append(sample.wall)

    def requests_answered(self) -> int:
        if not self.access_log.exists():
            return 0
        with open(self.access_log, "rb") as log:
            return sum(1 for _ in log)

    def pull_cached(self, run: int, data: Data) -> None:
        """Row 10: ``artfs pull`` into an empty directory of a version pulled once before."""
        row = self.rows["10"]
        ref = f"{data.thousand.name}:{data.thousand.version}"
        first = self.work / "pulls" / "first"
        if not first.exists():
            self.h.timed([str(ARTFS), "pull", ref, str(first)])  # fills the cache (untimed)
        dest = self.work / "pulls" / f"run{run}"
        time.sleep(0.2)
        before = self.requests_answered()
        sample, _ = self.h.timed([str(ARTFS), "pull", ref, str(dest)])
        time.sleep(0.2)  # the access log line of the last answer
        answered = self.requests_answered() - before
        if len(list(dest.iterdir())) != self.sizes.pull_files:
            raise RuntimeError(f"the pull into {dest} did not write {self.sizes.pull_files} files")
        row.artfs.append(sample.wall)
        row.details.setdefault("requests", []).append(answered)
        bare = self.work / "pulls" / f"bare{run}"
        row.details.setdefault("bare_creates_seconds", []).append(
            time_bare_creates(bare, self.sizes.pull_files)
        )
        requests = sorted(row.details["requests"])[len(row.details["requests"]) // 2]
        row.artfs_suffix = f"{requests} requests"
        # "No request per file": the requests must not grow with the files.
        row.also_met = max(row.details["requests"]) < max(10, self.sizes.pull_files // 100)
        # ``dest`` and ``bare`` stay until the work directory goes: deleting their
        # 2,000 files here made the next run's pull, in a new directory beside
        # them, pay ext4's recently-deleted-inode scan on every create (without a
        # journal, as here): 0.29 s in the first run, 0.55-0.61 s in the next two.

    def random_reads(self, run: int, data: Data) -> None:
        """Row 11: chunks fetched by 64 random 4 KiB reads on a fresh mount (empty cache)."""
        with self.h.fresh_mount() as mount:
            target = data.big.under(mount.path) / data.big_file.name
            _, out = self.h.timed(
                [
                    sys.executable, "-c", PROBE_RANDOM_READS, str(target),
                    str(RANDOM_READS), str(RANDOM_READ), str(1000 + run),
                ]
            )  # fmt: skip
            time.sleep(0.5)  # let any read-ahead the reads triggered land
            chunks = mount.chunks()
            fetched = sum(place.size for place in chunks.values())
        answer = json.loads(out)
        offsets: list[int] = answer["offsets"]
        hasher = hashlib.sha256()
        with open(data.big_file, "rb") as local:
            for offset in offsets:
                hasher.update(os.pread(local.fileno(), RANDOM_READ, offset))
        if hasher.hexdigest() != answer["sha256"]:
            raise RuntimeError("random reads through the mount returned other bytes")
        row = self.rows["11"]
        row.artfs.append(len(chunks) / len(offsets))
        row.details.setdefault("distinct_chunks", []).append(
            len({offset // MiB for offset in offsets})
        )
        row.details.setdefault("bytes_fetched_per_byte_read", []).append(
            fetched / (len(offsets) * RANDOM_READ)
        )

    def commit(self, run: int, data: Data) -> None:
        """Row 12: ``artfs commit`` of a staged file vs ``curl -T`` of another of the same size."""
        row = self.rows["12"]
        here = self.work / f"commit-{run}"
        here.mkdir()
        source, other = here / "staged.bin", here / "curl.bin"
        size = self.sizes.big
        digest = write_pattern(source, size, b"commit%d" % run)
        digest_x = write_pattern(other, size, b"curl-commit%d" % run)
        self.h.pending_upload(
            f"curl-commit-{run}",
            [{"path": "x.bin", "size": other.stat().st_size, "digest": digest_x}],
        )
        mb = source.stat().st_size / 1e6
        try:
            with self.h.fresh_mount("--staging-dir", str(here / "staging")) as mount:
                pid = mount.daemon_pid()
                artifact = mount.path / f"bench-commit-{run}"
                artifact.mkdir()
                self.h.timed(
                    ["dd", f"if={source}", f"of={artifact / '.staging' / 'big.bin'}", "bs=1M",
                     "conv=fsync", "status=none"]
                )  # fmt: skip
                said: list[str] = []

                def commit() -> Sample:
                    sample, done = self.h.run_timed(
                        [str(ARTFS), "commit", str(artifact)], daemon_pid=pid
                    )
                    said.append(done.stderr)
                    return sample

                artfs, curl = both(run, commit, lambda: self.h.curl_put(other, digest_x))
            self.h.check_stored([digest, digest_x])
        finally:
            shutil.rmtree(here)
        # The whole file went up as one blob: what the commit says it uploaded.
        if f"uploaded {human_size(int(mb * 1e6))} in 1 blob\n" not in said[0]:
            raise RuntimeError(f"artfs commit said {said[0]!r}")
        row.artfs.append(mb / artfs.wall)
        row.ref.append(mb / curl.wall)
        row.details.setdefault("artfs_daemon_cpu", []).append(artfs.daemon_cpu)

    def stream_rss(self, run: int, data: Data) -> None:
        """Row 13: peak VmRSS of the daemon, sampled every 100 ms, while ``cat`` streams."""
        row = self.rows["13"]
        self.h.drop_caches()
        with self.h.fresh_mount("--cache-size", STREAM_CACHE_SIZE) as mount:
            pid = mount.daemon_pid()
            peak = [0]
            stop = threading.Event()

            def sample_rss() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
                    stop.wait(RSS_PERIOD)

            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            try:
                sample = self.h.cat(data.stream.under(mount.path) / data.stream_name)
            finally:
                stop.set()
                sampler.join()
            hwm = status_kib(pid, "VmHWM")
            cached = mount.cached_bytes()
        row.artfs.append(peak[0] / 1024)
        row.details.setdefault("vmhwm_mib", []).append(hwm / 1024)
        row.details.setdefault("stream_mb_per_s", []).append(self.sizes.stream / 1e6 / sample.wall)
        row.details.setdefault("cache_bytes_after", []).append(cached)

    def server(self, run: int, data: Data) -> None:
        """Row 14: wrk, 64 connections of random 1 MiB Range GETs, registry vs nginx."""
        assert self.nginx is not None
        nginx = self.nginx
        row = self.rows["14"]
        self.h.cat(self.blob_file(data.big_digest))  # both serve from a warm page cache
        size = data.big_file.stat().st_size
        seconds = self.sizes.server_seconds

        def load(url: str, cpu: Callable[[], float]) -> Callable[[], LoadResult]:
            return lambda: ranged_load(
                url, self.work, size, MiB, connections=CONNECTIONS, threads=WRK_THREADS,
                seconds=seconds, seed=run, server_cpu=cpu,
            )  # fmt: skip

        registry, reference = both(
            run,
            load(self.h.blob_url(data.big_digest), self.h.server_cpu),
            load(f"{nginx.url}/big.bin", lambda: sum(map(process_cpu, nginx.pids()))),
        )
        for name, result in (("registry", registry), ("nginx", reference)):
            if result.errors or result.bytes < result.requests * MiB:
                raise RuntimeError(f"wrk against {name}: {result}")
            row.details.setdefault(f"{name}_load", []).append(vars(result))
        row.artfs.append(registry.per_second)
        row.ref.append(reference.per_second)


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure in KiB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
