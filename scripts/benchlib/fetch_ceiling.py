"""The mount's fetch path alone, without FUSE: how fast can a cold read possibly go here?

Run as a program by ``scripts/bench`` (with row 1; context of rows 1 and 2), so that its
CPU time is its own:

    python fetch_ceiling.py URL PROJECT DIGEST CACHE_DIR STEPS

It reads one blob from the registry the way the mount's fetcher does
(``RangeReader``: ranged GETs of ``REQUEST_BYTES`` on ``THREADS`` worker
threads, each chunk received straight into a chunk buffer), and goes as far as
``STEPS`` says: ``receive`` only, ``verify`` (each chunk hashed against the
blob's chunk list, as the mount does) or ``store`` (verified chunks kept in a
fresh ``ChunkCache`` under ``CACHE_DIR``, one pack per request, as the mount
does, each then taken from the cache's memory as a sequential reader takes
it). There is no trio loop and no FUSE. Prints one JSON line:
``{"seconds": ..., "cpu": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.client.http import RegistryClient
from artfs.client.ranged import RangeReader
from artfs.config import ClientConfig
from artfs.fetch.fetcher import layout_from_answer

THREADS = 4
REQUEST_BYTES = 8 << 20
STEPS = ("receive", "verify", "store")


def read_blob(config: ClientConfig, layout: ChunkLayout, cache: ChunkCache, steps: str) -> None:
    ranges = RangeReader(config)
    per_request = REQUEST_BYTES // layout.chunk_size
    runs = [
        range(start, min(start + per_request, layout.chunk_count))
        for start in range(0, layout.chunk_count, per_request)
    ]
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            for _ in pool.map(lambda run: fetch_run(ranges, layout, cache, run, steps), runs):
                pass
    finally:
        ranges.close()


def fetch_run(
    ranges: RangeReader, layout: ChunkLayout, cache: ChunkCache, indexes: range, steps: str
) -> None:
    start = indexes.start * layout.chunk_size
    end = min(indexes.stop * layout.chunk_size, layout.size)
    with ranges.open(layout.digest, start, end) as body:
        if steps != "store":
            buffer = cache.new_buffer(layout.chunk_size)
            for index in indexes:
                view = memoryview(buffer)[: layout.chunk_length(index)]
                if not body.read_into(view):
                    raise RuntimeError(f"blob ended early at chunk {index}")
                if steps == "verify" and not layout.verify(index, view):
                    raise RuntimeError(f"chunk {index} failed verification")
            return
        with cache.storing_run(layout, indexes) as store:
            for index in indexes:
                chunk = cache.new_buffer(layout.chunk_length(index))
                if not body.read_into(memoryview(chunk)):
                    raise RuntimeError(f"blob ended early at chunk {index}")
                if not layout.verify(index, chunk):
                    raise RuntimeError(f"chunk {index} failed verification")
                store(index, chunk)
                # Taken at once, as a sequential reader of the mount takes it:
                # the cache then lets go of the buffer and reuses it.
                if cache.read_ready(layout, index, 0, len(chunk)) is None:
                    raise RuntimeError(f"chunk {index} is not readable once stored")


def main(argv: list[str]) -> None:
    url, project, digest, cache_dir, steps = argv
    if steps not in STEPS:
        raise SystemExit(f"STEPS must be one of {', '.join(STEPS)}, not {steps!r}")
    # The bench's registry asks for a token (the harness sets ARTFS_TOKEN for its children).
    config = ClientConfig(url=url, project=project, token=os.environ.get("ARTFS_TOKEN"))
    layout = layout_from_answer(digest, RegistryClient(config).blob_chunks(digest))
    cache = ChunkCache(Path(cache_dir), max_bytes=2 * layout.size)
    started, cpu = time.perf_counter(), time.process_time()
    read_blob(config, layout, cache, steps)
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}))


if __name__ == "__main__":
    main(sys.argv[1:])
