"""The soak: readers and committers against a registry that is killed with SIGKILL every so often.

One real ``artfs serve`` and two real mounts of it. While the soak runs:

* a reader per mount reads files of committed versions through the mount
  (whole, or a random range of a multi-chunk file), then drops them from the
  page cache so that the next read asks the daemon again;
* an SDK reader downloads whole versions, with and without the machine's cache;
* three committers make new versions with content of their own: one by
  ``mv .staging latest`` in the first mount, one by ``artfs commit`` in the
  second, one by ``artfs push``;
* the server is killed (``kill -9`` of its process group) and started again
  on the same port and data every ``kill_every`` seconds.

Every byte a reader gets is compared with what the version holds (content is
made from a seed per file, so it can be made again to compare); a difference
counts as wrong bytes, which must stay 0. Errors while the server is down are
expected and counted by kind. At the end the server is up again, every version
a committer was told was committed must have exactly its files (else it is
lost: must stay 0), and ``artfs verify --all`` must find every stored blob
intact.

``scripts/soak`` runs it by hand (``--minutes 3``, a kill a minute);
tests/integration/test_soak.py runs a short form. Everything started (server,
mount daemons, CLI subprocesses) is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tests.support.mount import Mount, artfs
from tests.support.registry import TEST_TOKEN, RegistryProcess

__all__ = ["SoakResult", "SoakSettings", "main", "run_soak"]

MiB = 1 << 20
#: A version is read only once it is this old: a mount lists new versions after
#: its listing timeout (1 s by default), and a reader must not count that as an error.
LISTED_AFTER = 3.0
#: Seconds a committer waits between two commits, so that readers get their share.
COMMIT_PAUSE = 0.3
#: Seconds a reader waits after an error: while the server is down, a reader that
#: tried again at once would only count the same outage many times.
ERROR_PAUSE = 0.1
#: The artifact every reader starts with, made before the soak.
SEED_ARTIFACT = "soak-seed"


def content(tag: str, size: int) -> bytes:
    """The bytes of the file ``tag``: the same for the same tag, every time."""
    return random.Random(tag).randbytes(size)


@dataclass(frozen=True)
class ExpectedFile:
    path: str
    tag: str
    size: int
    digest: str

    @classmethod
    def make(cls, path: str, tag: str, size: int) -> ExpectedFile:
        return cls(path, tag, size, hashlib.sha256(content(tag, size)).hexdigest())

    def write(self, root: Path) -> None:
        target = root / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content(self.tag, self.size))


@dataclass(frozen=True)
class ExpectedVersion:
    artifact: str
    version: str
    files: tuple[ExpectedFile, ...]
    committed_at: float

    @property
    def name(self) -> str:
        return f"{self.artifact}:{self.version}"


def new_files(rng: random.Random, artifact: str, round_: int) -> tuple[ExpectedFile, ...]:
    """A small, a middling and a multi-chunk file, of content no other round has."""
    tag = f"{artifact}/{round_}/{uuid.uuid4().hex}"
    return (
        ExpectedFile.make("notes.txt", f"{tag}/notes", rng.randint(1, 4096)),
        ExpectedFile.make("data/part.bin", f"{tag}/part", rng.randint(64 << 10, 512 << 10)),
        ExpectedFile.make("model/weights.bin", f"{tag}/weights", rng.randint(MiB + 1, 3 * MiB)),
    )


class Ledger:
    """What every thread saw, under one lock: the versions to expect and the figures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: list[ExpectedVersion] = []
        self.reads: Counter[str] = Counter()
        self.bytes_read = 0
        self.wrong_bytes = 0
        self.commits: Counter[str] = Counter()
        self.failed_commits: Counter[str] = Counter()
        self.kills = 0
        #: From each kill until the new server answered, added up.
        self.seconds_down = 0.0
        self.errors: Counter[str] = Counter()
        #: Readers, committers or the killer that met an exception they did not expect.
        self.crashed: list[str] = []

    def committed(self, version: ExpectedVersion, how: str) -> None:
        with self._lock:
            self._versions.append(version)
            self.commits[how] += 1

    def versions(self) -> list[ExpectedVersion]:
        with self._lock:
            return list(self._versions)

    def pick(self, rng: random.Random) -> ExpectedVersion | None:
        """A committed version old enough to be listed everywhere."""
        now = time.monotonic()
        with self._lock:
            ready = [v for v in self._versions if now - v.committed_at >= LISTED_AFTER]
        return rng.choice(ready) if ready else None

    def read(self, reader: str, got: bytes, want: bytes) -> None:
        wrong = 0
        if got != want:
            wrong = sum(a != b for a, b in zip(got, want, strict=False))
            wrong += abs(len(want) - len(got))
        with self._lock:
            self.reads[reader] += 1
            self.bytes_read += len(got)
            self.wrong_bytes += wrong
            if wrong:
                self.errors[f"{reader}: WRONG BYTES"] += 1

    def killed(self, outage: float) -> None:
        with self._lock:
            self.kills += 1
            self.seconds_down += outage

    def died(self, part: str, why: str) -> None:
        with self._lock:
            self.crashed.append(part)
            self.errors[f"{part} died: {why}"] += 1

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def failed(self, how: str, kind: str) -> None:
        with self._lock:
            self.failed_commits[how] += 1
            self.errors[f"{how}: {kind}"] += 1


