"""Lineage on a real PostgreSQL: the migrations, a producer, uses, a walk, and the plans.

The registry's queries are SQLAlchemy Core so that they run on PostgreSQL too;
this runs the lineage part there (a server started in a temporary folder, on a
Unix socket only). The plans are read with sequential scans disabled: a plan
that still scans an edge table would have no index to use.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from artfs.server.lineage import Lineage, RunFields, graph_queries
from artfs.server.registry import Registry
from artfs.store.local import LocalBlobStore
from tests.support.postgres import commit_reference_version, engine

__all__ = ["engine"]  # the fixture, used by name

#: The index each step of a walk must search, by query (artfs.server.lineage).
INDEXES = {
    "producers": "run_outputs_pkey",
    "readers": "ix_run_inputs_version_id",
    "inputs": "run_inputs_pkey",
    "outputs": "ix_run_outputs_run_id",
}


def _commit(registry: Registry, name: str, run: str) -> str:
    source = {"run": run, "user": "u", "host": "h"}
    uri = f"https://example.invalid/{name}"
    return str(commit_reference_version(registry, name, uri, source=source)["version"])


def test_lineage_runs_on_postgresql(engine: Engine, tmp_path: Path) -> None:
    registry = Registry(engine, LocalBlobStore(tmp_path / "blobs"))
    lineage = Lineage(registry)
    assert _commit(registry, "data", "prep") == "v1"
    lineage.start_run("p", "train", RunFields(config={"lr": 0.1}))
    assert lineage.record_use("p", "train", RunFields(), "data", "v1")["recorded"] is True
    assert lineage.record_use("p", "train", RunFields(), "data", "v1")["recorded"] is False
    assert _commit(registry, "model", "train") == "v1"
    runs = lineage.version_runs("p", "data", "v1")
    assert runs["logged_by"]["id"] == "prep"
    assert [run["id"] for run in runs["used_by"]] == ["train"]
    up = lineage.graph("p", "model", "v1", "up", 3)
    assert {(e["run"], e["relation"], e["version"]) for e in up["edges"]} == {
        ("train", "logged", "model:v1"),
        ("train", "used", "data:v1"),
        ("prep", "logged", "data:v1"),
    }
    assert lineage.finish_run("p", "train")["finished_at"] is not None


def test_every_step_of_a_walk_searches_an_index_on_postgresql(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for name, query in graph_queries().items():
            compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
            assert "Seq Scan" not in plan, (name, plan)
            assert f"on {INDEXES[name]}" in plan or f"using {INDEXES[name]}" in plan, plan
