"""``ReferenceFiles``: a version's reference opened as an ordinary file of the mount.

A reference recorded with its sha256 is read by that digest, through the
fetcher's ``ReferenceSource`` (which reads its chunks from its URI). One
recorded without (``checksum=False``) is hashed once, when first opened, from a
source that must still match its pin; the digest found is its content address
from then on, in this mount. An offline mount has no ``ReferenceSource``: a reference is read
from the cache by its recorded digest, or refused. A reference whose source changed fails its read
with ``SourceChanged`` (EIO), naming the file: ``changed`` turns the fetcher's
"chunk of blob … is corrupt" into that.
"""

from __future__ import annotations

import trio

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.errors import Corrupt, Offline, SourceChanged
from artfs.fetch.singleflight import SingleFlight
from artfs.fetch.sources import ReferenceSource
from artfs.references import ReferenceRead, hash_reference

__all__ = ["ReferenceFiles"]


class ReferenceFiles:
    def __init__(self, source: ReferenceSource | None, cache: ChunkCache) -> None:
        self.source = source
        self.cache = cache
        #: Pinned URI → content digest, for references logged without a checksum.
        self._digests: dict[str, str] = {}
        self._hashing: SingleFlight[str, ChunkLayout] = SingleFlight()

    async def digest(self, reference: ReferenceRead) -> str:
        """The content digest to read ``reference`` by, told to the source."""
        digest = reference.digest or self._digests.get(reference.uri)
        if self.source is None:
            # An offline mount: what the cache holds of the recorded digest, or nothing.
            if digest is None:
                raise Offline(
                    f"{reference.path} is a reference logged without a checksum: reading "
                    "it needs its source, and this mount is offline"
                )
            return digest
        if digest is None:
            layout = await self._hashing.do(reference.uri, lambda: self._hash(reference))
            digest = self._digests[reference.uri] = layout.digest
        self.source.add(digest, reference)
        return digest

    async def _hash(self, reference: ReferenceRead) -> ChunkLayout:
        layout = await trio.to_thread.run_sync(hash_reference, reference)
        if layout.size:
            self.cache.store_layout(layout)
        return layout

    @staticmethod
    def changed(reference: ReferenceRead, error: Corrupt) -> SourceChanged:
        if isinstance(error, SourceChanged):
            return error
        return reference.changed("its bytes no longer match the digest recorded")