def _kind(text: str) -> str:
    """An error message as a kind: its first line, numbers and digests blurred, cut short."""
    line = (text.strip().splitlines() or ["(no message)"])[-1]
    line = line.removeprefix("artfs: error: ")
    line = re.sub(r"[0-9a-f]{16,}", "…", line)
    line = re.sub(r"\d+(\.\d+)?", "N", line)
    return line[:90]


@dataclass(frozen=True)
class SoakSettings:
    workdir: Path
    seconds: float
    kill_every: float
    seed: int = 0


@dataclass(frozen=True)
class SoakResult:
    seconds: float
    kill_every: float
    reads: dict[str, int]
    bytes_read: int
    commits: dict[str, int]
    failed_commits: dict[str, int]
    kills: int
    seconds_down: float
    wrong_bytes: int
    versions: int
    lost_versions: tuple[str, ...]
    blobs_verified: int
    bytes_verified: int
    bad_blobs: int
    #: Parts that died of an exception they did not expect (the soak stops then).
    crashed: tuple[str, ...] = ()
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.wrong_bytes == 0
            and not self.lost_versions
            and self.bad_blobs == 0
            and not self.crashed
        )

    def lines(self) -> list[str]:
        def by_kind(counts: dict[str, int]) -> str:
            return ", ".join(f"{kind} {number:,}" for kind, number in sorted(counts.items()))

        lines = [
            f"soak: {self.seconds:.0f} s, the server killed (SIGKILL) every {self.kill_every:g} s",
            f"reads          {sum(self.reads.values()):,} ({by_kind(self.reads)}), "
            f"{self.bytes_read / MiB:,.1f} MiB",
            f"commits        {sum(self.commits.values()):,} ({by_kind(self.commits)}); "
            f"failed {sum(self.failed_commits.values()):,}",
            f"server kills   {self.kills:,}"
            + (f", down {self.seconds_down / self.kills:.1f} s each" if self.kills else ""),
            f"wrong bytes    {self.wrong_bytes:,}",
            f"lost versions  {len(self.lost_versions):,} of {self.versions:,}"
            + (f": {', '.join(self.lost_versions)}" if self.lost_versions else ""),
            f"verify --all   {self.blobs_verified:,} blobs, {self.bytes_verified / MiB:,.1f} MiB: "
            f"{self.bad_blobs:,} bad",
            f"errors         {sum(self.errors.values()):,}",
        ]
        lines += [f"  {number:6,}  {kind}" for kind, number in sorted(self.errors.items())]
        return lines


