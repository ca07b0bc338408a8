"""Downloading a reference into a file: from its own URI, verified as it streams.

The bytes go to a part file while they are hashed; the part file is renamed
into place only if the source's answer matched the record (size, pin) and the
bytes hash to the recorded digest, so a changed source leaves nothing behind
but an error naming the file. A reference whose digest the machine cache holds
is copied from there, and a fetched one is recorded there, as a blob is.
"""

from __future__ import annotations

import os
from pathlib import Path

from artfs.cache.chunks import ChunkCache
from artfs.references import ReferenceRead, hash_reference
from artfs.transfer.cached import copy_from_cache, record_external
from artfs.transfer.parallel import retrying
from artfs.transfer.progress import Progress

__all__ = ["fetch_reference"]


def fetch_reference(
    ref: ReferenceRead,
    target: Path,
    progress: Progress | None = None,
    cache: ChunkCache | None = None,
) -> None:
    if (
        cache is not None
        and ref.digest is not None
        and copy_from_cache(cache, ref.digest, ref.size, target, progress)
    ):
        return
    part = target.with_name(f".{target.name}.reference.artfs-part")

    def attempt() -> None:
        with open(part, "wb") as out:

            def write(view: memoryview) -> None:
                out.write(view)
                if progress is not None:
                    progress.update(len(view))

            try:
                layout = hash_reference(ref, write)
            except BaseException:
                out.close()
                part.unlink(missing_ok=True)
                raise
        os.replace(part, target)
        if layout.size:
            record_external(cache, layout, target)

    retrying(attempt, f"download of {target}")
