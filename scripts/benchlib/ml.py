"""Rows 15-20: ML loaders through the mount vs the same loader on a local copy (method: the
docstring of scripts/bench.py). The loaders run in probes of the venv's Python that time
the load inside (imports are not timed); the optional packages are installed on demand."""

# The table is Markdown for the README: it writes the multiplication sign for "times".
# ruff: noqa: RUF001

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from artfs.cache.ondisk import ChunkPlace
from artfs.digests import CHUNK_SIZE
from benchlib.harness import Harness, MiB, Sample, both, pattern_blocks
from benchlib.report import TableRow

#: Packages each row needs (pip requirement strings), installed into the venv on demand.
#: torch 2.13.0 is a local wheel on the project's machines (CPU here, CUDA on GPU hosts).
TORCH = "torch==2.13.0"
NEEDS = {
    "15": ["safetensors", TORCH],
    "16": ["safetensors", TORCH],
    "17": [TORCH],
    "18": [TORCH],
    "19": [TORCH],
    "20": ["pyarrow"],
}
ALL = list(NEEDS)
#: Rows 15-16: tensors in the safetensors file (as the issue's 4 GiB model: 194).
LARGE_TENSORS = 130
SMALL_TENSORS = 64
HIDDEN = 4096
#: Row 17: tensors in the torch checkpoint.
CHECKPOINT_TENSORS = 100
#: Rows 18-19: file sizes, bytes (uniform, seeded), and the batch size.
LOADER_MIN = 100 << 10
LOADER_MAX = 1 << 20
LOADER_BATCH = 16
#: Row 20: columns in the file and the two read.
PARQUET_COLUMNS = 20
PARQUET_READ = ("c03", "c11")

#: Rows 15-16: load_file, every tensor in memory (on ``device``), timed inside. On the CPU
#: load_file returns tensors over an mmap of the file and reads nothing: each is cloned, as
#: a copy to the GPU would read it.
PROBE_SAFETENSORS = """
import json, sys, time
import torch
from safetensors.torch import load_file
path, device = sys.argv[1], sys.argv[2]
start = time.perf_counter()
tensors = load_file(path, device=device)
if device == "cpu":
    tensors = {name: t.clone() for name, t in tensors.items()}
if device.startswith("cuda"):
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
total = sum(t.numel() * t.element_size() for t in tensors.values())
print(json.dumps({"seconds": seconds, "tensors": len(tensors), "bytes": total}))
"""

#: Row 17: torch.load(mmap=True), then every tensor copied (to ``device``), timed inside:
#: with mmap the load itself only maps the file; the copy is what faults the bytes in.
PROBE_TORCH_LOAD = """
import json, sys, time
import torch
path, device = sys.argv[1], sys.argv[2]
start = time.perf_counter()
state = torch.load(path, mmap=True, weights_only=True)
copies = [t.to(device, copy=True) for t in state.values()]
if device.startswith("cuda"):
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
total = sum(t.numel() * t.element_size() for t in copies)
print(json.dumps({"seconds": seconds, "tensors": len(copies), "bytes": total}))
"""

#: Row 17's data: a checkpoint of ``count`` float16 tensors made from a pattern file's bytes.
MAKE_CHECKPOINT = """
import sys
import torch
source, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(source, "rb").read())
step = len(data) // count // 8192 * 8192
flat = torch.frombuffer(data, dtype=torch.float16)
state = {f"layer{i:03d}.weight": flat[i * step // 2 : (i + 1) * step // 2].reshape(-1, 4096).clone()
         for i in range(count)}
torch.save(state, target)
"""

#: Rows 18-19: one epoch cold, then a second, of a DataLoader reading every file whole.
PROBE_LOADER = """
import json, os, sys, time
import torch
from torch.utils.data import DataLoader, Dataset
root, workers, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
daemon = int(sys.argv[4])  # the mount daemon's pid; 0 on the local side

def daemon_cpu():
    if not daemon:
        return 0.0
    with open(f"/proc/{daemon}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

class Files(Dataset):
    def __init__(self, root):
        self.paths = sorted(os.path.join(root, name) for name in os.listdir(root))
    def __len__(self):
        return len(self.paths)
    def __getitem__(self, index):
        with open(self.paths[index], "rb") as stream:
            return torch.frombuffer(bytearray(stream.read()), dtype=torch.uint8)

def sizes(batch):
    return sum(t.numel() for t in batch)

def epoch():
    loader = DataLoader(Files(root), batch_size=batch, num_workers=workers, collate_fn=sizes,
                        shuffle=True, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    total = sum(loader)
    return time.perf_counter() - start, total

first, first_bytes = epoch()
before = daemon_cpu()
second, second_bytes = epoch()
print(json.dumps({"first": first, "second": second, "bytes": [first_bytes, second_bytes],
                  "second_daemon_cpu": daemon_cpu() - before}))
"""