class _Soak:
    def __init__(self, settings: SoakSettings) -> None:
        self.settings = settings
        self.work = settings.workdir
        self.work.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.registry = RegistryProcess(self.work / "registry-data")
        self.mounts = [
            Mount(
                self.work / f"mnt-{side}",
                self.registry.url,
                self.work / f"cache-{side}",
                "--staging-dir",
                str(self.work / f"staging-{side}"),
            )
            for side in ("a", "b")
        ]
        self.env = {"ARTFS_URL": self.registry.url}

    # -- the parts ------------------------------------------------------------------

    def seed(self) -> None:
        """The first version every reader can read: a spread of sizes, one of 6 MiB."""
        rng = random.Random(self.settings.seed)
        files = tuple(
            ExpectedFile.make(f"f{i:02d}.bin", f"seed/{i}", size)
            for i, size in enumerate([0, 1, 4096, 100_000, MiB, MiB + 1, 6 * MiB + 7])
        ) + new_files(rng, SEED_ARTIFACT, 0)
        root = self.work / "seed"
        for file in files:
            file.write(root)
        version = self._push(SEED_ARTIFACT, root)
        if version is None:
            raise RuntimeError("the soak could not push its seed version")
        self.ledger.committed(
            ExpectedVersion(SEED_ARTIFACT, version, files, time.monotonic() - LISTED_AFTER), "seed"
        )

    def _push(self, artifact: str, root: Path) -> str | None:
        result = artfs("push", artifact, str(root), env=self.env)
        if result.returncode != 0:
            self.ledger.failed("push", _kind(result.stderr))
            return None
        return result.stdout.split()[-1]

    def mount_reader(self, mount: Mount, reader: str, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            version = self.ledger.pick(rng)
            if version is None:
                self.stop.wait(0.2)
                continue
            file = rng.choice(version.files)
            path = mount.path / version.artifact / version.version / file.path
            want = content(file.tag, file.size)
            start, end = 0, file.size
            if file.size > MiB and rng.random() < 0.5:
                start = rng.randrange(file.size)
                end = min(file.size, start + rng.randint(1, 2 * MiB))
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    got = _pread_all(fd, start, end - start)
                    # Out of the page cache: the next read of it goes to the daemon.
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
            except OSError as exc:
                self.ledger.error(f"{reader} read: {errno.errorcode.get(exc.errno or 0, exc)}")
                self.stop.wait(ERROR_PAUSE)
                continue
            self.ledger.read(reader, got, want[start:end])

    def sdk_reader(self, seed: int) -> None:
        from artfs.errors import ArtfsError
        from artfs.sdk.client import Client

        rng = random.Random(seed)
        with (
            Client(url=self.registry.url) as cached,
            Client(url=self.registry.url, use_cache=False) as uncached,
        ):
            while not self.stop.is_set():
                version = self.ledger.pick(rng)
                if version is None:
                    self.stop.wait(0.2)
                    continue
                client = rng.choice([cached, uncached])
                reader = "sdk" if client is cached else "sdk (no cache)"
                dest = self.work / "sdk-downloads" / uuid.uuid4().hex
                try:
                    client.get_artifact(version.name).download(dest)
                    for file in version.files:
                        got = (dest / file.path).read_bytes()
                        self.ledger.read(reader, got, content(file.tag, file.size))
                except ArtfsError as exc:
                    self.ledger.error(f"{reader}: {type(exc).__name__}: {_kind(exc.message)}")
                    self.stop.wait(ERROR_PAUSE)
                except OSError as exc:
                    self.ledger.error(f"{reader}: {type(exc).__name__}: {_kind(str(exc))}")
                    self.stop.wait(ERROR_PAUSE)
                finally:
                    shutil.rmtree(dest, ignore_errors=True)

    def staging_committer(self, mount: Mount, artifact: str, how: str, seed: int) -> None:
        """Commit through a mount's ``.staging``: by ``mv .staging latest`` or ``artfs commit``."""
        rng = random.Random(seed)
        root = mount.path / artifact
        round_ = 0
        while not self.stop.is_set():
            round_ += 1
            files = new_files(rng, artifact, round_)
            staging = root / ".staging"
            try:
                _empty(staging)  # what a failed commit left: it may or may not have committed
                for file in files:
                    file.write(staging)
            except OSError as exc:
                self.ledger.failed(how, f"staging: {errno.errorcode.get(exc.errno or 0, exc)}")
                self.stop.wait(COMMIT_PAUSE)
                continue
            version = self._mv(root, how) if how == "mv" else self._commit(root, how)
            if version is not None:
                self.ledger.committed(
                    ExpectedVersion(artifact, version, files, time.monotonic()), how
                )
            self.stop.wait(COMMIT_PAUSE)

    def _mv(self, root: Path, how: str) -> str | None:
        try:
            os.rename(root / ".staging", root / "latest")
        except OSError as exc:
            self.ledger.failed(how, errno.errorcode.get(exc.errno or 0, str(exc)))
            return None
        # One committer per artifact: what latest names now is this commit.
        from artfs.errors import ArtfsError
        from artfs.sdk.client import Client

        with Client(url=self.registry.url) as client:
            for _ in range(20):
                try:
                    return client.registry.get_version(root.name, "latest").version
                except ArtfsError:
                    self.stop.wait(0.5)
        self.ledger.failed(how, "committed, but latest could not be read back")
        return None

    def _commit(self, root: Path, how: str) -> str | None:
        result = artfs("commit", str(root), env=self.env)
        if result.returncode != 0:
            self.ledger.failed(how, _kind(result.stderr))
            return None
        return result.stdout.split()[-1]

    def push_committer(self, artifact: str, seed: int) -> None:
        rng = random.Random(seed)
        round_ = 0
        while not self.stop.is_set():
            round_ += 1
            files = new_files(rng, artifact, round_)
            root = self.work / "push" / str(round_)
            for file in files:
                file.write(root)
            version = self._push(artifact, root)
            shutil.rmtree(root, ignore_errors=True)
            if version is not None:
                self.ledger.committed(
                    ExpectedVersion(artifact, version, files, time.monotonic()), "push"
                )
            self.stop.wait(COMMIT_PAUSE)

    def killer(self) -> None:
        """Kill the server on a fixed beat (restarts take time too), and start it again.

        The first kill comes half a beat in, so a run of N beats has N kills, each
        with the load of a running soak around it.
        """
        beat = self.settings.kill_every
        next_kill = time.monotonic() + beat / 2
        while not self.stop.wait(max(next_kill - time.monotonic(), 0)):
            killed = time.monotonic()
            self.registry.stop(kill=True)
            self.registry.start()  # returns once /healthz answers
            self.ledger.killed(time.monotonic() - killed)
            next_kill += beat

    # -- the end --------------------------------------------------------------------

    def lost_versions(self) -> list[str]:
        """Versions a committer was told were committed whose files are not exactly theirs."""
        from artfs.errors import ArtfsError
        from artfs.sdk.client import Client

        lost = []
        with Client(url=self.registry.url) as client:
            for version in self.ledger.versions():
                want = sorted((f.path, f.size, f.digest) for f in version.files)
                try:
                    manifest = client.registry.manifest(version.artifact, version.version)
                    got = sorted(zip(manifest.paths, manifest.sizes, manifest.digests, strict=True))
                except ArtfsError as exc:
                    self.ledger.error(f"final check: {type(exc).__name__}: {_kind(exc.message)}")
                    got = []
                if got != want:
                    lost.append(version.name)
        return lost

    def verify_all(self) -> dict[str, object]:
        result = artfs("verify", "--all", "--json", env=self.env, timeout=600)
        if not result.stdout.strip():
            raise RuntimeError(f"artfs verify --all gave no report: {result.stderr}")
        report: dict[str, object] = json.loads(result.stdout)
        return report

    def run(self) -> SoakResult:
        self.registry.start()
        for mount in self.mounts:
            mount.mount()
        self.seed()
        for mount, artifact in zip(self.mounts, ("soak-mv", "soak-commit"), strict=True):
            (mount.path / artifact).mkdir()
        parts: list[tuple[str, Callable[[], None]]] = [
            ("mount-a", lambda: self.mount_reader(self.mounts[0], "mount-a", 1)),
            ("mount-b", lambda: self.mount_reader(self.mounts[1], "mount-b", 2)),
            ("sdk", lambda: self.sdk_reader(3)),
            ("mv", lambda: self.staging_committer(self.mounts[0], "soak-mv", "mv", 4)),
            ("commit", lambda: self.staging_committer(self.mounts[1], "soak-commit", "commit", 5)),
            ("push", lambda: self.push_committer("soak-push", 6)),
            ("killer", self.killer),
        ]
        threads = [_Part(name, body, self) for name, body in parts]
        started = time.monotonic()
        try:
            for thread in threads:
                thread.start()
            self.stop.wait(self.settings.seconds)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()
        elapsed = time.monotonic() - started
        if self.registry.process is None:  # the killer stopped between its kill and start
            self.registry.start()
        lost = self.lost_versions()
        report = self.verify_all()
        bad = report.get("bad")
        blobs_checked, bytes_hashed = report.get("blobs_checked"), report.get("bytes_hashed")
        ledger = self.ledger
        return SoakResult(
            seconds=elapsed,
            kill_every=self.settings.kill_every,
            reads=dict(ledger.reads),
            bytes_read=ledger.bytes_read,
            commits=dict(ledger.commits),
            failed_commits=dict(ledger.failed_commits),
            kills=ledger.kills,
            seconds_down=ledger.seconds_down,
            wrong_bytes=ledger.wrong_bytes,
            versions=len(ledger.versions()),
            lost_versions=tuple(lost),
            blobs_verified=blobs_checked if isinstance(blobs_checked, int) else 0,
            bytes_verified=bytes_hashed if isinstance(bytes_hashed, int) else 0,
            bad_blobs=len(bad) if isinstance(bad, list) else -1,
            crashed=tuple(ledger.crashed),
            errors=dict(ledger.errors),
        )

    def close(self) -> None:
        self.stop.set()
        for mount in self.mounts:
            mount.unmount()
        self.registry.stop()


class _Part(threading.Thread):
    """One reader, committer or the killer; an exception it did not expect ends the soak."""

    def __init__(self, name: str, body: Callable[[], None], soak: _Soak) -> None:
        super().__init__(name=f"soak-{name}", daemon=True)
        self._body = body
        self._soak = soak

    def run(self) -> None:
        try:
            self._body()
        except Exception as exc:
            self._soak.ledger.died(self.name, f"{type(exc).__name__}: {_kind(str(exc))}")
            self._soak.stop.set()


def _pread_all(fd: int, start: int, length: int) -> bytes:
    pieces = []
    while length > 0:
        piece = os.pread(fd, min(length, 4 * MiB), start)
        if not piece:
            break  # short: the comparison counts what is missing
        pieces.append(piece)
        start += len(piece)
        length -= len(piece)
    return b"".join(pieces)


def _empty(directory: Path) -> None:
    for entry in list(directory.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@contextlib.contextmanager
def _isolated(workdir: Path) -> Iterator[None]:
    """XDG dirs under ``workdir`` and the test registries' token, for this process and its
    children; SIGTERM unwinds as Ctrl-C does, so the ``finally`` blocks run."""
    saved = dict(os.environ)
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        os.environ[var] = str(workdir / "xdg" / var.lower())
    for var in [var for var in os.environ if var.startswith("ARTFS_")]:
        del os.environ[var]
    os.environ["ARTFS_TOKEN"] = TEST_TOKEN

    def interrupted(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.environ.clear()
        os.environ.update(saved)


def run_soak(settings: SoakSettings) -> SoakResult:
    """Run the soak in ``settings.workdir``; the environment variables it needs are set here."""
    soak = _Soak(settings)
    try:
        return soak.run()
    finally:
        soak.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to run [3]")
    parser.add_argument(
        "--kill-every", type=float, default=60.0, metavar="S", help="seconds between kills [60]"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="artfs-soak-"))
    try:
        with _isolated(workdir):
            result = run_soak(
                SoakSettings(workdir, args.minutes * 60, args.kill_every, seed=args.seed)
            )
    except KeyboardInterrupt:
        print("soak: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"soak: work folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
