"""How the CLI writes for people: sizes, counts with their nouns, aligned tables, and JSON.

Human output is the same on a terminal and in a pipe (a script that wants
stable fields asks for ``--json``), so nothing here looks at ``isatty``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from typing import Literal

import click

__all__ = [
    "Column",
    "count",
    "echo_json",
    "human_size",
    "local_time",
    "table",
]

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(size: int) -> str:
    """Binary units with one decimal, as ``ls -lh`` and ``du -h`` do: ``7 B``, ``1.2 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        # 1023.96 KiB would print as "1024.0 KiB": the next unit reads better.
        if round(value, 1) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable: the last unit returns")


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 version``, ``2 versions``, ``1,234 chunks``."""
    word = noun if number == 1 else (plural or f"{noun}s")
    return f"{number:,} {word}"


def local_time(iso: str | None) -> str:
    """An ISO timestamp from the registry (UTC) as this machine's local time, to the second."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Column:
    header: str
    #: ``>`` for numbers and sizes, so that their digits line up.
    align: Literal["<", ">"] = "<"


def table(columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> list[str]:
    """A header and rows, each column as wide as its widest cell, two spaces apart.

    The last column is not padded, so that lines carry no trailing blanks and a
    long last cell (a path) does not widen the others.
    """
    body = [list(row) for row in rows]
    widths = [
        max([len(column.header), *(len(row[index]) for row in body)])
        for index, column in enumerate(columns)
    ]
    lines = []
    for cells in [[column.header for column in columns], *body]:
        padded = [
            cell
            if index == len(columns) - 1 and column.align == "<"
            else f"{cell:{column.align}{widths[index]}}"
            for index, (column, cell) in enumerate(zip(columns, cells, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return lines


def echo_json(items: Sequence[object]) -> None:
    """A JSON list on stdout, one object per item (dataclasses as their fields)."""
    click.echo(
        json.dumps(
            [
                asdict(item) if is_dataclass(item) and not isinstance(item, type) else item
                for item in items
            ],
            indent=2,
            ensure_ascii=False,
        )
    )
