"""Semantic version labels in order: Comet's automatic numbering, and "only increasing".

A version's label is optional on input; when none is asked for, the registry
gives the next major version above every label the artifact ever had
(``1.0.0``, ``2.0.0``, …), as Comet does. A label asked for must be above
all of them (semver.org precedence: build metadata is ignored, a pre-release
sorts before its release), so labels grow with version numbers. Labels of
deleted versions count too: a label is never reused.
"""

from __future__ import annotations

from collections.abc import Iterable

from artfs import names

__all__ = ["FIRST", "highest", "next_label", "precedence"]

FIRST = "1.0.0"

#: A pre-release identifier's key: numbers sort before words, numbers by value.
_Identifier = tuple[int, int, str]


def precedence(label: str) -> tuple[int, int, int, int, tuple[_Identifier, ...]]:
    """A sort key giving semver.org 2.0.0 precedence (11.1-11.4)."""
    names.check_semver(label)
    core, _, _build = label.partition("+")
    release, dash, pre = core.partition("-")
    major, minor, patch = (int(part) for part in release.split("."))
    if not dash:
        return major, minor, patch, 1, ()
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
    )
    return major, minor, patch, 0, identifiers


def highest(labels: Iterable[str | None]) -> str | None:
    found = [label for label in labels if label is not None]
    return max(found, key=precedence) if found else None


def next_label(labels: Iterable[str | None]) -> str:
    """The label a version gets when it asks for none: one major above the highest."""
    top = highest(labels)
    return FIRST if top is None else f"{precedence(top)[0] + 1}.0.0"
