"""``Run``: one run of a program, the versions it reads and the versions it logs.

::

    with artfs.init(run="train-42", config={"lr": 0.01}) as run:
        data = run.use_artifact("mnist:production")     # recorded: train-42 read mnist:v3
        run.log_artifact(model_artifact)                # recorded: train-42 produced model:v7

The registry keeps the run (id, project, user, host, config, start and finish
times) and both edges, so ``LoggedArtifact.logged_by()``/``used_by()`` and
``artfs lineage`` can answer (docs/design.md, "Runs and lineage"). The run id
is the one given, else ``$ARTFS_RUN``, else a generated one; a run named again
(a restarted job) is the same run.

Offline (``ARTFS_OFFLINE=1``) a run still reads what the machine holds; what it
would record is dropped with a warning, since the registry cannot be told.
With a ``read`` token a run cannot be started or finished (``write``), but its
uses are recorded all the same (a use needs ``read``, and makes the run).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from artfs import names
from artfs.client.models import RunInfo, RunStart
from artfs.errors import Forbidden, InvalidInput, Offline

if TYPE_CHECKING:
    from artfs.sdk.artifact import Artifact
    from artfs.sdk.client import Client
    from artfs.sdk.logged import LoggedArtifact

__all__ = ["Run", "init", "new_run_id"]

log = logging.getLogger("artfs.run")

T = TypeVar("T")


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


class Run:
    """A run of ``client``'s project; ``init`` makes one with a client of its own."""

    def __init__(
        self,
        client: Client,
        run_id: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        owns_client: bool = False,
    ) -> None:
        from artfs.sdk.client import default_source

        self.client = client
        #: The run's id: the one given, else ``$ARTFS_RUN``, else a generated one.
        self.id: str = names.check_name(run_id or os.environ.get("ARTFS_RUN") or new_run_id())
        self.config: dict[str, Any] = names.check_metadata(dict(config or {}), "run config")
        self._owns_client = owns_client
        self._source = {**default_source(), "run": self.id, "kind": "run"}
        self._start = RunStart(
            kind="run",
            user=str(self._source["user"]),
            host=str(self._source["host"]),
            config=self.config,
        )
        self._used: set[tuple[str, str]] = set()
        self.finished = False
        #: The run as the registry recorded it (None offline).
        self.info: RunInfo | None = self._recorded(
            lambda: client.registry.start_run(self.id, self._start), "start", read_only_ok=True
        )

    def __repr__(self) -> str:
        return f"<Run {self.id}>"

    def _recorded(self, call: Callable[[], T], what: str, read_only_ok: bool = False) -> T | None:
        """``call()``, or None with a warning if the client is offline (nothing recorded)
        or, where ``read_only_ok``, if the token may only read."""
        try:
            return call()
        except Offline as exc:
            log.warning("run %s: %s not recorded: %s", self.id, what, exc.message)
        except Forbidden as exc:
            if not read_only_ok:
                raise
            log.info("run %s: %s not recorded (a read token): %s", self.id, what, exc.message)
        return None

    def log_artifact(
        self, artifact: Artifact, aliases: list[str] | None = None, force: bool = False
    ) -> LoggedArtifact:
        """Log ``artifact`` (with ``aliases`` added to its own) as produced by this run."""
        self._check_open()
        if aliases:
            artifact.aliases = sorted({*artifact.aliases, *map(names.check_alias, aliases)})
        return self.client.log_artifact(artifact, force=force, source=dict(self._source))

    def use_artifact(self, artifact: str | LoggedArtifact) -> LoggedArtifact:
        """The version ``"name:alias"`` (or a ``LoggedArtifact``), recorded as read by this run."""
        from artfs.sdk.logged import LoggedArtifact

        self._check_open()
        if isinstance(artifact, str):
            logged = self.client.get_artifact(artifact)
        elif isinstance(artifact, LoggedArtifact):
            logged = artifact
        else:
            raise InvalidInput(
                "use_artifact takes 'name:version' or a LoggedArtifact, "
                f"not {type(artifact).__name__}"
            )
        key = (logged.name, logged.version)
        if key not in self._used:
            registry = self.client.registry
            self._recorded(
                lambda: registry.record_use(self.id, self._start, logged.name, logged.version),
                f"use of {logged.name}:{logged.version}",
            )
            self._used.add(key)
        return logged

    def finish(self) -> None:
        """Record the run's end (once); a client ``init`` made is closed."""
        if self.finished:
            return
        self.finished = True
        try:
            if self.info is not None:
                self.info = self._recorded(
                    lambda: self.client.registry.finish_run(self.id), "end", read_only_ok=True
                )
        finally:
            if self._owns_client:
                self.client.close()

    def _check_open(self) -> None:
        if self.finished:
            raise InvalidInput(f"run {self.id} is finished")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.finish()


def init(
    run: str | None = None, *, config: dict[str, Any] | None = None, **client_options: Any
) -> Run:
    """Start (or resume) the run ``run`` with a client configured from the environment."""
    from artfs.sdk.client import Client

    client = Client(**client_options)
    try:
        return Run(client, run, config=config, owns_client=True)
    except BaseException:
        client.close()
        raise
