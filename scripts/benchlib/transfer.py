"""Rows A-D: ``artfs push`` / ``artfs pull`` of one big file and of many small files vs curl
moving the same bytes through the same registry (method: the docstring of scripts/bench.py)."""

# The table is Markdown for the README: it writes the multiplication sign for "times".
# ruff: noqa: RUF001

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib.harness import (
    ARTFS,
    CURL,
    SMALL_SIZE,
    Harness,
    Sample,
    authorization,
    both,
    file_name,
    write_pattern,
    write_small_files,
)

#: curl transfers at once in rows C and D (artfs uses as many workers).
PARALLEL = 8


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
        "daemon": statistics.median(sample.daemon_cpu for sample in samples),
    }


class Transfer:
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.work = harness.work

    def timed(self, argv: list[str]) -> tuple[Sample, str]:
        return self.h.timed(argv)

    def artfs_push(self, name: str, path: Path) -> tuple[Sample, str]:
        return self.h.artfs_push(name, path)

    def artfs_pull(self, ref: str, dest: Path) -> Sample:
        return self.h.timed([str(ARTFS), "pull", ref, str(dest)])[0]

    def pending_upload(self, name: str, entries: list[dict[str, Any]]) -> str:
        return self.h.pending_upload(name, entries)

    def check_stored(self, digests: list[str]) -> None:
        self.h.check_stored(digests)

    def blob_url(self, digest: str) -> str:
        return self.h.blob_url(digest)

    def curl_many(self, config_lines: list[str], config: Path, auth: Sequence[str] = ()) -> Sample:
        """The transfers of ``config_lines``, ``PARALLEL`` at once; ``auth``: curl's options
        that sign them (default: the registry's token)."""
        config.write_text("\n".join(config_lines) + "\n")
        return self.timed(
            [
                CURL,
                "-sS",
                "--fail",
                # On the command line, they go with every transfer of the config.
                *(auth or ["-H", authorization()]),
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
        digest_y = write_pattern(file_y, size, b"pull%d" % run)
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
            digest_x = write_pattern(file_x, size, b"push%d" % run)
            self.pending_upload(
                f"curl-big-{run}", [{"path": "x.bin", "size": size, "digest": digest_x}]
            )

            record(run, push, artfs_push, lambda: self.h.curl_put(file_x, digest_x))
            self.check_stored([digest_x])
            file_x.unlink()

        if pull is not None:
            file_y.unlink()
            artfs_dest, curl_dest = here / "pull-artfs", here / "pull-curl"
            curl_dest.mkdir()

            def curl_get() -> Sample:
                get = [CURL, "-sS", "--fail", "-H", authorization(), "-o", str(curl_dest / "y.bin")]
                return self.timed([*get, self.blob_url(digest_y)])[0]

            record(run, pull, lambda: self.artfs_pull(f"{name}:{version}", artfs_dest), curl_get)
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
            record(run, push, artfs_push, lambda: self.curl_many(put_config, here / "put.curl"))
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
            record(
                run,
                pull,
                lambda: self.artfs_pull(f"{name}:{version}", artfs_dest),
                lambda: self.curl_many(get_config, here / "get.curl"),
            )
            for dest in (artfs_dest, curl_dest):
                got = sorted(dest.iterdir())
                if len(got) != count or any(path.stat().st_size != SMALL_SIZE for path in got):
                    raise RuntimeError(f"{dest} does not hold {count} files of {SMALL_SIZE} bytes")
        # ``here`` (up to 40,000 small files) stays until the work directory goes:
        # on ext4 without a journal every create scans past the inodes deleted in
        # the last 1-6 minutes (``recently_deleted``), so deleting it here made the
        # next run's creates (rows 10, C, D) up to twice as slow.


def record(
    run: int, row: Row, artfs: Callable[[], Sample], reference: Callable[[], Sample]
) -> None:
    """Both sides of a row, in alternating order, into the row's samples."""
    artfs_sample, reference_sample = both(run, artfs, reference)
    row.artfs.append(artfs_sample)
    row.reference.append(reference_sample)


def markdown(rows: list[dict[str, Any]]) -> str:
    """Rows A-D as Markdown, with the CPU seconds of both sides."""
    lines = [
        "| row | artfs | curl | ratio | artfs CPU client / server | curl CPU client / server |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        artfs_cpu, curl_cpu = row["artfs_cpu_seconds"], row["reference_cpu_seconds"]
        lines.append(
            f"| {row['label']} | {row['artfs_mb_per_s']:.1f} MB/s ({row['artfs_seconds']:.2f} s) "
            f"| {row['reference_mb_per_s']:.1f} MB/s ({row['reference_seconds']:.2f} s) "
            f"| {row['ratio']:.2f}× | {artfs_cpu['client']:.2f} / {artfs_cpu['server']:.2f} s "
            f"| {curl_cpu['client']:.2f} / {curl_cpu['server']:.2f} s |"
        )
    return "\n".join(lines)
