"""``artfs verify``: have the registry re-hash its stored blobs and quarantine bad ones.

People get one block per bad blob (what is wrong, whether it was moved aside,
which files of which versions name it) and a summary line; scripts get
``--json``, the report's fields as the registry API names them. A bad blob
makes the verb fail (exit 1, one ``artfs: error:`` line that says which
versions to push again), so a cron job or the soak notices.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from artfs import names
from artfs.cli.main import _Context, cli, pass_context
from artfs.cli.output import count, human_size
from artfs.errors import Corrupt

if TYPE_CHECKING:
    from tqdm import tqdm

    from artfs.client.models import VerifyProgress, VerifyReport

__all__ = ["verify"]

#: Files named under a bad blob before saying how many more there are.
SHOWN_USES = 5


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION]", required=False)
@click.option("--all", "everything", is_flag=True, help="Every committed version of every project.")
@click.option("--dry-run", is_flag=True, help="Report bad blobs; quarantine nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON object.")
@pass_context
def verify(ctx: _Context, ref: str | None, everything: bool, dry_run: bool, as_json: bool) -> None:
    """Re-hash the registry's stored blobs against the versions that name them.

    A blob whose bytes are wrong is quarantined (never served again) unless
    --dry-run; pushing the same bytes again restores it. Exits 1 if any is bad.
    """
    if everything == (ref is not None):
        raise click.UsageError(
            "give NAME[:VERSION] or --all (one of them)", ctx=click.get_current_context()
        )
    from artfs.client.models import VerifyProgress

    name = version = None
    if ref is not None:
        name, _, version = ref.partition(":")
        names.check_name(name)
        if version:
            names.parse_version_ref(version)
    with ctx.client() as client, _ProgressLine() as progress:
        report = client.registry.verify(
            name, version or None, dry_run=dry_run, on_progress=progress.show
        )
        progress.show(VerifyProgress(report.blobs_checked, report.bytes_hashed))
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2, ensure_ascii=False))
    else:
        for line in _human(report):
            click.echo(line)
    if report.bad:
        versions = ", ".join(report.needs_reupload) or "no committed version names them"
        action = "would quarantine" if dry_run else "quarantined"
        raise Corrupt(
            f"{count(len(report.bad), 'bad blob')} in {report.scope} ({action}); "
            f"push these versions' bytes again: {versions}"
        )


class _ProgressLine:
    """Bytes hashed so far and the pace, on stderr when it is a terminal (a long run is
    an hour per TiB); nothing in a pipe."""

    def __init__(self) -> None:
        self._bar: tqdm[Any] | None = None
        self._shown = 0

    def show(self, progress: VerifyProgress) -> None:
        if self._bar is None:
            if not sys.stderr.isatty():
                return
            from tqdm import tqdm

            self._bar = tqdm(desc="verify", unit="B", unit_scale=True, unit_divisor=1024)
        self._bar.update(progress.bytes_hashed - self._shown)
        self._bar.set_postfix_str(count(progress.blobs_checked, "blob"))
        self._shown = progress.bytes_hashed

    def __enter__(self) -> _ProgressLine:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _human(report: VerifyReport) -> list[str]:
    lines = []
    for bad in report.bad:
        state = "quarantined" if bad.quarantined else "still in place (--dry-run)"
        lines.append(f"BAD {bad.problem}: blob {bad.digest} ({state}): {bad.detail}")
        for use in bad.used_by[:SHOWN_USES]:
            lines.append(f"    {use.project}/{use.artifact}:{use.version}  {use.path}")
        if len(bad.used_by) > SHOWN_USES:
            lines.append(f"    and {len(bad.used_by) - SHOWN_USES} more files")
    verdict = "all intact" if report.clean else count(len(report.bad), "bad blob")
    lines.append(
        f"{report.scope}: checked {count(report.blobs_checked, 'blob')}, "
        f"hashed {human_size(report.bytes_hashed)} in {report.seconds:.1f} s: {verdict}"
    )
    return lines
