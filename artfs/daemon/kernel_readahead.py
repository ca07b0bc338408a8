"""The kernel's read-ahead for a FUSE mount: how large its read requests are.

Not the mount's own read-ahead (what the daemon fetches before a reader asks:
``artfs.fetch.readahead``): this is the setting of the mount's backing device
in the kernel, which sizes the requests the daemon is sent.

The kernel sends a sequential reader's reads to the daemon as read-ahead
requests no larger than the mount's backing-device read-ahead, 128 KiB by
default. Every request costs a trip through Python, so the mount raises it
(``/sys/class/bdi/<major>:<minor>/read_ahead_kb``): with 1 MiB or more the
kernel sends 1 MiB requests (its ``max_pages`` limit, which libfuse negotiates
at 256 pages) and keeps several in flight.

The device number comes from ``/proc/self/mountinfo``: a ``stat`` of the
mountpoint from the daemon itself would wait on the daemon. Writing the file
needs root; without it the mount works as before, with smaller requests.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["device_of_mount", "set_kernel_read_ahead"]

log = logging.getLogger("artfs.daemon")

BDI_ROOT = Path("/sys/class/bdi")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 …).
    return field.encode().decode("unicode_escape") if "\\" in field else field


def device_of_mount(mountpoint: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str | None:
    """``major:minor`` of the filesystem mounted at ``mountpoint`` (the last one, if stacked)."""
    target = str(mountpoint)
    found = None
    with open(mountinfo) as lines:
        for line in lines:
            fields = line.split()
            if len(fields) > 4 and _unescape(fields[4]) == target:
                found = fields[2]
    return found


def set_kernel_read_ahead(mountpoint: Path, kb: int) -> bool:
    """Set the mount's read-ahead to ``kb`` KiB; ``False`` (and a log line) if it cannot be."""
    device = device_of_mount(mountpoint)
    if device is None:
        log.info("no mountinfo entry for %s; read-ahead left as it is", mountpoint)
        return False
    try:
        (BDI_ROOT / device / "read_ahead_kb").write_text(f"{kb}\n")
    except OSError as exc:
        log.info("cannot set read-ahead of %s (%s) to %d KiB: %s", mountpoint, device, kb, exc)
        return False
    log.info("read-ahead of %s (%s) set to %d KiB", mountpoint, device, kb)
    return True
