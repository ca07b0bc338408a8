"""A fetch worker process: ``python -m artfs.fetch.worker_main SOCKET_FD``.

Started by the mount daemon (``artfs.fetch.workers``) with one end of a socket
pair. The first message is its ``WorkerSetup`` (the registry's address and
token travel here, not on the command line, where other users could read
them); then ``FetchTask``s, each run on one of the worker's threads, each
answered with ``Stored`` messages and one ``Finished``. The worker exits when
the daemon closes its end, which the kernel does for it if the daemon dies:
a worker never outlives its mount.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from artfs.cache.arena import ArenaView
from artfs.cache.writes import ChunkWriter
from artfs.client.ranged import RangeReader
from artfs.fetch.work import FetchTask, Reply, WorkerSetup, run_fetch

__all__ = ["main"]


def main(argv: list[str]) -> int:
    connection = Connection(int(argv[0]))
    try:
        setup = connection.recv()
    except (EOFError, OSError):
        return 0
    if not isinstance(setup, WorkerSetup):
        return 2
    if setup.log_file is not None:
        logging.basicConfig(
            level=logging.INFO,
            format=f"%(asctime)s %(levelname)s %(name)s[worker {os.getpid()}]: %(message)s",
            handlers=[logging.FileHandler(setup.log_file)],
        )
    arena = ArenaView(setup.arena_path, setup.arena_size, setup.slot_bytes)
    ranges = RangeReader(setup.config, timeout=setup.range_timeout)
    writer = ChunkWriter(Path(setup.cache_root))
    sending = threading.Lock()

    def send(reply: Reply) -> None:
        with sending:
            connection.send(reply)

    with ThreadPoolExecutor(setup.threads, thread_name_prefix="fetch") as pool:
        while True:
            try:
                task = connection.recv()
            except (EOFError, OSError):
                break  # the daemon is gone, or unmounting: stop
            if isinstance(task, FetchTask):
                pool.submit(run_fetch, task, arena, ranges, writer, send)
        pool.shutdown(wait=False, cancel_futures=True)
    ranges.close()
    # Threads still in a request would hold the exit back until their timeout.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
