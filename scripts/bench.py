"""Throughput of ``artfs push`` / ``artfs pull`` / the mount / staging and commit.

Run it as ``scripts/bench [--rows push,pull,mount,stage] [--size-mib 1024]
[--small-files 10000] [--many-files 100000] [--runs 3] [--json PATH]``. ``--rows``
takes group names (``push`` = A, C; ``pull`` = B, D; ``mount`` = E-I; ``stage`` =
J-L) and/or single row letters, e.g. ``--rows mount`` or ``--rows E,I``; the
default is all rows.

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

(When only ``pull`` is selected, the version it pulls is still pushed by
``artfs push``, untimed, and the curl PUT is skipped.)

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

MOUNT ROWS (E-I)

Before the first run, untimed, the script creates three versions on the same
server: ``--size-mib`` of random bytes as one file (``artfs push``; the source
file is kept as the local copy for F), ``--small-files`` files of 4 KiB of
distinct random content in one flat directory (``artfs push``; the source
directory is kept as the local tree for G), and a ``--many-files`` version
created through the HTTP API directly, as tests/integration/test_registry_api.py
does in its 100k test: one PENDING upload, manifest entries in batches of 10,000
pointing at 100 distinct small blobs under 97 directories (``dNN/fNNNNNN.bin``),
the 100 blob PUTs, the commit. No 100,000 local files are made.

"Fresh mount" below means: a new empty mountpoint and a new EMPTY ``--cache-dir``
under the bench's temporary directory, ``artfs mount MNT --registry URL
--cache-dir DIR`` (it daemonizes and returns once the mount is ready; the time
that takes is NOT in the row and is printed separately), then the timed step,
then ``artfs umount`` (``fusermount3 -u -z`` as the fallback, as the tests'
fixtures do). A fresh mount has no kernel page cache, dentries or attributes and
a daemon with nothing in memory or on disk, so the FUSE page cache of the file
need not (and cannot reliably) be dropped. The daemon's per-user state (pid
record, log) lands under the bench's own ``XDG_STATE_HOME``. Timed steps are
subprocesses (``cat``, ``ls``, ``sh``, or a small ``python -c`` probe) with
output to ``/dev/null``; CPU is recorded for the reader (``RUSAGE_CHILDREN``),
the mount daemon and the server (both ``/proc/PID/stat``). Sides alternate
order from run to run as above.

E  cold sequential read of the ``--size-mib`` file: ``cat MNT/NAME/v1/FILE >
   /dev/null`` on a fresh mount vs ``curl -o /dev/null`` GET of the same blob from
   the same server. After the read the script checks that the cache dir holds
   exactly the file's size in chunk files (the whole file was fetched, verified
   and stored). The server's copy of the blob is in its page cache for both sides.
F  warm re-read of that file: the same ``cat`` again on the SAME mount right after
   E (open with ``keep_cache``, so the kernel may serve it from its page cache)
   vs ``cat`` of the local source file, which is read once, untimed, just before
   so it is warm as well. Daemon CPU in this row shows whether reads still reach
   the daemon.
G  metadata and small files, two rows, each side starting from
   ``sync; echo 3 > /proc/sys/vm/drop_caches`` (root only; without root the
   drop is skipped and the output says so). Dropping before BOTH sides makes the
   local tree cold (read from the disk) and leaves the mount side as cold as a
   fresh mount is anyway (the server's SQLite and blob files are read from disk
   too).
   G1 ``ls -lR .`` in the version directory of the ``--small-files`` version on a
      fresh mount vs ``ls -lR .`` in the local source tree (same names, sizes).
      Rate = files / s; the line count of the listing is checked.
   G2 ``find . -type f | xargs cat > /dev/null`` (``sh -c``) in that version on
      a fresh mount (empty cache) vs the same command in the local tree. Afterwards
      the cache must hold every file (count x 4 KiB of chunk bytes).
H  time to first byte in the ``--many-files`` version on a fresh mount: a
   ``python -c`` probe times, with ``perf_counter`` inside the probe (no
   interpreter start), ``os.stat`` + ``os.open`` + ``os.read(fd, 1)`` of the path in
   the middle of the sorted manifest, through ``MNT/NAME/v1/...`` (so the artifact,
   the version and the manifest are all looked up cold). Reported in seconds;
   there is no reference, "-" is printed in its place.
I  fetch amplification of random reads: on a fresh mount with an empty cache a
   ``python -c`` probe opens the ``--size-mib`` file, calls
   ``posix_fadvise(POSIX_FADV_RANDOM)`` and does 64 ``os.pread(fd, 4096, off)``
   at random 4 KiB-aligned offsets (seeded per run); the bytes are compared with
   the local copy. Half a second later the script counts the chunk files (1 MiB
   each) and their bytes in the cache dir. Reported: chunks fetched per read and
   bytes fetched / bytes read; the reference is the number of DISTINCT chunks
   those 64 offsets fall in (the fewest a 1 MiB-chunk cache can fetch), and the
   ratio is that reference / chunks fetched (1.0 = nothing fetched in vain).

For E, F and G the ratio is artfs rate / reference rate (same as reference
seconds / artfs seconds); each side is the median over ``--runs``. Figures from a
shared or busy machine are indicative only.

STAGING ROWS (J-L)

Every run, untimed: a fresh random ``--size-mib`` source file S is written under
the bench's temporary directory (so it is in the page cache), and, for K, a
second fresh random file X of the same size for curl (so neither side finds its
blob already stored, as in row A). Then ONE fresh mount for the whole run, as
for the mount rows but with ``--staging-dir`` pointing at a new empty directory
next to its cache dir (same disk as the local reference file of J), and
``mkdir MNT/NAME`` creates a new artifact ``bench-stage-RUN``. J, K and L then
follow on that mount, in that order; the mount is unmounted afterwards
(``fusermount3 -u -z`` as the fallback) and its directories removed. A row that
is not selected but is needed by a later one (J's write before K, K's commit
before L) still runs, untimed. The timed steps record the mount daemon's CPU
(``/proc/PID/stat``), which does the writing, hashing and uploading.

J  write S into ``.staging``: ``dd if=S of=MNT/NAME/.staging/big.bin bs=1M
   conv=fsync status=none`` (the ``fsync`` at the end is inside dd, so the row
   times bytes on the staging disk) vs the same ``dd`` to a local file next to
   S (same disk, same fsync). The local file is removed after the row. Ratio =
   artfs MB/s / local MB/s. Afterwards the staged file must have S's size.
K  commit of that staged file: ``artfs commit MNT/NAME`` (wall time of the CLI,
   which waits for the daemon to hash the staged file, upload the blob and
   commit) vs one ``curl -T X`` PUT to the blob endpoint of the same server,
   after an (untimed) PENDING upload that references X's digest. The commit's
   stderr must say ``uploaded SIZE bytes in 1 blobs``; afterwards both S's and
   X's digests must be stored on the server and ``.staging`` must be empty.
   Ratio = artfs MB/s / curl MB/s.
L  re-commit of unchanged content, two ways, each a timed ``artfs commit``
   with no reference ("-"); the row reports the wall seconds and the bytes the
   commit uploaded, parsed from its stderr (``uploaded N bytes in M blobs``;
   anything but 0 is a failed dedup and is flagged):
   L1 after ``artfs stage MNT/NAME --from VERSION`` of the version K committed
      (copy-on-write placeholders; its time is printed, not in the row).
   L2 after ``dd`` of S into ``.staging`` again (untimed, as in J), so the
      commit has to hash the whole file to find it stored already.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from tests.support.mount import Mount

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
MiB = 1 << 20
#: Row groups of ``--rows``; single letters select single rows.
GROUPS = {"push": "AC", "pull": "BD", "mount": "EFGHI", "stage": "JKL"}
ALL_ROWS = "ABCDEFGHIJKL"
#: Row I: random reads of this size, this many.
RANDOM_READ = 4096
RANDOM_READS = 64
#: Row H: distinct blobs behind the many-file version (as in the registry API test).
MANY_DISTINCT = 100
#: Any step touching the mount gives up after this long instead of hanging the bench.
MOUNT_STEP_TIMEOUT = 900.0
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
#: What ``artfs commit`` says on stderr about its upload.
UPLOADED = re.compile(r"uploaded (\d+) bytes in (\d+) blobs")

#: Row H probe: stat + open + read 1 byte, timed inside (no interpreter start).
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

#: Row I probe: 4 KiB preads at random aligned offsets after POSIX_FADV_RANDOM.
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
class Sample:
    wall: float
    client_cpu: float
    server_cpu: float
    #: CPU of the mount daemon meanwhile (mount rows only).
    daemon_cpu: float = 0.0


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


@dataclass
class MountRow:
    """A timed mount row: rate = ``amount`` (bytes or files) per second; no reference for H."""

    key: str
    label: str
    amount: int
    unit: str  # "MB/s" (amount in bytes), "files/s" or "" (seconds only)
    reference_name: str = ""
    artfs: list[Sample] = field(default_factory=list)
    reference: list[Sample] = field(default_factory=list)
    #: Seconds ``artfs mount`` took before the timed step(s) of this row.
    mount_seconds: list[float] = field(default_factory=list)

    def rate(self, seconds: float) -> float:
        return self.amount / 1e6 / seconds if self.unit == "MB/s" else self.amount / seconds

    def summary(self) -> dict[str, Any]:
        artfs_s = statistics.median(sample.wall for sample in self.artfs)
        found: dict[str, Any] = {
            "row": self.key,
            "label": self.label,
            "reference": self.reference_name or None,
            "amount": self.amount,
            "unit": self.unit or "s",
            "artfs_seconds": artfs_s,
            "artfs_rate": self.rate(artfs_s) if self.unit else None,
            "reference_seconds": None,
            "reference_rate": None,
            "ratio": None,
            "artfs_cpu_seconds": _cpu_medians(self.artfs),
            "reference_cpu_seconds": None,
            "mount_seconds": statistics.median(self.mount_seconds) if self.mount_seconds else None,
            "artfs_samples": [vars(sample) for sample in self.artfs],
            "reference_samples": [vars(sample) for sample in self.reference],
        }
        if self.reference:
            reference_s = statistics.median(sample.wall for sample in self.reference)
            found |= {
                "reference_seconds": reference_s,
                "reference_rate": self.rate(reference_s),
                "ratio": reference_s / artfs_s,
                "reference_cpu_seconds": _cpu_medians(self.reference),
            }
        return found


@dataclass
class FetchRow:
    """Row I: what random reads made the mount fetch, per run."""

    key: str
    label: str
    runs: list[dict[str, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def median(name: str) -> float:
            return statistics.median(run[name] for run in self.runs)

        reads, distinct, fetched = median("reads"), median("distinct_chunks"), median("chunks")
        return {
            "row": self.key,
            "label": self.label,
            "reads": reads,
            "bytes_read": median("bytes_read"),
            "distinct_chunks": distinct,
            "chunks_fetched": fetched,
            "bytes_fetched": median("bytes_fetched"),
            "chunks_per_read": fetched / reads,
            "fetched_per_read_byte": median("bytes_fetched") / median("bytes_read"),
            "ratio": distinct / fetched if fetched else None,
            "runs": self.runs,
        }


@dataclass
class StageRow(MountRow):
    """A staging row (J-L): a timed mount row that also notes what each commit uploaded."""

    #: Per artfs sample of a commit row: bytes and blobs the commit uploaded, no-op or not.
    uploads: list[dict[str, Any]] = field(default_factory=list)
    #: Row L1: seconds ``artfs stage --from`` took before the timed commit.
    stage_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        found = super().summary()
        if self.uploads:
            found["uploaded_bytes"] = statistics.median(u["bytes"] for u in self.uploads)
            found["uploaded_bytes_max"] = max(u["bytes"] for u in self.uploads)
            found["uploaded_blobs"] = statistics.median(u["blobs"] for u in self.uploads)
            found["uploads"] = self.uploads
        if self.stage_seconds:
            found["stage_seconds"] = statistics.median(self.stage_seconds)
        return found


@dataclass
class StageRows:
    write: StageRow  # J
    commit: StageRow  # K
    recommit_staged: StageRow  # L1
    recommit_written: StageRow  # L2
    selected: str

    def timed_rows(self) -> list[StageRow]:
        rows = [
            (self.write, "J"),
            (self.commit, "K"),
            (self.recommit_staged, "L"),
            (self.recommit_written, "L"),
        ]
        return [row for row, key in rows if key in self.selected]


def _cpu_medians(samples: list[Sample]) -> dict[str, float]:
    return {
        "client": statistics.median(sample.client_cpu for sample in samples),
        "server": statistics.median(sample.server_cpu for sample in samples),
        "daemon": statistics.median(sample.daemon_cpu for sample in samples),
    }


@dataclass
class MountRows:
    cold: MountRow  # E
    warm: MountRow  # F
    listing: MountRow  # G1
    small_read: MountRow  # G2
    first_byte: MountRow  # H
    random_reads: FetchRow  # I
    selected: str

    def timed_rows(self) -> list[MountRow]:
        rows = [
            (self.cold, "E"),
            (self.warm, "F"),
            (self.listing, "G"),
            (self.small_read, "G"),
            (self.first_byte, "H"),
        ]
        return [row for row, key in rows if key in self.selected]


@dataclass
class MountData:
    """The versions the mount rows read, created once before the first run."""

    big_name: str
    big_version: str
    big_file: Path  # the local copy (row F), also the truth for row I
    small_name: str
    small_version: str
    small_dir: Path  # the local tree (row G)
    small_count: int
    many_name: str
    many_version: str
    many_path: str  # the path in the middle of the sorted manifest
    many_first_byte: str  # hex of its first byte
    big_digest: str


class Bench:
    def __init__(self, work: Path, url: str, server_pid: int) -> None:
        self.work = work
        self.url = url
        self.server_pid = server_pid
        self.api = f"{url}/api/v1/projects/{PROJECT}"
        self.http = requests.Session()
        self.env = {**os.environ, "ARTFS_URL": url, "ARTFS_PROJECT": PROJECT}
        self.env.pop("ARTFS_TOKEN", None)
        self._mounts = itertools.count(1)
        #: Whether ``drop_caches`` worked every time it was asked for (row G).
        self.dropped_caches: bool | None = None

    # -- helpers -------------------------------------------------------------

    def server_cpu(self) -> float:
        return process_cpu(self.server_pid)

    def timed(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        to_devnull: bool = False,
        daemon_pid: int | None = None,
        timeout: float | None = None,
    ) -> tuple[Sample, str]:
        """Wall and CPU seconds of one subprocess, after flushing earlier writes."""
        sample, done = self.run_timed(
            argv, cwd=cwd, to_devnull=to_devnull, daemon_pid=daemon_pid, timeout=timeout
        )
        return sample, done.stdout or ""

    def run_timed(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        to_devnull: bool = False,
        daemon_pid: int | None = None,
        timeout: float | None = None,
    ) -> tuple[Sample, subprocess.CompletedProcess[str]]:
        """``timed``, returning the whole finished process (stdout and stderr)."""
        os.sync()
        client_before, server_before = children_cpu(), self.server_cpu()
        daemon_before = process_cpu(daemon_pid) if daemon_pid else 0.0
        start = time.perf_counter()
        done = subprocess.run(
            argv,
            env=self.env,
            cwd=cwd,
            stdout=subprocess.DEVNULL if to_devnull else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        elapsed = time.perf_counter() - start
        sample = Sample(
            elapsed,
            children_cpu() - client_before,
            self.server_cpu() - server_before,
            (process_cpu(daemon_pid) - daemon_before) if daemon_pid else 0.0,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:4])} … exited {done.returncode}:\n{done.stderr[-2000:]}"
            )
        return sample, done

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

    # -- rows A-D ------------------------------------------------------------

    def big(self, run: int, size: int, push: Row | None, pull: Row | None) -> None:
        here = self.work / f"run{run}-big"
        here.mkdir()
        file_y = here / "y.bin"
        write_random(file_y, size)
        name = f"bench-big-{run}"
        version = ""

        def artfs_push() -> Sample:
            nonlocal version
            sample, version = self.artfs_push(name, file_y)
            return sample

        if push is None:
            artfs_push()  # only so that there is something to pull
        else:
            file_x = here / "x.bin"
            digest_x = write_random(file_x, size)
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

            both(run, push, artfs_push, curl_put)
            self.check_stored([digest_x])
            file_x.unlink()

        if pull is not None:
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

    def small(self, run: int, count: int, push: Row | None, pull: Row | None) -> None:
        here = self.work / f"run{run}-small"
        dir_y = here / "y"
        digests_y = write_small_files(dir_y, count)
        name = f"bench-small-{run}"
        version = ""

        def artfs_push() -> Sample:
            nonlocal version
            sample, version = self.artfs_push(name, dir_y)
            return sample

        if push is None:
            artfs_push()  # only so that there is something to pull
        else:
            dir_x = here / "x"
            digests_x = write_small_files(dir_x, count)
            self.pending_upload(
                f"curl-small-{run}",
                [
                    {"path": file_name(i), "size": SMALL_SIZE, "digest": digest}
                    for i, digest in enumerate(digests_x)
                ],
            )
            put_config = [
                'header = "Expect:"',
                'header = "Content-Type: application/octet-stream"',
            ]
            for i, digest in enumerate(digests_x):
                put_config += [
                    f'url = "{self.blob_url(digest)}"',
                    f'upload-file = "{dir_x / file_name(i)}"',
                    f'output = "{os.devnull}"',
                ]
            both(run, push, artfs_push, lambda: self.curl_many(put_config, here / "put.curl"))
            self.check_stored(digests_x)

        if pull is not None:
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

    # -- mount rows E-I: setup -------------------------------------------------

    def mount_data(self, size: int, small_count: int, many_count: int) -> MountData:
        """Push the three versions the mount rows read (untimed)."""
        here = self.work / "mount-src"
        big_dir = here / "big"
        big_dir.mkdir(parents=True)
        big_file = big_dir / "big.bin"
        big_digest = write_random(big_file, size)
        _, big_version = self.artfs_push("bench-mount-big", big_file)
        small_dir = here / "small"
        write_small_files(small_dir, small_count)
        _, small_version = self.artfs_push("bench-mount-small", small_dir)
        many_version, many_path, first_byte = self.many_files_version(
            "bench-mount-many", many_count
        )
        return MountData(
            big_name="bench-mount-big",
            big_version=big_version,
            big_file=big_file,
            small_name="bench-mount-small",
            small_version=small_version,
            small_dir=small_dir,
            small_count=small_count,
            many_name="bench-mount-many",
            many_version=many_version,
            many_path=many_path,
            many_first_byte=first_byte,
            big_digest=big_digest,
        )

    def many_files_version(self, name: str, total: int) -> tuple[str, str, str]:
        """A ``total``-file version over 100 small blobs, through the HTTP API."""
        contents = [f"artfs bench {name} blob {i}\n".encode() for i in range(MANY_DISTINCT)]
        digests = [hashlib.sha256(data).hexdigest() for data in contents]
        entries = [
            {
                "path": f"d{i % 97:02d}/f{i:06d}.bin",
                "size": len(contents[i % MANY_DISTINCT]),
                "digest": digests[i % MANY_DISTINCT],
            }
            for i in range(total)
        ]
        upload_id = self.pending_upload(name, entries)
        for data, digest in zip(contents, digests, strict=True):
            answer = self.http.put(
                self.blob_url(digest),
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            answer.raise_for_status()
        committed = self.http.post(f"{self.api}/uploads/{upload_id}/commit", json={})
        committed.raise_for_status()
        version = committed.json()
        if version["file_count"] != total:
            raise RuntimeError(f"{name} committed {version['file_count']} files, not {total}")
        middle = sorted(entries, key=lambda entry: entry["path"])[total // 2]
        first_byte = contents[digests.index(middle["digest"])][:1].hex()
        return str(version["version"]), str(middle["path"]), first_byte

    @contextlib.contextmanager
    def fresh_mount(self, row: MountRow | None, *, staging: bool = False) -> Iterator[Mount]:
        """A new mountpoint over a new empty cache dir; unmounted and removed after.

        ``staging``: also a new empty ``--staging-dir`` next to the cache dir.
        """
        from tests.support.mount import Mount, _mounted_paths

        records = self.work / "home" / "state" / "artfs" / "mounts"

        class BenchMount(Mount):
            def daemon_pid(self) -> int | None:
                # Read the record's JSON here rather than through artfs.daemon.state,
                # which this process imported once while artfs/ may be changing.
                return recorded_daemon_pid(records, self.path)

        base = self.work / "mounts" / f"m{next(self._mounts):03d}"
        extra = ("--staging-dir", str(base / "staging")) if staging else ()
        mount = BenchMount(base / "mnt", self.url, base / "cache", *extra)
        try:
            start = time.perf_counter()
            mount.mount()
            if row is not None:
                row.mount_seconds.append(time.perf_counter() - start)
            yield mount
        finally:
            mount.unmount()
        if str(mount.path) not in _mounted_paths():
            shutil.rmtree(base, ignore_errors=True)

    def daemon(self, mount: Mount) -> int:
        pid = mount.daemon_pid()
        if pid is None:
            raise RuntimeError(f"no daemon record for {mount.path}")
        return pid

    def drop_caches(self) -> None:
        """``sync; echo 3 > /proc/sys/vm/drop_caches`` (root only; noted when it fails)."""
        os.sync()
        try:
            DROP_CACHES.write_text("3\n")
        except OSError:
            self.dropped_caches = False
        else:
            if self.dropped_caches is None:
                self.dropped_caches = True

    # -- mount rows E-I: the runs ----------------------------------------------

    def cat(self, path: Path, daemon_pid: int | None = None) -> Sample:
        """``cat PATH > /dev/null``, timed."""
        return self.timed(
            ["cat", str(path)], to_devnull=True, daemon_pid=daemon_pid, timeout=MOUNT_STEP_TIMEOUT
        )[0]

    def mount_big(self, run: int, data: MountData, rows: MountRows) -> None:
        """Rows E (cold read vs curl) and F (warm re-read vs local copy)."""
        size = data.big_file.stat().st_size
        cold = "E" in rows.selected

        def through_mount() -> None:
            with self.fresh_mount(rows.cold if cold else None) as mount:
                pid = self.daemon(mount)
                target = mount.path / data.big_name / data.big_version / data.big_file.name
                sample = self.cat(target, pid)  # F alone still needs this first read
                if cold:
                    rows.cold.artfs.append(sample)
                fetched = mount.cached_bytes()
                if fetched != size:
                    raise RuntimeError(f"cold read left {fetched} bytes cached, not {size}")
                if "F" in rows.selected:
                    self.cat(data.big_file)  # warm the local copy too (untimed)
                    both(
                        run,
                        rows.warm,
                        lambda: self.cat(target, pid),
                        lambda: self.cat(data.big_file),
                    )

        def curl_get() -> Sample:
            return self.timed(
                [CURL, "-sS", "--fail", "-o", os.devnull, self.blob_url(data.big_digest)],
                timeout=MOUNT_STEP_TIMEOUT,
            )[0]

        if not cold:
            through_mount()
        elif run % 2:
            through_mount()
            rows.cold.reference.append(curl_get())
        else:
            rows.cold.reference.append(curl_get())
            through_mount()

    def mount_small(self, run: int, data: MountData, rows: MountRows) -> None:
        """Row G: ``ls -lR`` and ``find | xargs cat`` of the small-file version vs local."""
        relative = Path(data.small_name) / data.small_version
        listing = ["ls", "-lR", "."]
        read_all = ["sh", "-c", "find . -type f -print0 | xargs -0 cat > /dev/null"]

        def on_mount(row: MountRow, argv: list[str]) -> Callable[[], Sample]:
            def step() -> Sample:
                self.drop_caches()
                with self.fresh_mount(row) as mount:
                    sample, out = self.timed(
                        argv,
                        cwd=mount.path / relative,
                        daemon_pid=self.daemon(mount),
                        timeout=MOUNT_STEP_TIMEOUT,
                    )
                    check(out)
                    if row is rows.small_read:
                        fetched = mount.cached_bytes()
                        if fetched != data.small_count * SMALL_SIZE:
                            raise RuntimeError(f"find|cat left {fetched} bytes in the cache")
                return sample

            return step

        def on_disk(argv: list[str]) -> Callable[[], Sample]:
            def step() -> Sample:
                self.drop_caches()
                sample, out = self.timed(argv, cwd=data.small_dir)
                check(out)
                return sample

            return step

        def check(out: str) -> None:
            lines = out.count("\n")
            if out and lines < data.small_count:
                raise RuntimeError(f"ls -lR listed {lines} lines for {data.small_count} files")

        both(run, rows.listing, on_mount(rows.listing, listing), on_disk(listing))
        both(run, rows.small_read, on_mount(rows.small_read, read_all), on_disk(read_all))

    def mount_many(self, data: MountData, row: MountRow) -> None:
        """Row H: time to the first byte of one file of the many-file version."""
        with self.fresh_mount(row) as mount:
            pid = self.daemon(mount)
            target = mount.path / data.many_name / data.many_version / data.many_path
            sample, out = self.timed(
                [sys.executable, "-c", PROBE_FIRST_BYTE, str(target)],
                daemon_pid=pid,
                timeout=MOUNT_STEP_TIMEOUT,
            )
            seconds, first = out.split()
            if first != data.many_first_byte:
                raise RuntimeError(f"first byte {first}, expected {data.many_first_byte}")
            row.artfs.append(
                Sample(float(seconds), sample.client_cpu, sample.server_cpu, sample.daemon_cpu)
            )

    def mount_random(self, run: int, data: MountData, row: FetchRow) -> None:
        """Row I: chunks fetched by 64 random 4 KiB reads on a fresh mount."""
        with self.fresh_mount(None) as mount:
            target = mount.path / data.big_name / data.big_version / data.big_file.name
            _, out = self.timed(
                [
                    sys.executable, "-c", PROBE_RANDOM_READS, str(target),
                    str(RANDOM_READS), str(RANDOM_READ), str(1000 + run),
                ],
                timeout=MOUNT_STEP_TIMEOUT,
            )  # fmt: skip
            time.sleep(0.5)  # let any read-ahead the reads triggered land
            chunks = mount.chunk_files()
            fetched = sum(path.stat().st_size for path in chunks)
        answer = json.loads(out)
        offsets: list[int] = answer["offsets"]
        hasher = hashlib.sha256()
        with open(data.big_file, "rb") as local:
            for offset in offsets:
                hasher.update(os.pread(local.fileno(), RANDOM_READ, offset))
        if hasher.hexdigest() != answer["sha256"]:
            raise RuntimeError("random reads through the mount returned other bytes")
        row.runs.append(
            {
                "reads": len(offsets),
                "bytes_read": len(offsets) * RANDOM_READ,
                "distinct_chunks": len({offset // MiB for offset in offsets}),
                "chunks": len(chunks),
                "bytes_fetched": fetched,
            }
        )

    def mount_run(self, run: int, data: MountData, rows: MountRows) -> None:
        if set(rows.selected) & set("EF"):
            self.mount_big(run, data, rows)
        if "G" in rows.selected:
            self.mount_small(run, data, rows)
        if "H" in rows.selected:
            self.mount_many(data, rows.first_byte)
        if "I" in rows.selected:
            self.mount_random(run, data, rows.random_reads)

    # -- staging rows J-L --------------------------------------------------------

    def dd(self, source: Path, target: Path, daemon_pid: int | None = None) -> Sample:
        """``dd if=SOURCE of=TARGET bs=1M conv=fsync``, timed (the fsync is inside)."""
        return self.timed(
            ["dd", f"if={source}", f"of={target}", "bs=1M", "conv=fsync", "status=none"],
            daemon_pid=daemon_pid,
            timeout=MOUNT_STEP_TIMEOUT,
        )[0]

    def artfs_commit(self, artifact_dir: Path, daemon_pid: int) -> tuple[Sample, dict[str, Any]]:
        """``artfs commit MNT/NAME``, timed; what it uploaded, parsed from its stderr."""
        sample, done = self.run_timed(
            [str(ARTFS), "commit", str(artifact_dir)],
            daemon_pid=daemon_pid,
            timeout=MOUNT_STEP_TIMEOUT,
        )
        said = UPLOADED.search(done.stderr)
        lines = done.stdout.strip().splitlines()
        if said is None or not lines or not lines[-1].startswith("v"):
            raise RuntimeError(
                f"artfs commit printed {done.stdout!r} / {done.stderr!r}: "
                "no `uploaded N bytes in M blobs` or no version id last"
            )
        if left := os.listdir(artifact_dir / ".staging"):
            raise RuntimeError(f"{artifact_dir}/.staging still holds {left} after the commit")
        return sample, {
            "bytes": int(said.group(1)),
            "blobs": int(said.group(2)),
            "version": lines[-1],
            "noop": "content identical to latest" in done.stderr,
        }

    def stage_run(self, run: int, size: int, rows: StageRows) -> None:
        """Rows J (write into .staging), K (commit it) and L (re-commit it), one mount."""
        here = self.work / f"run{run}-stage"
        here.mkdir()
        source = here / "source.bin"
        digest = write_random(source, size)
        digest_x = ""
        if "K" in rows.selected:
            digest_x = write_random(here / "x.bin", size)
            self.pending_upload(
                f"curl-stage-{run}", [{"path": "x.bin", "size": size, "digest": digest_x}]
            )
        try:
            with self.fresh_mount(rows.timed_rows()[0], staging=True) as mount:
                self.stage_steps(run, mount, source, digest, digest_x, rows)
        finally:
            shutil.rmtree(here)

    def stage_steps(
        self, run: int, mount: Mount, source: Path, digest: str, digest_x: str, rows: StageRows
    ) -> None:
        """Rows J-L on one fresh mount; see ``stage_run``."""
        size = source.stat().st_size
        local = source.with_name("local.bin")
        curl_file = source.with_name("x.bin")
        name = f"bench-stage-{run}"
        pid = self.daemon(mount)
        artifact_dir = mount.path / name
        artifact_dir.mkdir()  # a new artifact
        staged = artifact_dir / ".staging" / source.name

        # J: dd into .staging vs dd to a local file on the same disk.
        if "J" in rows.selected:
            both(
                run,
                rows.write,
                lambda: self.dd(source, staged, pid),
                lambda: self.dd(source, local),
            )
            local.unlink()
        else:
            self.dd(source, staged, pid)
        if (got := staged.stat().st_size) != size:
            raise RuntimeError(f"{staged} has {got} bytes after dd, not {size}")
        if not set(rows.selected) & set("KL"):
            return

        # K: artfs commit vs curl -T of another file of the same size.
        committed: dict[str, Any] = {}

        def commit() -> Sample:
            sample, committed["upload"] = self.artfs_commit(artifact_dir, pid)
            return sample

        def curl_put() -> Sample:
            return self.timed(
                [
                    CURL, "-sS", "--fail", "-o", os.devnull, "-H", "Expect:",
                    "-H", "Content-Type: application/octet-stream",
                    "-T", str(curl_file), self.blob_url(digest_x),
                ],
                timeout=MOUNT_STEP_TIMEOUT,
            )[0]  # fmt: skip

        if "K" in rows.selected:
            both(run, rows.commit, commit, curl_put)
            rows.commit.uploads.append(committed["upload"])
            self.check_stored([digest, digest_x])
            curl_file.unlink()
        else:
            commit()
        upload = committed["upload"]
        if (upload["bytes"], upload["blobs"]) != (size, 1):
            raise RuntimeError(f"the first commit uploaded {upload}, not {size} bytes in 1")
        if "L" not in rows.selected:
            return

        # L1: stage --from the version K made, commit again.
        started = time.perf_counter()
        self.timed(
            [str(ARTFS), "stage", str(artifact_dir), "--from", upload["version"]],
            timeout=MOUNT_STEP_TIMEOUT,
        )
        rows.recommit_staged.stage_seconds.append(time.perf_counter() - started)
        sample, again = self.artfs_commit(artifact_dir, pid)
        rows.recommit_staged.artfs.append(sample)
        rows.recommit_staged.uploads.append(again)

        # L2: the same bytes written into .staging again, commit again.
        self.dd(source, staged, pid)
        sample, again = self.artfs_commit(artifact_dir, pid)
        rows.recommit_written.artfs.append(sample)
        rows.recommit_written.uploads.append(again)


def recorded_daemon_pid(records: Path, mountpoint: Path) -> int | None:
    """The pid in the mount daemon's record (``<state>/artfs/mounts/*.json``) of ``mountpoint``."""
    target = str(mountpoint.resolve())
    for record in records.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            found = json.loads(record.read_text())
            if found["mountpoint"] == target:
                return int(found["pid"])
    return None