#: Row 20's data: ``columns`` int64 columns of random values, uncompressed.
MAKE_PARQUET = """
import sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
target, size, columns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = size // (8 * columns)
group = 1 << 20
rng = np.random.default_rng(19)
names = [f"c{i:02d}" for i in range(columns)]
schema = pa.schema([(name, pa.int64()) for name in names])
with pq.ParquetWriter(target, schema, compression="none") as writer:
    for start in range(0, rows, group):
        n = min(group, rows - start)
        arrays = [pa.array(rng.integers(0, 2**62, n)) for _ in names]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=group)
"""

#: Row 20: read_table of two columns, timed inside; the bytes of those column chunks.
PROBE_PARQUET = """
import hashlib, json, sys, time
import pyarrow.parquet as pq
path, columns = sys.argv[1], sys.argv[2].split(",")
start = time.perf_counter()
table = pq.read_table(path, columns=columns)
seconds = time.perf_counter() - start
hasher = hashlib.sha256()
for column in table.columns:
    for chunk in column.chunks:
        hasher.update(chunk.buffers()[1])
meta = pq.ParquetFile(path).metadata
read = [
    meta.row_group(g).column(c)
    for g in range(meta.num_row_groups)
    for c in range(meta.num_columns)
    if meta.row_group(g).column(c).path_in_schema in columns
]
ranges = [
    [min(o for o in (c.dictionary_page_offset, c.data_page_offset) if o is not None),
     c.total_compressed_size]
    for c in read
]
print(json.dumps({"seconds": seconds, "rows": table.num_rows, "sha256": hasher.hexdigest(),
                  "column_bytes": sum(c.total_compressed_size for c in read),
                  "column_ranges": ranges, "file_bytes": meta.serialized_size}))
"""


@dataclass(frozen=True)
class MlSizes:
    model: int  # rows 15-16 (bytes)
    checkpoint: int  # row 17 (bytes)
    loader_files: int  # rows 18-19
    loader_workers: int  # rows 18-19
    parquet: int  # row 20 (bytes)
    device: str  # where rows 15-17 load to


def ml_rows(sizes: MlSizes) -> dict[str, TableRow]:
    model = f"{sizes.model / (1 << 30):g} GiB, {LARGE_TENSORS + SMALL_TENSORS} tensors"
    files = f"{sizes.loader_workers} workers, {sizes.loader_files:,} files of 100 KiB–1 MiB"
    to = "" if sizes.device == "cpu" else f" to {sizes.device}"
    return {
        row.key: row
        for row in [
            TableRow("15", f"safetensors `load_file`{to}, {model}, cold", "local copy, cold", "s", "ratio <=", 1.2, "≤ 1.2× time"),  # noqa: E501
            TableRow("16", f"safetensors `load_file`{to}, {model}, page cache warm", "local copy, warm", "s", "ratio <=", 1.2, "≤ 1.2× time"),  # noqa: E501
            TableRow("17", f"`torch.load(mmap=True)`{to} + copy of every tensor, {sizes.checkpoint / (1 << 30):g} GiB, cold", "local copy, cold", "s", "ratio <=", 1.3, "≤ 1.3× time"),  # noqa: E501
            TableRow("18", f"`DataLoader`, {files}, first epoch, cold", "local copy, cold", "s", "ratio <=", 1.5, "≤ 1.5× time"),  # noqa: E501
            TableRow("19", f"`DataLoader`, {files}, second epoch", "local copy, second epoch", "s", "ratio <=", 1.1, "≤ 1.1× time"),  # noqa: E501
            TableRow("20", f"`pq.read_table(columns=[2 of {PARQUET_COLUMNS}])`, {sizes.parquet / (1 << 30):g} GiB, cold: bytes fetched", "bytes of those column chunks", "MiB", "ratio <=", 1.5, "≤ 1.5× bytes"),  # noqa: E501
        ]
    }  # fmt: skip


