"""``artfs serve --db postgresql://…`` and ``artfs token … --db``: the registry's metadata
on a real PostgreSQL (the server of tests/support/postgres.py), nothing of it in SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from sqlalchemy import Engine, text

from tests.integration.test_cli import fails, ok
from tests.support.postgres import engine
from tests.support.registry import RegistryProcess, auth_headers

__all__ = ["engine"]  # the fixture, used by name

TIMEOUT = 30


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_serve_keeps_tokens_and_versions_in_postgresql(engine: Engine, tmp_path: Path) -> None:
    # The first admin token is made straight in the database, as for a new deployment.
    made = ok("http://127.0.0.1:1", "token", "create", "--scope", "admin", "--db", _url(engine))
    secret = made.stdout.strip()
    data = tmp_path / "registry-data"
    server = RegistryProcess(data, database_url=_url(engine))
    server.start()
    try:
        answer = requests.get(
            f"{server.url}/api/v1/projects/p/artifacts",
            headers=auth_headers(secret),
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        source = tmp_path / "w.txt"
        source.write_text("weights\n")
        logged = ok(server.url, "log", source, "--name", "bert", "--type", "model")
        assert logged.stdout.strip().splitlines()[-1].endswith("v1")
        listed = ok(server.url, "ls", "bert", "--json")
        assert [v["version"] for v in json.loads(listed.stdout)] == ["v1"]
    finally:
        server.stop()
    # Everything lives in PostgreSQL: no SQLite database was made in the data folder.
    assert not (data / "registry.db").exists()
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM artifacts")).scalars().all()
    assert "bert" in names
    listed_tokens = ok("http://127.0.0.1:1", "token", "ls", "--db", _url(engine)).stdout
    assert secret not in listed_tokens


def test_a_database_url_artfs_does_not_take_is_refused_with_the_forms_it_does(
    tmp_path: Path,
) -> None:
    for bad in ("mysql://h/db", "postgresql+asyncpg://h/db", "not a url"):
        line = fails("http://127.0.0.1:1", "serve", "--data", tmp_path / "d", "--db", bad)
        assert "--db" in line
    assert not (tmp_path / "d").exists()
    line = fails("http://127.0.0.1:1", "token", "ls", "--data", tmp_path, "--db", "sqlite:///x")
    assert "not both" in line