def process_cpu(pid: int) -> float:
    """utime + stime of a live process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


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


def both(run: int, row: Row | MountRow, artfs: Any, reference: Any) -> None:
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


def leftover_cleanup(work: Path) -> list[str]:
    """Unmount whatever is still mounted under ``work`` and end its daemons (by pid)."""
    problems = []
    prefix = str(work) + os.sep
    with open("/proc/self/mounts") as mounts:
        stuck = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for path in stuck:
        subprocess.run([str(ARTFS), "umount", path], capture_output=True, timeout=60, check=False)
        subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True, check=False)
        problems.append(f"had to unmount {path}")
    for record in (work / "home" / "state" / "artfs" / "mounts").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(record.read_text())["pid"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                problems.append(f"had to stop mount daemon {pid}")
    return problems


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


def print_mount_results(
    rows: list[dict[str, Any]], fetch: dict[str, Any] | None, dropped: bool | None
) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def cpu(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def rate(value: float | None, unit: str) -> str:
        if value is None:
            return "-"
        return f"{value:.1f} {unit}" if unit == "MB/s" else f"{value:.0f} {unit}"

    if rows:
        print_table(
            ("row", "reference", "artfs s", "ref s", "artfs rate", "ref rate", "ratio"),
            [
                (
                    row["label"],
                    row["reference"] or "-",
                    seconds(row["artfs_seconds"]),
                    seconds(row["reference_seconds"]),
                    rate(row["artfs_rate"], row["unit"]),
                    rate(row["reference_rate"], row["unit"]),
                    "-" if row["ratio"] is None else f"{row['ratio']:.2f}",
                )
                for row in rows
            ],
        )
        print(
            "\nCPU seconds (medians): reader process, mount daemon and server during the "
            "artfs side; client and server during the reference side:"
        )
        print_table(
            ("row", "reader", "daemon", "server", "ref client", "ref server", "mount s"),
            [
                (
                    row["label"],
                    f"{row['artfs_cpu_seconds']['client']:.2f}",
                    f"{row['artfs_cpu_seconds']['daemon']:.2f}",
                    f"{row['artfs_cpu_seconds']['server']:.2f}",
                    cpu((row["reference_cpu_seconds"] or {}).get("client")),
                    cpu((row["reference_cpu_seconds"] or {}).get("server")),
                    seconds(row["mount_seconds"]),
                )
                for row in rows
            ],
        )
        print("(mount s = median time `artfs mount` took to return; not in the row's time)")
    if fetch is not None:
        if rows:
            print()
        print_table(
            (
                "row",
                "reads",
                "distinct chunks (ref)",
                "chunks fetched",
                "chunks/read",
                "fetched/read bytes",
                "ratio",
            ),
            [
                (
                    fetch["label"],
                    f"{fetch['reads']:.0f}",
                    f"{fetch['distinct_chunks']:.0f}",
                    f"{fetch['chunks_fetched']:.0f}",
                    f"{fetch['chunks_per_read']:.2f}",
                    f"{fetch['fetched_per_read_byte']:.1f}",
                    "-" if fetch["ratio"] is None else f"{fetch['ratio']:.2f}",
                )
            ],
        )
    if dropped is not None and any(row["row"] in ("G1", "G2") for row in rows):
        print(
            "(G: page, dentry and inode caches dropped before each side)"
            if dropped
            else "(G: drop_caches FAILED (not root?): the local side ran with warm caches)"
        )


def print_stage_results(rows: list[dict[str, Any]]) -> None:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def cpu(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} MB/s"

    def uploaded(row: dict[str, Any]) -> str:
        if "uploaded_bytes" not in row:
            return "-"
        found = f"{row['uploaded_bytes']:.0f} B"
        return found if row["uploaded_bytes_max"] == row["uploaded_bytes"] else found + " (max)"

    print_table(
        ("row", "reference", "artfs s", "ref s", "artfs rate", "ref rate", "ratio", "uploaded"),
        [
            (
                row["label"],
                row["reference"] or "-",
                seconds(row["artfs_seconds"]),
                seconds(row["reference_seconds"]),
                rate(row["artfs_rate"]),
                rate(row["reference_rate"]),
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}",
                uploaded(row),
            )
            for row in rows
        ],
    )
    print(
        "\nCPU seconds (medians): dd / artfs CLI process, mount daemon and server during the "
        "artfs side; client and server during the reference side:"
    )
    print_table(
        ("row", "client", "daemon", "server", "ref client", "ref server", "mount s"),
        [
            (
                row["label"],
                f"{row['artfs_cpu_seconds']['client']:.2f}",
                f"{row['artfs_cpu_seconds']['daemon']:.2f}",
                f"{row['artfs_cpu_seconds']['server']:.2f}",
                cpu((row["reference_cpu_seconds"] or {}).get("client")),
                cpu((row["reference_cpu_seconds"] or {}).get("server")),
                seconds(row["mount_seconds"]),
            )
            for row in rows
        ],
    )
    print(
        "(uploaded = median bytes the commit uploaded, from its stderr; mount s = median time "
        "`artfs mount` took to return, not in any row)"
    )
    for row in rows:
        if "stage_seconds" in row:
            print(
                f"({row['row']}: `artfs stage --from` took {row['stage_seconds']:.3f}s, not in it)"
            )
        if row["row"].startswith("L") and row.get("uploaded_bytes_max"):
            print(
                f"WARNING: {row['row']} re-committed unchanged content and uploaded "
                f"{[upload['bytes'] for upload in row['uploads']]} bytes (should be 0)"
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


def parse_rows(text: str) -> str:
    """``push,pull,mount`` / letters -> the selected row letters, in order."""
    chosen: set[str] = set()
    for token in (part.strip() for part in text.split(",")):
        if token.lower() in GROUPS:
            chosen |= set(GROUPS[token.lower()])
        elif len(token) == 1 and token.upper() in ALL_ROWS:
            chosen.add(token.upper())
        else:
            raise argparse.ArgumentTypeError(
                f"{token!r} is not a row group ({', '.join(GROUPS)}) or a row letter A-L"
            )
    return "".join(letter for letter in ALL_ROWS if letter in chosen)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=(
            "artfs push/pull vs curl and the mount vs curl / local disk, against one local "
            "artfs serve (method: see the docstring of scripts/bench.py)."
        ),
    )
    parser.add_argument(
        "--rows",
        type=parse_rows,
        default=ALL_ROWS,
        metavar="LIST",
        help="comma-separated groups push (A,C), pull (B,D), mount (E-I), stage (J-L) "
        "and/or row letters (default: all)",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="big file size (default 1024)")
    parser.add_argument(
        "--small-files", type=int, default=10_000, help="number of 4 KiB files (default 10000)"
    )
    parser.add_argument(
        "--many-files",
        type=int,
        default=100_000,
        help="files in the version of row H (default 100000)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported (3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = parser.parse_args(argv)
    if min(args.size_mib, args.small_files, args.many_files, args.runs) < 1:
        parser.error("--size-mib, --small-files, --many-files and --runs must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not ARTFS.exists():
        sys.exit(f"bench: {ARTFS} not found; run scripts/setup first")
    sys.path.insert(0, str(ROOT))
    from tests.support.registry import RegistryProcess

    selected: str = args.rows
    size = args.size_mib << 20
    big_label, small_label = f"{args.size_mib} MiB", f"{args.small_files} x 4 KiB"
    rows = {
        "A": Row("A", f"A push {big_label}", size),
        "B": Row("B", f"B pull {big_label}", size),
        "C": Row("C", f"C push {small_label}", args.small_files * SMALL_SIZE),
        "D": Row("D", f"D pull {small_label}", args.small_files * SMALL_SIZE),
    }
    mount_rows = MountRows(
        cold=MountRow("E", f"E cold read {big_label}", size, "MB/s", "curl -o /dev/null"),
        warm=MountRow("F", f"F warm re-read {big_label}", size, "MB/s", "cat local copy"),
        listing=MountRow(
            "G1", f"G ls -lR {args.small_files} files", args.small_files, "files/s", "local"
        ),
        small_read=MountRow(
            "G2",
            f"G find|xargs cat {small_label}",
            args.small_files * SMALL_SIZE,
            "MB/s",
            "local",
        ),
        first_byte=MountRow("H", f"H first byte, {args.many_files} files", 1, "", ""),
        random_reads=FetchRow("I", f"I {RANDOM_READS} x pread 4 KiB, {big_label}, FADV_RANDOM"),
        selected=selected,
    )
    stage_rows = StageRows(
        write=StageRow("J", f"J dd {big_label} into .staging", size, "MB/s", "dd local + fsync"),
        commit=StageRow("K", f"K artfs commit {big_label}", size, "MB/s", "curl -T PUT"),
        recommit_staged=StageRow("L1", "L1 re-commit after stage --from", size, ""),
        recommit_written=StageRow("L2", f"L2 re-commit, {big_label} re-written", size, ""),
        selected=selected,
    )
    work = Path(tempfile.mkdtemp(prefix="artfs-bench-"))
    # Per-user state (the mount daemons' pid records and logs, the CLI's chunk cache,
    # any config) lives under the bench's temporary directory, for this process, the
    # CLI it runs and the mount helpers of tests/support alike.
    saved_env = dict(os.environ)
    os.environ.update({f"XDG_{kind}_HOME": str(work / "home" / kind.lower()) for kind in XDG_KINDS})
    os.environ.pop("ARTFS_TOKEN", None)
    server = RegistryProcess(work / "registry")
    leftovers: list[str] = []
    dropped: bool | None = None
    try:
        version_at_start = code_version()
        server.start()
        assert server.process is not None
        bench = Bench(work, server.url, server.process.pid)
        cli_start = bench.cli_start()
        data = None
        if set(selected) & set(GROUPS["mount"]):
            started = time.perf_counter()
            data = bench.mount_data(size, args.small_files, args.many_files)
            print(
                f"mount rows: versions created in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
        for run in range(args.runs):
            started = time.perf_counter()
            if "A" in selected or "B" in selected:
                bench.big(
                    run,
                    size,
                    rows["A"] if "A" in selected else None,
                    rows["B"] if "B" in selected else None,
                )
            if "C" in selected or "D" in selected:
                bench.small(
                    run,
                    args.small_files,
                    rows["C"] if "C" in selected else None,
                    rows["D"] if "D" in selected else None,
                )
            if data is not None:
                bench.mount_run(run, data, mount_rows)
            if set(selected) & set(GROUPS["stage"]):
                bench.stage_run(run, size, stage_rows)
            print(
                f"run {run + 1}/{args.runs} done in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
        dropped = bench.dropped_caches
        bench.http.close()
    finally:
        leftovers = leftover_cleanup(work)
        server.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        if not leftovers:
            shutil.rmtree(work, ignore_errors=True)
    for problem in leftovers:
        print(f"WARNING: {problem}; {work} kept", file=sys.stderr)

    results = [rows[key].summary() for key in "ABCD" if key in selected]
    mount_results = [row.summary() for row in mount_rows.timed_rows()]
    fetch = mount_rows.random_reads.summary() if "I" in selected else None
    stage_results = [row.summary() for row in stage_rows.timed_rows()]
    commit = code_version()
    if commit != version_at_start:
        print(f"WARNING: artfs/ changed during the run ({version_at_start} -> {commit})")
        commit = f"{version_at_start}..{commit}"
    if results:
        print(
            f"artfs {commit} vs curl on one local `artfs serve`; median of {args.runs} run(s); "
            f"MB = 10^6 bytes; ratio = artfs MB/s / curl MB/s"
        )
        print_results(results)
        print(f"(artfs CLI start, `artfs --version`: {cli_start:.2f}s, included in artfs seconds)")
    if mount_results or fetch:
        if results:
            print()
        print(
            f"artfs {commit} mount vs reference; median of {args.runs} run(s); MB = 10^6 bytes; "
            "ratio = artfs rate / reference rate (I: distinct chunks / chunks fetched)"
        )
        print_mount_results(mount_results, fetch, dropped)
    if stage_results:
        if results or mount_results or fetch:
            print()
        print(
            f"artfs {commit} staging and commit vs reference; median of {args.runs} run(s); "
            "MB = 10^6 bytes; ratio = artfs MB/s / reference MB/s; L has no reference"
        )
        print_stage_results(stage_results)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "method": (__doc__ or "").strip(),
                    "commit": commit,
                    "parameters": {
                        "rows": selected,
                        "size_mib": args.size_mib,
                        "small_files": args.small_files,
                        "small_file_bytes": SMALL_SIZE,
                        "many_files": args.many_files,
                        "runs": args.runs,
                        "parallel": PARALLEL,
                        "random_reads": RANDOM_READS,
                        "random_read_bytes": RANDOM_READ,
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
                    "caches_dropped_for_g": dropped,
                    "rows": results + mount_results + ([fetch] if fetch else []) + stage_results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
