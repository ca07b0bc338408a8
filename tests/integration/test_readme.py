"""The README walked through as a newcomer would: its commands, run as written.

The shell and Python blocks of "Using it" and of the staging section run in
order against a real registry and a real mount, with only the addresses a
reader's machine would differ in replaced (the mountpoint, the registry URL and
the example's shared folder). A command must succeed, and a ``# -> X`` comment
under or beside a command must be the last line it printed, so an example that
stops working fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy

from tests.support.mount import mounted
from tests.support.registry import RegistryProcess

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide.md"
#: Sections whose examples a reader runs one after another, in this order.
WALKED_SECTIONS = ("Using it", "Writing: staging and commit")
#: The guide's, walked after the README's, on the same registry and mount.
GUIDE_SECTIONS = (
    "Versions and drafts",
    "Runs and lineage",
    "References",
    "Collections",
    "Code from W&B, Comet and DVCLive",
)


@dataclass(frozen=True)
class Block:
    section: str
    language: str
    text: str


@dataclass(frozen=True)
class Command:
    line: str
    #: What the last line of its output must be (a ``# -> X`` comment), if anything.
    expect: str | None


def readme_blocks(text: str, walked: tuple[str, ...] = WALKED_SECTIONS) -> list[Block]:
    """The fenced code blocks of the ``walked`` sections, in the document's order."""
    blocks: list[Block] = []
    section = ""
    fence: list[str] | None = None
    language = ""
    for line in text.splitlines():
        if fence is not None:
            if line.startswith("```"):
                if section in walked:
                    blocks.append(Block(section, language, "\n".join(fence)))
                fence = None
            else:
                fence.append(line)
        elif line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("```"):
            fence, language = [], line[3:].strip()
    return blocks


_EXPECT = re.compile(r"#\s*->\s*(\S+)")


def shell_commands(block: str) -> list[Command]:
    """A shell block's commands (continuation lines joined) with their ``# ->`` expectations."""
    commands: list[Command] = []
    pending = ""
    for raw in block.splitlines():
        line = pending + raw.lstrip() if pending else raw
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        stripped = line.strip()
        expect = _EXPECT.search(stripped)
        if stripped.startswith("#"):
            if expect and commands:  # an expectation on its own line, for the command above
                commands[-1] = Command(commands[-1].line, expect.group(1))
            continue
        if stripped:
            commands.append(Command(stripped, expect.group(1) if expect else None))
    return commands


def test_readme_blocks_are_found() -> None:
    """The walk below covers what it claims: both sections, shell and Python."""
    blocks = readme_blocks(README.read_text())
    assert {block.section for block in blocks} == set(WALKED_SECTIONS)
    guide = readme_blocks(GUIDE.read_text(), GUIDE_SECTIONS)
    assert {block.section for block in guide} == set(GUIDE_SECTIONS)
    assert {block.language for block in blocks} >= {"sh", "python"}
    assert shell_commands("a \\\n  b # -> v1\n# -> v2\n# note\nc") == [
        Command("a b # -> v1", "v2"),
        Command("c", None),
    ]


def _reader_machine(tmp_path: Path) -> tuple[Path, Path]:
    """The files the examples name, and a bin folder whose ``artfs`` and ``python`` are ours."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    numpy.arange(1000, dtype=numpy.float32).tofile(work / "data" / "x.npy")
    (work / "data" / "labels.txt").write_text("0\n1\n")
    (work / "checkpoints").mkdir()
    (work / "checkpoints" / "model.pt").write_bytes(os.urandom(4096))
    (work / "card.md").write_text("# resnet\n")
    (work / "outputs" / "weights").mkdir(parents=True)
    (work / "outputs" / "weights" / "model.bin").write_bytes(os.urandom(10000))
    (work / "outputs" / "config.json").write_text('{"lr": 0.1}\n')
    (work / "eval.json").write_text('{"acc": 0.91}\n')
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "big.parquet").write_bytes(b"PAR1" * 100)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command, argv in (("artfs", f"{sys.executable} -m artfs"), ("python", sys.executable)):
        wrapper = bin_dir / command
        wrapper.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        wrapper.chmod(0o755)
    return work, bin_dir


def test_readme_walkthrough(registry: RegistryProcess, tmp_path: Path) -> None:
    work, bin_dir = _reader_machine(tmp_path)
    mountpoint = tmp_path / "mnt"
    own_mount = tmp_path / "home-artfs"
    # What differs on a reader's machine; everything else runs as printed.
    replacements = {
        "/mnt/artfs": str(mountpoint),
        "~/artfs": str(own_mount),
        "http://127.0.0.1:8765": registry.url,
        "/data/shared": str(tmp_path / "shared"),
    }
    env = {
        **os.environ,
        "ARTFS_URL": registry.url,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    # scripts/start's mount, which the examples assume is running.
    with mounted(mountpoint, registry.url, tmp_path / "cache"):
        try:
            walk = readme_blocks(README.read_text())
            walk += readme_blocks(GUIDE.read_text(), GUIDE_SECTIONS)
            for block in walk:
                text = block.text
                for old, new in replacements.items():
                    text = text.replace(old, new)
                if block.language == "python":
                    _run_python(text, work, env)
                else:
                    for command in shell_commands(text):
                        _run_shell(command, work, env)
            assert not own_mount.is_mount(), "the README's own mount was left mounted"
            assert (work / "input" / "x.npy").exists()
            assert (work / "weights" / "checkpoints" / "model.pt").exists()
        finally:
            if own_mount.is_mount():
                subprocess.run(["fusermount3", "-u", "-z", str(own_mount)], check=False)


def _run_shell(command: Command, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-c", command.line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    context = f"README command {command.line!r}:\n{result.stdout}{result.stderr}"
    assert result.returncode == 0, context
    assert "Traceback" not in result.stderr, context
    if command.expect is not None:
        lines = result.stdout.strip().splitlines()
        assert lines, context
        assert lines[-1] == command.expect, context


def _run_python(source: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"README Python example:\n{result.stdout}{result.stderr}"


def test_setup_puts_artfs_on_path() -> None:
    """After scripts/setup, ``artfs`` in the user's bin folder is this checkout's, and it runs."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "setup")], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    bin_dir = "/usr/local/bin" if os.geteuid() == 0 else str(Path.home() / ".local" / "bin")
    found = shutil.which("artfs", path=bin_dir)
    assert found is not None
    assert Path(found).resolve() == (ROOT / ".venv" / "bin" / "artfs").resolve()
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0, version.stderr
    assert shlex.split(version.stdout)[0] == "artfs,"
