"""``ArtfsOperations``: kernel requests in, ``Tree`` calls, attributes and errnos out.

It holds no policy: timeouts, inode numbers, bytes and what may change all come
from the tree; this module only converts names (bytes <-> str), ``Stat`` to
``EntryAttributes`` and domain errors to errnos (``translated``).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyfuse3
from pyfuse3 import FileHandleT, FileNameT, FlagT, InodeT, ModeT, XAttrNameT

from artfs.errors import LocalError, NotFound, ReadOnly
from artfs.fs.errors import translated
from artfs.vfs.tree import Node, OpenFile, Tree
from artfs.vfs.uses import Caller

__all__ = ["ArtfsOperations"]

log = logging.getLogger("artfs.fs")

BLOCK_SIZE = 1 << 20
#: ``st_blksize``, what buffered readers size their buffer by: a local disk's 4 KiB. At a
#: chunk's 1 MiB, Python's ``seek(x); read(4096)`` asked the kernel for ``[x, x+1 MiB)``
#: and fetched two chunks; ``cat`` and ``cp`` read at least 128 KiB at a time anyway.
IO_BLOCK_SIZE = 4096
#: Every extended attribute artfs has is named user.artfs.* (docs/design.md, "The mounted tree").
XATTR_PREFIX = b"user.artfs."
# The only namespace artfs answers in: security labels and POSIX ACLs do not exist here.
XATTR_NAMESPACE = b"user."


def _name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotFound("name is not valid UTF-8") from exc


def _new_name(raw: bytes) -> str:
    """A name to create: a path that is not UTF-8 could never be committed, so the
    tool making it is told now (EILSEQ), not with a baffling ENOENT, nor at commit."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LocalError(errno.EILSEQ, f"name {raw!r} is not valid UTF-8") from exc


def _owner(ctx: pyfuse3.RequestContext) -> tuple[int, int]:
    """The process that asked: new entries may be given to it (``StagingTree``)."""
    return ctx.uid, ctx.gid


@dataclass
class _Listing:
    """An open directory: its inode, and its entries as of its latest rewind."""

    inode: int
    entries: list[tuple[str, Node]] = field(default_factory=list)


