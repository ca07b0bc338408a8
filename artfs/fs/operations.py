"""``ArtfsOperations``: kernel requests in, ``Tree`` calls, attributes and errnos out.

It holds no policy: timeouts, inode numbers and bytes all come from the tree;
this module only converts names (bytes <-> str), nodes to ``EntryAttributes``,
and refuses every modifying request with ``EROFS``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

import pyfuse3
from pyfuse3 import FileHandleT, FileNameT, FlagT, InodeT, ModeT, XAttrNameT

from artfs.errors import NotFound, ReadOnly
from artfs.fs.errors import translated
from artfs.vfs.tree import Kind, Node, Tree

__all__ = ["ArtfsOperations"]

BLOCK_SIZE = 1 << 20
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT


def _name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotFound("name is not valid UTF-8") from exc


def _read_only() -> ReadOnly:
    return ReadOnly("versions are immutable; write into <artifact>/.staging")


class ArtfsOperations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, tree: Tree) -> None:
        super().__init__()
        self.tree = tree
        self._dir_listings: dict[int, list[Node]] = {}
        self._next_dir_fh = 1

    def attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = InodeT(node.inode)
        attrs.generation = 0
        attrs.entry_timeout = node.entry_timeout
        attrs.attr_timeout = node.entry_timeout
        attrs.st_mode = ModeT(node.mode)
        attrs.st_nlink = 2 if node.is_dir else 1
        attrs.st_uid = self.tree.settings.uid
        attrs.st_gid = self.tree.settings.gid
        attrs.st_rdev = 0
        attrs.st_size = node.size
        attrs.st_blksize = BLOCK_SIZE
        attrs.st_blocks = (node.size + 511) // 512
        attrs.st_atime_ns = node.mtime_ns
        attrs.st_mtime_ns = node.mtime_ns
        attrs.st_ctime_ns = node.mtime_ns
        return attrs

    # -- names and attributes ---------------------------------------------------

    @translated
    async def lookup(
        self, parent_inode: InodeT, name: FileNameT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        node = await self.tree.lookup(parent_inode, _name(name))
        self.tree.remember(node)
        return self.attributes(node)

    @translated
    async def getattr(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self.attributes(self.tree.get(inode))

    async def forget(self, inode_list: Sequence[tuple[InodeT, int]]) -> None:
        for inode, count in inode_list:
            self.tree.forget(inode, count)

    # -- directories ------------------------------------------------------------

    @translated
    async def opendir(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> FileHandleT:
        # A snapshot, so that a listing read in several calls is consistent.
        children = await self.tree.children(inode)
        fh = self._next_dir_fh
        self._next_dir_fh += 1
        self._dir_listings[fh] = children
        return FileHandleT(fh)

    @translated
    async def readdir(self, fh: FileHandleT, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        children = self._dir_listings.get(fh, [])
        for index in range(start_id, len(children)):
            node = children[index]
            if not pyfuse3.readdir_reply(
                token, FileNameT(node.name.encode()), self.attributes(node), index + 1
            ):
                return
            self.tree.remember(node)

    async def releasedir(self, fh: FileHandleT) -> None:
        self._dir_listings.pop(fh, None)

    # -- files ------------------------------------------------------------------

    @translated
    async def open(
        self, inode: InodeT, flags: FlagT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.FileInfo:
        if flags & _WRITE_FLAGS:
            raise _read_only()
        handle = await self.tree.open(inode)
        # Immutable bytes: the kernel may keep its page cache across opens.
        return pyfuse3.FileInfo(fh=FileHandleT(handle.fh), keep_cache=True)

    @translated
    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes:
        # A bytearray, not bytes: pyfuse3 replies from any buffer, so no copy.
        return await self.tree.read(fh, off, size)  # type: ignore[return-value]

    async def release(self, fh: FileHandleT) -> None:
        self.tree.release(fh)

    # -- extended attributes ----------------------------------------------------

    @translated
    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: pyfuse3.RequestContext) -> bytes:
        value = (await self.tree.xattrs(inode)).get(name.decode("utf-8", "replace"))
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return value

    @translated
    async def listxattr(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> Sequence[XAttrNameT]:
        return [XAttrNameT(name.encode()) for name in await self.tree.xattrs(inode)]

    # -- the file system as a whole ---------------------------------------------

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        data = pyfuse3.StatvfsData()
        data.f_bsize = BLOCK_SIZE
        data.f_frsize = BLOCK_SIZE
        data.f_namemax = 255
        return data

    async def access(self, inode: InodeT, mode: ModeT, ctx: pyfuse3.RequestContext) -> bool:
        if mode & os.W_OK and self.tree.get(inode).kind not in (Kind.ROOT, Kind.ARTIFACT):
            raise pyfuse3.FUSEError(errno.EROFS)
        return True

    # -- everything that would modify a version ---------------------------------

    @translated
    async def setattr(
        self,
        inode: InodeT,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: FileHandleT | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        raise _read_only()

    @translated
    async def mknod(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        mode: ModeT,
        rdev: int,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        raise _read_only()

    @translated
    async def mkdir(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        raise _read_only()

    @translated
    async def create(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        mode: ModeT,
        flags: FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        raise _read_only()

    @translated
    async def symlink(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        target: FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        raise _read_only()

    @translated
    async def link(
        self,
        inode: InodeT,
        new_parent_inode: InodeT,
        new_name: FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        raise _read_only()

    @translated
    async def unlink(
        self, parent_inode: InodeT, name: FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        raise _read_only()

    @translated
    async def rmdir(
        self, parent_inode: InodeT, name: FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        raise _read_only()

    @translated
    async def rename(
        self,
        parent_inode_old: InodeT,
        name_old: FileNameT,
        parent_inode_new: InodeT,
        name_new: FileNameT,
        flags: FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        raise _read_only()

    @translated
    async def write(self, fh: FileHandleT, off: int, buf: bytes) -> int:
        raise _read_only()

    @translated
    async def setxattr(
        self, inode: InodeT, name: XAttrNameT, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        raise _read_only()

    @translated
    async def removexattr(
        self, inode: InodeT, name: XAttrNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        raise _read_only()
