"""Runs and lineage against a real registry: the SDK, the CLI, the routes' scopes, the
query plans, and offline clients (the mount's side is in test_lineage_mount.py)."""

from __future__ import annotations

import getpass
import io
import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.dialects import sqlite

import artfs
from artfs.errors import InvalidInput, NotFound, Offline
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.lineage import graph_queries
from tests.integration.test_auth import api, ask, make_token
from tests.integration.test_cli import fails, ok
from tests.support.registry import RegistryProcess, auth_headers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def artifact_of(name: str, data: bytes) -> artfs.Artifact:
    artifact = artfs.Artifact(name, type="dataset")
    artifact.add(io.BytesIO(data), logical_path="f.bin")
    return artifact


class Chain:
    """prep logs data:v1; train reads it and logs model:v1; evaluate reads the model."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.data, self.model = unique("data"), unique("model")
        self.prep, self.train, self.evaluate = unique("prep"), unique("train"), unique("eval")
        with artfs.init(self.prep, url=url) as run:
            run.log_artifact(artifact_of(self.data, b"rows"))
        with artfs.init(self.train, config={"lr": 0.01}, url=url) as run:
            used = run.use_artifact(f"{self.data}:latest")
            assert used.version == "v1"
            run.use_artifact(used)  # again: still one use
            self.logged = run.log_artifact(artifact_of(self.model, b"weights"), aliases=["best"])
        with artfs.init(self.evaluate, url=url) as run:
            run.use_artifact(f"{self.model}:best")


@pytest.fixture
def chain(shared_registry: RegistryProcess) -> Chain:
    return Chain(shared_registry.url)


def test_a_run_logs_another_uses_it_and_lineage_reads_both_ways(chain: Chain) -> None:
    assert chain.logged.aliases == ["best", "latest"]
    client = artfs.Client(url=chain.url)
    model = client.get_artifact(f"{chain.model}:v1")
    producer = model.logged_by()
    assert producer is not None
    assert producer.id == chain.train
    assert (producer.kind, producer.user, producer.host) == (
        "run",
        getpass.getuser(),
        socket.gethostname(),
    )
    assert producer.config == {"lr": 0.01}
    assert producer.finished_at is not None
    assert producer.finished_at >= producer.started_at
    assert model.source["run"] == chain.train
    assert [run.id for run in model.used_by()] == [chain.evaluate]
    data = client.get_artifact(chain.data, "v1")
    assert [run.id for run in data.used_by()] == [chain.train]  # used twice, recorded once
    data_producer = data.logged_by()
    assert data_producer is not None
    assert data_producer.id == chain.prep

    up = client.registry.lineage(chain.model, "v1", "up", 3)
    assert {(e.run, e.relation, e.version) for e in up.edges} == {
        (chain.train, "logged", f"{chain.model}:v1"),
        (chain.train, "used", f"{chain.data}:v1"),
        (chain.prep, "logged", f"{chain.data}:v1"),
    }
    down = client.registry.lineage(chain.data, "v1", "down", 3)
    assert {(e.run, e.relation, e.version) for e in down.edges} == {
        (chain.train, "used", f"{chain.data}:v1"),
        (chain.train, "logged", f"{chain.model}:v1"),
        (chain.evaluate, "used", f"{chain.model}:v1"),
    }
    assert {run.id for run in down.runs} == {chain.train, chain.evaluate}
    # One level of runs: the producer and what it read, not what made that.
    shallow = client.registry.lineage(chain.model, "v1", "up", 1)
    assert chain.prep not in {e.run for e in shallow.edges}
    # Through a collection, a run uses the version the member links.
    client.get_artifact(chain.model, "v1").link(f"model-registry/{chain.model}", ["production"])
    with artfs.init(serving := unique("serve"), url=chain.url) as run:
        linked = run.use_artifact(f"model-registry/{chain.model}:production")
        assert (linked.name, linked.version) == (chain.model, "v1")
    assert [run.id for run in model.used_by()] == [chain.evaluate, serving]
    client.close()


def test_runs_refuse_bad_ids_and_a_finished_run_refuses_work(
    shared_registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInput):
        artfs.init("no/slashes", url=shared_registry.url)
    monkeypatch.setenv("ARTFS_RUN", run_id := unique("from-env"))
    run = artfs.init(url=shared_registry.url, config={"epochs": 3})
    assert run.id == run_id
    run.finish()
    with pytest.raises(InvalidInput, match="finished"):
        run.use_artifact("anything:v1")
    monkeypatch.delenv("ARTFS_RUN")
    with artfs.init(url=shared_registry.url) as generated:
        assert re.fullmatch(r"run-[0-9a-f]{12}", generated.id)
        with pytest.raises(NotFound):
            generated.use_artifact(f"{unique('absent')}:v1")
    # The routes refuse bad input with 400 and change nothing.
    base = api(shared_registry.url)
    bad_depth = requests.get(
        f"{base}/artifacts/x/versions/v1/lineage", params={"depth": 0}, headers=auth_headers()
    )
    assert bad_depth.status_code == 400
    bad_kind = requests.put(f"{base}/runs/r1", json={"kind": "job"}, headers=auth_headers())
    assert bad_kind.status_code == 400
    assert requests.get(f"{base}/runs/r1", headers=auth_headers()).status_code == 404


def test_lineage_cli_prints_the_graph_up_and_down(chain: Chain) -> None:
    up = ok(chain.url, "lineage", f"{chain.model}:best", "--up")
    assert up.stdout.splitlines() == [
        f"{chain.model}:v1",
        f"  <- logged by run {chain.train} ({getpass.getuser()}@{socket.gethostname()})",
        f"       used {chain.data}:v1",
        f"         <- logged by run {chain.prep} ({getpass.getuser()}@{socket.gethostname()})",
    ]
    down = ok(chain.url, "lineage", f"{chain.data}:v1", "--down", "--depth", "1")
    assert down.stdout.splitlines() == [
        f"{chain.data}:v1",
        f"  -> used by run {chain.train} ({getpass.getuser()}@{socket.gethostname()})",
        f"       logged {chain.model}:v1",
    ]
    both = ok(chain.url, "lineage", f"{chain.model}:v1", "--depth", "1")
    assert f"logged by run {chain.train}" in both.stdout
    assert f"used by run {chain.evaluate}" in both.stdout
    graph = json.loads(ok(chain.url, "lineage", f"{chain.data}:v1", "--down", "--json").stdout)
    assert graph["root"] == f"{chain.data}:v1"
    assert {edge["run"] for edge in graph["edges"]} == {chain.train, chain.evaluate}
    assert "--up and --down" in fails(chain.url, "lineage", f"{chain.model}:v1", "--up", "--down")
    assert "depth" in fails(chain.url, "lineage", f"{chain.model}:v1", "--depth", "0")


def test_new_routes_check_scopes_and_projects(registry: RegistryProcess) -> None:
    with artfs.init("maker", url=registry.url) as run:
        run.log_artifact(artifact_of("a", b"bytes"))
    base = api(registry.url)
    use = {"json": {"artifact": "a", "version": "v1", "kind": "mount", "host": "h"}}
    routes: dict[str, tuple[str, str, dict[str, Any]]] = {
        "run": ("GET", f"{base}/runs/maker", {}),
        "runs of a version": ("GET", f"{base}/artifacts/a/versions/v1/runs", {}),
        "lineage": ("GET", f"{base}/artifacts/a/versions/v1/lineage", {}),
        "use": ("POST", f"{base}/runs/reader/uses", use),
        "start": ("PUT", f"{base}/runs/other", {"json": {}}),
        "finish": ("POST", f"{base}/runs/maker/finish", {}),
    }
    _, reader = make_token(registry.url, "read")
    for kind in ("run", "runs of a version", "lineage", "use"):
        assert ask(*routes[kind], f"Bearer {reader}").status_code == 200, kind
    for kind in ("start", "finish"):
        assert ask(*routes[kind], f"Bearer {reader}").status_code == 403, kind
    _, writer = make_token(registry.url, "write")
    for kind in ("start", "finish"):
        assert ask(*routes[kind], f"Bearer {writer}").status_code == 200, kind
    _, stranger = make_token(registry.url, "admin", project="elsewhere")
    for kind, route in routes.items():
        assert ask(*route, f"Bearer {stranger}").status_code == 404, kind
    for kind, route in routes.items():
        assert ask(*route, None).status_code == 401, kind
    # An SDK run with a read token: not started or finished, but its uses recorded.
    with artfs.init("read-only", url=registry.url, token=reader) as run:
        assert run.info is None
        run.use_artifact("a:v1")
    # The read token's uses were recorded, as a mount's would be.
    runs = requests.get(f"{base}/artifacts/a/versions/v1/runs", headers=auth_headers()).json()
    assert [r["id"] for r in runs["used_by"]] == ["reader", "read-only"]
    assert runs["logged_by"]["id"] == "maker"


def test_lineage_queries_are_answered_from_indexes(tmp_path: Path) -> None:
    """Every query of a walk searches by index: no full scan of a table that grows."""
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(engine)
    try:
        with engine.connect() as conn:
            for name, query in graph_queries().items():
                compiled = query.compile(
                    dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
                )
                plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
                assert plan, name
                for step in plan:
                    assert not step.startswith("SCAN"), (name, plan)
                assert any("INDEX" in step or "PRIMARY KEY" in step for step in plan), plan
    finally:
        engine.dispose()


def test_offline_lineage_reads_refuse_and_a_run_still_reads(
    registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with artfs.init("online", url=registry.url) as run:
        run.log_artifact(artifact_of("a", b"bytes"))
        run.use_artifact("a:v1").download(registry.data_dir.parent / "first")
    registry.stop()
    monkeypatch.setenv("ARTFS_OFFLINE", "1")
    client = artfs.Client(url=registry.url)
    logged = client.get_artifact("a:v1")  # from the answer book
    with pytest.raises(Offline, match="runs of a:v1"):
        logged.logged_by()
    with pytest.raises(Offline):
        logged.used_by()
    with pytest.raises(Offline, match="lineage"):
        client.registry.lineage("a", "v1")
    # A run offline reads what the machine holds; what it would record is dropped.
    with artfs.init("offline-run", url=registry.url) as run:
        assert run.info is None
        assert run.use_artifact("a:v1").version == "v1"
    assert "lineage" in fails(registry.url, "lineage", "a:v1")
