"""``FuseKernelCache``: the tree's ``KernelCache``, told to the kernel through pyfuse3.

The daemon gives one to the ``Tree`` it builds; nodes become kernel inode
numbers here (``Node.inode``), and nowhere below the tree.
"""

from __future__ import annotations

import logging

import pyfuse3
from pyfuse3 import FileNameT, InodeT

from artfs.vfs.nodes import Node

__all__ = ["FuseKernelCache"]

log = logging.getLogger("artfs.fs")


class FuseKernelCache:
    def entry_changed(self, parent: Node, name: str) -> None:
        # Asynchronous: safe from inside a request handler, done once the reply is out.
        pyfuse3.invalidate_entry_async(
            InodeT(parent.inode), FileNameT(name.encode()), ignore_enoent=True
        )

    def prefetched(self, node: Node, data: memoryview) -> None:
        # Best effort: the kernel may have forgotten the inode meanwhile (ENOENT), and
        # then the file's first read fetches its bytes the ordinary way.
        try:
            # Any buffer will do (pyfuse3 takes the buffer protocol), so no copy.
            pyfuse3.notify_store(InodeT(node.inode), 0, data)  # type: ignore[arg-type]
        except OSError as exc:
            log.debug("page cache store of inode %d refused: %s", node.inode, exc)
