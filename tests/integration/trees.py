"""Directory trees for round-trip tests: build one with awkward content, read one back."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BIG_FILE", "make_tree", "push_tree", "read_tree", "write_tree"]

#: Logical path of the random file in :func:`make_tree`'s tree.
BIG_FILE = "models/ckpt/weights.bin"


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` (logical path -> bytes) below ``root``; returns ``root``."""
    for logical, data in files.items():
        target = root.joinpath(*logical.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def push_tree(url: str, name: str, root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` below ``root`` and log them as the next version of ``name``."""
    import artfs  # here, so that tests which never push need not import the SDK

    write_tree(root, files)
    artifact = artfs.Artifact(name)
    artifact.add(root)
    with artfs.Client(url=url) as client:
        client.log_artifact(artifact)


def make_tree(root: Path, big_size: int = 3 << 20) -> dict[str, bytes]:
    """Nested dirs, an empty file, a random ``big_size`` file and non-ASCII names."""
    files = {
        "README.md": b"# a dataset\n",
        "empty.txt": b"",
        BIG_FILE: os.urandom(big_size),
        "models/ckpt/config.json": b'{"layers": 12}\n',
        "data/train/part-0000.csv": b"x,y\n1,2\n" * 100,
        "data/train/deep/er/still/leaf.txt": b"leaf\n",
        "données/été.txt": "crème brûlée\n".encode(),
        "日本語/ファイル.txt": "こんにちは\n".encode(),
        "spaced dir/emoji 🎉.bin": bytes(range(256)),
    }
    write_tree(root, files)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` as logical path -> bytes (symlinks are an error)."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        assert not path.is_symlink(), f"unexpected symlink {path}"
        if path.is_file():
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found