class ArtfsOperations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, tree: Tree) -> None:
        super().__init__()
        self.tree = tree
        self._dir_listings: dict[int, _Listing] = {}
        self._next_dir_fh = 1

    def attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        info = self.tree.stat(node)
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = InodeT(node.inode)
        attrs.generation = 0
        attrs.entry_timeout = info.timeout
        attrs.attr_timeout = info.timeout
        attrs.st_mode = ModeT(info.mode)
        attrs.st_nlink = info.nlink
        attrs.st_uid = info.uid
        attrs.st_gid = info.gid
        attrs.st_rdev = 0
        attrs.st_size = info.size
        attrs.st_blksize = IO_BLOCK_SIZE
        attrs.st_blocks = (info.size + 511) // 512
        attrs.st_atime_ns = info.atime_ns
        attrs.st_mtime_ns = info.mtime_ns
        attrs.st_ctime_ns = info.ctime_ns
        return attrs

    def _entry(self, node: Node) -> pyfuse3.EntryAttributes:
        """Attributes of a node the kernel now holds a reference to."""
        self.tree.remember(node)
        return self.attributes(node)

    # -- names and attributes ---------------------------------------------------

    @translated
    async def lookup(
        self, parent_inode: InodeT, name: FileNameT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._entry(await self.tree.lookup(parent_inode, _name(name)))

    @translated
    async def getattr(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self.attributes(self.tree.get(inode))

    @translated
    async def setattr(
        self,
        inode: InodeT,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: FileHandleT | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        node = await self.tree.setattr(
            inode,
            size=attr.st_size if fields.update_size else None,
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
            fh=fh,
        )
        return self.attributes(node)

    async def forget(self, inode_list: Sequence[tuple[InodeT, int]]) -> None:
        for inode, count in inode_list:
            self.tree.forget(inode, count)

    # -- directories ------------------------------------------------------------

    @translated
    async def opendir(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> FileHandleT:
        self.tree.get(inode)  # a forgotten inode fails here
        fh = self._next_dir_fh
        self._next_dir_fh += 1
        self._dir_listings[fh] = _Listing(inode)
        return FileHandleT(fh)

    @translated
    async def readdir(self, fh: FileHandleT, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        listing = self._dir_listings.get(fh)
        if listing is None:
            return
        if start_id == 0:
            # A snapshot, so that a listing read in several calls is consistent, taken
            # at the start of each pass: a rewinddir must see what was added since.
            listing.entries = await self.tree.listing(listing.inode)
        entries = listing.entries
        for index in range(start_id, len(entries)):
            name, node = entries[index]
            try:
                attrs = self.attributes(node)
            except NotFound:
                continue  # a staged entry removed since the listing was taken
            if not pyfuse3.readdir_reply(token, FileNameT(name.encode()), attrs, index + 1):
                return
            self.tree.remember(node)

    async def releasedir(self, fh: FileHandleT) -> None:
        self._dir_listings.pop(fh, None)

    @translated
    async def mkdir(
        self, parent_inode: InodeT, name: FileNameT, mode: ModeT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._entry(await self.tree.mkdir(parent_inode, _new_name(name), mode, _owner(ctx)))

    @translated
    async def rmdir(
        self, parent_inode: InodeT, name: FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        self.tree.rmdir(parent_inode, _name(name))

    @translated
    async def unlink(
        self, parent_inode: InodeT, name: FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        self.tree.unlink(parent_inode, _name(name))

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
        await self.tree.rename(
            parent_inode_old,
            _name(name_old),
            parent_inode_new,
            _new_name(name_new),
            flags,
            Caller(ctx.pid, ctx.uid),
        )

    @translated
    async def symlink(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        target: FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        return self._entry(
            self.tree.symlink(parent_inode, _new_name(name), os.fsdecode(target), _owner(ctx))
        )

    @translated
    async def readlink(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> FileNameT:
        return FileNameT(os.fsencode(self.tree.readlink(inode)))

    @translated
    async def link(
        self,
        inode: InodeT,
        new_parent_inode: InodeT,
        new_name: FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        return self._entry(self.tree.link(inode, new_parent_inode, _new_name(new_name)))

    @translated
    async def mknod(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        mode: ModeT,
        rdev: int,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        if not stat.S_ISREG(mode):
            raise pyfuse3.FUSEError(errno.EPERM)  # devices and fifos have no place in a version
        handle = self.tree.create(parent_inode, _new_name(name), mode, os.O_WRONLY, _owner(ctx))
        self.tree.release(handle.fh)
        return self._entry(handle.node)

    # -- files ------------------------------------------------------------------

    @translated
    async def open(
        self, inode: InodeT, flags: FlagT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.FileInfo:
        handle = await self.tree.open(inode, flags, Caller(ctx.pid, ctx.uid))
        # Only immutable bytes may stay in the page cache across opens.
        immutable = isinstance(handle, OpenFile)
        return pyfuse3.FileInfo(fh=FileHandleT(handle.fh), keep_cache=immutable)

    @translated
    async def create(
        self,
        parent_inode: InodeT,
        name: FileNameT,
        mode: ModeT,
        flags: FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        handle = self.tree.create(parent_inode, _new_name(name), mode, flags, _owner(ctx))
        info = pyfuse3.FileInfo(fh=FileHandleT(handle.fh), keep_cache=False)
        return info, self._entry(handle.node)

    @translated
    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes:
        # Any buffer (a bytearray, a view of a cached chunk): pyfuse3 replies from
        # the buffer protocol, so no copy.
        return await self.tree.read(fh, off, size)  # type: ignore[return-value]

    @translated
    async def write(self, fh: FileHandleT, off: int, buf: bytes) -> int:
        return await self.tree.write(fh, off, buf)

    async def flush(self, fh: FileHandleT) -> None:
        # Writes go straight to the staging file and fsync is what makes them durable,
        # so close has nothing to flush: ENOSYS tells the kernel to stop asking, which
        # saves a round trip per close, which a walk over small files pays per file.
        raise pyfuse3.FUSEError(errno.ENOSYS)

    @translated
    async def fsync(self, fh: FileHandleT, datasync: bool) -> None:
        await self.tree.fsync(fh, datasync)

    async def release(self, fh: FileHandleT) -> None:
        self.tree.release(fh)

    # -- extended attributes ----------------------------------------------------

    @translated
    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: pyfuse3.RequestContext) -> bytes:
        if not name.startswith(XATTR_NAMESPACE):
            # `ls -l` asks for security.selinux and system.posix_acl_access; "not
            # supported" (unlike "absent") makes it stop asking for the rest of the
            # mount, which saves two round trips per file listed.
            raise pyfuse3.FUSEError(errno.ENOTSUP)
        if not name.startswith(XATTR_PREFIX):
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        value = (await self.tree.xattrs(inode)).get(name.decode("utf-8", "replace"))
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return value

    @translated
    async def listxattr(self, inode: InodeT, ctx: pyfuse3.RequestContext) -> Sequence[XAttrNameT]:
        return [XAttrNameT(name.encode()) for name in await self.tree.xattrs(inode)]

    @translated
    async def setxattr(
        self, inode: InodeT, name: XAttrNameT, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        raise ReadOnly("extended attributes describe versions; they cannot be set")

    @translated
    async def removexattr(
        self, inode: InodeT, name: XAttrNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        raise ReadOnly("extended attributes describe versions; they cannot be removed")

    # -- the file system as a whole ---------------------------------------------

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        data = pyfuse3.StatvfsData()
        data.f_bsize = BLOCK_SIZE
        data.f_frsize = BLOCK_SIZE
        data.f_namemax = 255
        return data
