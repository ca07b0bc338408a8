"""The benchmark table: one row per target, medians of the runs, printed as Markdown."""

# The table is Markdown for the README: it writes the multiplication sign for "times".
# ruff: noqa: RUF001

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

#: How a row is judged: ``ratio >=`` / ``ratio <=`` compare artfs / reference (rates or
#: times); ``below`` / ``at most`` compare the artfs figure itself with the target.
Judge = Literal["ratio >=", "ratio <=", "below", "at most"]
DIGITS = {"MB/s": 1, "s": 3, "req/s": 0, "MiB": 1, "chunks/read": 2, "CPU-s/GiB": 2}


@dataclass
class TableRow:
    key: str
    what: str
    #: What the reference is (tool and cache state), "" when the row has none.
    reference: str
    unit: str
    judge: Judge
    target: float
    target_text: str
    artfs: list[float] = field(default_factory=list)
    ref: list[float] = field(default_factory=list)
    #: Printed after the figure in the artfs cell (e.g. the request count of a pull).
    artfs_suffix: str = ""
    #: A second condition of the target (the pull's request count), judged by the row.
    also_met: bool | None = None
    #: Context printed under the table and written to the JSON (CPU, mount times …).
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: Why the row was not measured ("needs torch"): printed in its cells, never a figure.
    skipped: str = ""

    def median(self) -> float | None:
        return statistics.median(self.artfs) if self.artfs else None

    def ref_median(self) -> float | None:
        return statistics.median(self.ref) if self.ref else None

    def ratio(self) -> float | None:
        artfs, ref = self.median(), self.ref_median()
        if artfs is None or ref is None or not ref:
            return None
        return artfs / ref

    def met(self) -> bool | None:
        if self.skipped:
            return None
        value = self.ratio() if self.judge.startswith("ratio") else self.median()
        if value is None:
            return None
        ok = {
            "ratio >=": value >= self.target,
            "ratio <=": value <= self.target,
            "below": value < self.target,
            "at most": value <= self.target,
        }[self.judge]
        return ok and self.also_met is not False

    def figure(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:.{DIGITS.get(self.unit, 2)}f} {self.unit}"

    def summary(self) -> dict[str, Any]:
        return {
            "row": self.key,
            "what": self.what,
            "reference": self.reference or None,
            "unit": self.unit,
            "artfs": self.median(),
            "reference_value": self.ref_median(),
            "ratio": self.ratio(),
            "target": self.target_text,
            "met": self.met(),
            "artfs_samples": self.artfs,
            "reference_samples": self.ref,
            "notes": self.notes,
            "skipped": self.skipped or None,
            **self.details,
        }


def markdown(rows: list[TableRow]) -> str:
    lines = [
        "| # | row | artfs | reference | ratio | target | met? |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for row in rows:
        ratio = row.ratio()
        reference = f"{row.figure(row.ref_median())} ({row.reference})" if row.reference else "—"
        met = {True: "yes", False: "**no**", None: "—"}[row.met()]
        artfs = row.figure(row.median()) + (f", {row.artfs_suffix}" if row.artfs_suffix else "")
        if row.skipped:
            artfs, met = f"skipped: {row.skipped}", "—"
        lines.append(
            f"| {row.key} | {row.what} | {artfs} | {reference} | "
            f"{'—' if ratio is None else f'{ratio:.2f}×'} | {row.target_text} | {met} |"
        )
    return "\n".join(lines)
