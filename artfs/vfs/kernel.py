"""``KernelCache``: what the tree tells the kernel's caches of the mount.

The kernel caches the mount's names and file pages. The tree knows when a name
may have changed, and when it holds the whole content of a file a reader is
about to open; only the fs layer speaks to the kernel. So the fs layer
implements this protocol and the daemon gives it to the ``Tree`` it builds; a
tree driven in-process, with no kernel, has none. A node's kernel inode number
is ``Node.inode``: neither the tree's callers nor the fetch layer below see one.
"""

from __future__ import annotations

from typing import Protocol

from artfs.vfs.nodes import Node

__all__ = ["KernelCache"]


class KernelCache(Protocol):
    def entry_changed(self, parent: Node, name: str) -> None:
        """``name`` in directory ``parent`` may stand for something else now (trio thread)."""
        ...

    def prefetched(self, node: Node, data: memoryview) -> None:
        """The verified content of ``node``, a file nobody has open, fetched ahead of its
        reader. Called from a worker thread; best effort, never raises."""
        ...
