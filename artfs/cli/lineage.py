"""``artfs lineage NAME:V``: the runs around a version, as an indented tree.

Up (``<-``) a version shows the run that logged it and the versions that run
used, and so on; down (``->``) the runs that used it and the versions they
logged. ``--depth`` counts levels of runs. The registry walks the graph
(``RegistryAPI.lineage``); this module only draws what it answered.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from artfs.cli.main import _Context, cli, pass_context
from artfs.errors import InvalidInput

if TYPE_CHECKING:
    from artfs.client.models import LineageGraph, RunInfo

__all__ = ["draw"]

#: What one level adds to the indent: under "  <- logged by …", a version at 7.
STEP = " " * 7


def _describe(run: RunInfo) -> str:
    where = f"{run.user}@{run.host}" + (f":{run.mount}" if run.mount else "")
    said = f": {run.message}" if run.message else ""
    return f"{run.kind} {run.id} ({where}){said}"


def draw(graph: LineageGraph, up: bool, down: bool) -> list[str]:
    """The lines ``artfs lineage`` prints for ``graph``."""
    runs = {run.id: run for run in graph.runs}
    logged_by: dict[str, list[str]] = defaultdict(list)  # version -> runs
    used_by: dict[str, list[str]] = defaultdict(list)
    used: dict[str, list[str]] = defaultdict(list)  # run -> versions
    logged: dict[str, list[str]] = defaultdict(list)
    for edge in graph.edges:
        if edge.relation == "logged":
            logged_by[edge.version].append(edge.run)
            logged[edge.run].append(edge.version)
        else:
            used_by[edge.version].append(edge.run)
            used[edge.run].append(edge.version)
    lines = [graph.root]

    def walk(version: str, pad: str, on_path: set[str], upward: bool) -> None:
        across, then = (logged_by, used) if upward else (used_by, logged)
        arrow = "<- logged by" if upward else "-> used by"
        verb = "used" if upward else "logged"
        for run_id in across.get(version, []):
            lines.append(f"{pad}  {arrow} {_describe(runs[run_id])}")
            for other in then.get(run_id, []):
                lines.append(f"{pad}{STEP}{verb} {other}")
                if other not in on_path:  # a mount may read what it committed
                    walk(other, pad + STEP, on_path | {other}, upward)

    if up:
        walk(graph.root, "", {graph.root}, True)
    if down:
        walk(graph.root, "", {graph.root}, False)
    if graph.truncated:
        lines.append("(more: the registry stopped at its limit; ask with a smaller --depth)")
    return lines


@cli.command()
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--up", is_flag=True, help="Only producers: who logged it, and what they used.")
@click.option("--down", is_flag=True, help="Only consumers: who used it, and what they logged.")
@click.option(
    "--depth",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Levels of runs to follow.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the graph as JSON instead.")
@pass_context
def lineage(ctx: _Context, ref: str, up: bool, down: bool, depth: int, as_json: bool) -> None:
    """The runs that logged and used a version, up and down (both without a flag)."""
    if up and down:
        raise InvalidInput("--up and --down exclude each other; give neither for both ways")
    direction = "up" if up else "down" if down else "both"
    with ctx.client() as client:
        logged = client.get_artifact(ref)
        graph = client.registry.lineage(logged.name, logged.version, direction, depth)
    if as_json:
        click.echo(json.dumps(asdict(graph), indent=2, default=str, ensure_ascii=False))
        return
    for line in draw(graph, up=direction != "down", down=direction != "up"):
        click.echo(line)