def install(rows: set[str]) -> dict[str, str]:
    """``pip install`` what the selected rows need into this venv; returns row -> the reason
    it must be skipped ("needs torch") for the rows whose packages did not install."""
    skipped: dict[str, str] = {}
    wanted = sorted({package for key in rows for package in NEEDS[key]})
    for package in wanted:
        name = package.split("=")[0]
        if _importable(name):
            continue
        print(f"bench: installing {package} into {sys.prefix}", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not _importable(name):
            print(f"bench: {package} did not install:\n{done.stderr[-1500:]}", file=sys.stderr)
            for key in rows:
                if package in NEEDS[key]:
                    skipped[key] = f"needs {name}"
    return skipped


def _importable(module: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, check=False
    )
    return done.returncode == 0


@dataclass
class MlData:
    model: Path = Path()
    model_ref: str = ""
    checkpoint: Path = Path()
    checkpoint_ref: str = ""
    loader_dir: Path = Path()
    loader_ref: str = ""
    loader_bytes: int = 0
    parquet: Path = Path()
    parquet_ref: str = ""
    made: dict[str, float] = field(default_factory=dict)


def write_safetensors(path: Path, size: int) -> int:
    """A safetensors file of about ``size`` bytes, written by hand (8-byte header length,
    JSON header, then the data), with the pattern's bytes: 130 float16 matrices of
    (rows, 4096) and 64 float32 vectors of 4096, as a transformer's weights and norms."""
    small = HIDDEN * 4
    rows = max(1, (size - SMALL_TENSORS * small) // LARGE_TENSORS // (HIDDEN * 2))
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for i in range(LARGE_TENSORS + SMALL_TENSORS):
        if i % 3 == 2 and i // 3 < SMALL_TENSORS:
            entry = {"dtype": "F32", "shape": [HIDDEN], "length": small}
        else:
            entry = {"dtype": "F16", "shape": [rows, HIDDEN], "length": rows * HIDDEN * 2}
        length = int(str(entry.pop("length")))
        header[f"layers.{i:03d}"] = {**entry, "data_offsets": [offset, offset + length]}
        offset += length
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(len(encoded).to_bytes(8, "little"))
        out.write(encoded)
        left = offset
        for block in pattern_blocks(offset, b"safetensors"):
            out.write(block[:left])
            left -= len(block)
    return 8 + len(encoded) + offset


def write_loader_files(directory: Path, count: int) -> int:
    """``count`` files of 100 KiB-1 MiB (seeded sizes), each distinct; returns their bytes."""
    directory.mkdir(parents=True)
    rng = random.Random(19)
    total = 0
    for i in range(count):
        size = rng.randrange(LOADER_MIN, LOADER_MAX + 1)
        block = next(pattern_blocks(size, b"loader%d" % i))
        (directory / f"sample{i:06d}.bin").write_bytes(block)
        total += size
    return total


class MlBench:
    def __init__(
        self, harness: Harness, sizes: MlSizes, rows: dict[str, TableRow], selected: set[str]
    ) -> None:
        self.h = harness
        self.sizes = sizes
        self.rows = rows
        self.selected = selected
        self.data = MlData()

    def python(self, script: str, *args: object) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-c", script, *map(str, args)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"probe exited {done.returncode}:\n{done.stderr[-2000:]}")
        return dict(json.loads(done.stdout.splitlines()[-1])) if done.stdout.strip() else {}

    def prepare(self) -> None:
        """Create and push what the selected rows read (untimed)."""
        src, d, s = self.h.work / "ml-src", self.data, self.sizes
        src.mkdir()

        def push(name: str, path: Path) -> str:
            _, version = self.h.artfs_push(name, path)
            return f"{name}/{version}/{path.name}" if path.is_file() else f"{name}/{version}"

        def made(what: str, step: Callable[[], None]) -> None:
            started = time.perf_counter()
            step()
            d.made[what] = time.perf_counter() - started
            print(f"  {what} created in {d.made[what]:.1f}s", file=sys.stderr)

        if self.selected & {"15", "16"}:
            d.model = src / "model.safetensors"

            def model() -> None:
                write_safetensors(d.model, s.model)
                d.model_ref = push("bench-safetensors", d.model)

            made("bench-safetensors", model)
        if "17" in self.selected:
            d.checkpoint = src / "checkpoint.pt"

            def checkpoint() -> None:
                raw = src / "checkpoint.raw"
                with open(raw, "wb") as out:
                    for block in pattern_blocks(s.checkpoint, b"checkpoint"):
                        out.write(block)
                self.python(MAKE_CHECKPOINT, raw, d.checkpoint, CHECKPOINT_TENSORS)
                raw.unlink()
                d.checkpoint_ref = push("bench-checkpoint", d.checkpoint)

            made("bench-checkpoint", checkpoint)
        if self.selected & {"18", "19"}:
            d.loader_dir = src / "samples"

            def loader() -> None:
                d.loader_bytes = write_loader_files(d.loader_dir, s.loader_files)
                d.loader_ref = push("bench-samples", d.loader_dir)

            made("bench-samples", loader)
        if "20" in self.selected:
            d.parquet = src / "table.parquet"

            def parquet() -> None:
                self.python(MAKE_PARQUET, d.parquet, s.parquet, PARQUET_COLUMNS)
                d.parquet_ref = push("bench-parquet", d.parquet)

            made("bench-parquet", parquet)

    def run(self, run: int) -> None:
        steps: list[tuple[set[str], Callable[[int], None]]] = [
            ({"15", "16"}, self.safetensors),
            ({"17"}, self.torch_load),
            ({"18", "19"}, self.loader),
            ({"20"}, self.parquet),
        ]
        for keys, step in steps:
            if keys & self.selected:
                started = time.perf_counter()
                step(run)
                print(
                    f"  rows {','.join(sorted(keys & self.selected, key=int))}: "
                    f"{time.perf_counter() - started:.1f}s",
                    file=sys.stderr,
                )

    def probe(
        self, script: str, *args: object, daemon_pid: int | None = None
    ) -> tuple[Sample, dict[str, object]]:
        sample, out = self.h.timed(
            [sys.executable, "-c", script, *map(str, args)], daemon_pid=daemon_pid
        )
        return sample, dict(json.loads(out.splitlines()[-1]))

    def _cold_pair(
        self,
        run: int,
        ref: str,
        local: Path,
        on_mount: Callable[[Path, int], dict[str, object]],
        on_disk: Callable[[Path], dict[str, object]],
    ) -> tuple[dict[str, object], dict[str, object]]:
        """One fresh mount (dropped) and the local copy (dropped), first side alternating."""

        def mounted() -> dict[str, object]:
            self.h.drop_caches()
            with self.h.fresh_mount() as mount:
                return on_mount(mount.path / ref, mount.daemon_pid())

        def local_side() -> dict[str, object]:
            self.h.drop_caches()
            return on_disk(local)

        return both(run, mounted, local_side)

    def safetensors(self, run: int) -> None:
        """Rows 15-16: load_file on a fresh mount, dropped, then again (page cache warm)."""
        cold, warm = self.rows["15"], self.rows["16"]
        d, device = self.data, self.sizes.device

        def load(path: Path, pid: int | None = None) -> dict[str, object]:
            sample, out = self.probe(PROBE_SAFETENSORS, path, device, daemon_pid=pid)
            out["daemon_cpu"] = sample.daemon_cpu
            return out

        def twice(path: Path, pid: int | None = None) -> dict[str, object]:
            first = load(path, pid)
            if "16" in self.selected:
                first["again"] = load(path, pid)
            return first

        m, local = self._cold_pair(run, d.model_ref, d.model, twice, twice)
        for out in (m, local):
            if out["tensors"] != LARGE_TENSORS + SMALL_TENSORS:
                raise RuntimeError(f"load_file returned {out['tensors']} tensors")
        cold.artfs.append(float(str(m["seconds"])))
        cold.ref.append(float(str(local["seconds"])))
        cold.details.setdefault("artfs_daemon_cpu", []).append(m["daemon_cpu"])
        if "16" in self.selected:
            m_again, local_again = m["again"], local["again"]
            assert isinstance(m_again, dict)
            assert isinstance(local_again, dict)
            warm.artfs.append(float(m_again["seconds"]))
            warm.ref.append(float(local_again["seconds"]))

    def torch_load(self, run: int) -> None:
        """Row 17: torch.load(mmap=True) + a copy of every tensor, fresh mount vs local, cold."""
        row, device = self.rows["17"], self.sizes.device

        def load(path: Path, pid: int | None = None) -> dict[str, object]:
            sample, out = self.probe(PROBE_TORCH_LOAD, path, device, daemon_pid=pid)
            out["daemon_cpu"] = sample.daemon_cpu
            return out

        m, local = self._cold_pair(run, self.data.checkpoint_ref, self.data.checkpoint, load, load)
        if m["bytes"] != local["bytes"] or m["tensors"] != CHECKPOINT_TENSORS:
            raise RuntimeError(f"torch.load through the mount: {m}, local: {local}")
        row.artfs.append(float(str(m["seconds"])))
        row.ref.append(float(str(local["seconds"])))
        row.details.setdefault("artfs_daemon_cpu", []).append(m["daemon_cpu"])

    def loader(self, run: int) -> None:
        """Rows 18-19: a DataLoader epoch, fresh mount (dropped), then a second epoch."""
        cold, second = self.rows["18"], self.rows["19"]
        d, workers = self.data, self.sizes.loader_workers

        def epochs(path: Path, pid: int | None = None) -> dict[str, object]:
            sample, out = self.probe(
                PROBE_LOADER, path, workers, LOADER_BATCH, pid or 0, daemon_pid=pid
            )
            if out["bytes"] != [d.loader_bytes, d.loader_bytes]:
                raise RuntimeError(f"the DataLoader read {out['bytes']}, not {d.loader_bytes}")
            out["daemon_cpu"] = sample.daemon_cpu
            return out

        m, local = self._cold_pair(run, d.loader_ref, d.loader_dir, epochs, epochs)
        cold.artfs.append(float(str(m["first"])))
        cold.ref.append(float(str(local["first"])))
        second.artfs.append(float(str(m["second"])))
        second.ref.append(float(str(local["second"])))
        cold.details.setdefault("artfs_daemon_cpu", []).append(m["daemon_cpu"])
        second.details.setdefault("artfs_daemon_cpu", []).append(m["second_daemon_cpu"])

    def parquet(self, run: int) -> None:
        """Row 20: read_table of 2 columns on a fresh mount: bytes fetched vs column bytes."""
        row = self.rows["20"]
        columns = ",".join(PARQUET_READ)

        def mounted() -> dict[str, object]:
            self.h.drop_caches()
            with self.h.fresh_mount() as mount:
                sample, out = self.probe(
                    PROBE_PARQUET, mount.path / self.data.parquet_ref, columns,
                    daemon_pid=mount.daemon_pid(),
                )  # fmt: skip
                time.sleep(0.5)  # let any read-ahead the reads triggered land
                out["fetched"] = mount.cached_bytes()
                out["fetched_outside"] = _outside(mount.chunks(), out["column_ranges"])
                out["daemon_cpu"] = sample.daemon_cpu
            return out

        def local() -> dict[str, object]:
            self.h.drop_caches()
            return self.probe(PROBE_PARQUET, self.data.parquet, columns)[1]

        m, on_disk = both(run, mounted, local)
        if m["sha256"] != on_disk["sha256"] or m["rows"] != on_disk["rows"]:
            raise RuntimeError("read_table through the mount returned other values")
        row.artfs.append(int(str(m["fetched"])) / MiB)
        row.ref.append(int(str(m["column_bytes"])) / MiB)
        row.details.setdefault("artfs_seconds", []).append(m["seconds"])
        row.details.setdefault("local_seconds", []).append(on_disk["seconds"])
        row.details.setdefault("artfs_daemon_cpu", []).append(m["daemon_cpu"])
        row.details.setdefault("fetched_outside_mib", []).append(
            int(str(m["fetched_outside"])) / MiB
        )

    def cleanup(self) -> None:
        shutil.rmtree(self.h.work / "ml-src", ignore_errors=True)


def _outside(cached: dict[tuple[str, int], ChunkPlace], ranges: object) -> int:
    """Bytes of the cached chunks (of the one blob read) that hold no byte of ``ranges``
    (``[offset, length]`` pairs): what was fetched beyond the chunks the reader needed."""
    assert isinstance(ranges, list)
    needed = {
        index
        for offset, length in ranges
        for index in range(offset // CHUNK_SIZE, (offset + length - 1) // CHUNK_SIZE + 1)
    }
    return sum(place.size for (_, index), place in cached.items() if index not in needed)


def default_loader_workers() -> int:
    """8 as in the issue, 4 on a machine of fewer than 8 cores (2 workers per core)."""
    return 8 if (os.cpu_count() or 1) >= 8 else 4
