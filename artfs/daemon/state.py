"""Where a mount daemon records itself (pid, log, …) so that ``umount`` and ``mounts`` find it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

__all__ = [
    "MountRecord",
    "control_path_for",
    "forget_record",
    "live_records",
    "log_path_for",
    "mount_table",
    "read_record",
    "staging_root_for",
    "state_dir",
    "write_record",
]


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir("artfs"))


def _slug(mountpoint: Path) -> str:
    return hashlib.sha256(str(mountpoint).encode()).hexdigest()[:16]


def log_path_for(mountpoint: Path) -> Path:
    return state_dir() / "logs" / f"mount-{_slug(mountpoint)}.log"


#: Unix socket paths must fit in 108 bytes (sun_path), name included.
_MAX_SOCKET_DIR = 80


def control_path_for(mountpoint: Path) -> Path:
    """The daemon's control socket: in the runtime dir, or a short private one in /tmp."""
    fallback = Path(tempfile.gettempdir()) / f"artfs-{os.getuid()}"
    # Without XDG_RUNTIME_DIR (a root shell from su, a cron job) platformdirs warns
    # on every command before falling back to /tmp; our own fallback says nothing.
    base = (
        Path(platformdirs.user_runtime_dir("artfs"))
        if os.environ.get("XDG_RUNTIME_DIR")
        else fallback
    )
    if len(str(base)) > _MAX_SOCKET_DIR:
        base = fallback
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base / f"{_slug(mountpoint)}.sock"


def staging_root_for(
    mountpoint: Path, registry_url: str, project: str, base: Path | None = None
) -> Path:
    """Where a mount's staged files live: one tree per mountpoint, registry and project.

    Per mountpoint, so that two mounts never share a .staging (each daemon locks
    its own during a commit), and a remount of the same path finds it again.
    """
    root = base if base is not None else state_dir() / "staging" / _slug(mountpoint)
    return root / hashlib.sha256(registry_url.encode()).hexdigest()[:16] / project


@dataclass(frozen=True)
class MountRecord:
    mountpoint: str
    pid: int
    registry: str
    log: str
    control: str
    #: Defaults: records written before these fields existed still read.
    project: str = ""
    cache_dir: str = ""


def _record_path(mountpoint: Path) -> Path:
    return state_dir() / "mounts" / f"{_slug(mountpoint)}.json"


def write_record(mountpoint: Path, record: MountRecord) -> None:
    path = _record_path(mountpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)


def read_record(mountpoint: Path) -> MountRecord | None:
    try:
        return MountRecord(**json.loads(_record_path(mountpoint).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget_record(mountpoint: Path) -> None:
    _record_path(mountpoint).unlink(missing_ok=True)


def mount_table() -> dict[str, str]:
    """Every mountpoint the kernel lists for this process, with its type (``fuse.artfs``)."""
    with open("/proc/self/mounts") as mounts:
        fields = [line.split() for line in mounts]
    # /proc escapes a space as \040 (and tab, newline, backslash likewise).
    return {
        re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1]): parts[2]
        for parts in fields
        if len(parts) > 2
    }


def live_records() -> list[MountRecord]:
    """The records of mounts in use now: the daemon runs and the kernel lists the mountpoint.

    A daemon killed with SIGKILL leaves its record behind, and a mount that was
    detached behind artfs's back may leave a daemon; neither is a mount to show.
    """
    from artfs.daemon.pids import running

    listed = mount_table()
    records = []
    for path in sorted((state_dir() / "mounts").glob("*.json")):
        try:
            record = MountRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being replaced or removed right now, or not ours
        if record.mountpoint in listed and running(record.pid):
            records.append(record)
    return sorted(records, key=lambda record: record.mountpoint)
