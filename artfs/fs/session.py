"""The FUSE session: mounting, serving and unmounting through pyfuse3.

The daemon decides when; this module is how, so that pyfuse3 stays inside
``artfs.fs`` (see docs/design.md, "The parts and their arrows").
"""

from __future__ import annotations

from pathlib import Path

import pyfuse3

__all__ = ["close", "init", "kernel_options", "serve", "terminate"]


def kernel_options(allow_other: bool) -> set[str]:
    """The kernel's mount options.

    The kernel checks every access against the modes and owners the mount
    reports (``default_permissions``), so with ``allow_other`` other users get
    exactly what those allow them, ``.staging``'s real owners included (see
    ``artfs.vfs.staging_tree``). A daemon not run as root needs
    ``user_allow_other`` in ``/etc/fuse.conf`` for ``allow_other``.
    """
    chosen = set(pyfuse3.default_options) | {"fsname=artfs", "subtype=artfs"}
    if allow_other:
        chosen |= {"allow_other", "default_permissions"}
    return chosen


def init(operations: pyfuse3.Operations, mountpoint: Path, options: set[str]) -> None:
    """Mount; the kernel's requests wait until ``serve`` answers them."""
    pyfuse3.init(operations, str(mountpoint), options)


async def serve() -> None:
    """Answer the kernel's requests until unmounted or ``terminate``d (FUSE ``INIT`` first)."""
    await pyfuse3.main()


def terminate() -> None:
    """Make ``serve`` return, as an unmount would."""
    pyfuse3.terminate()


def close() -> None:
    """Unmount and release the session."""
    pyfuse3.close(unmount=True)
