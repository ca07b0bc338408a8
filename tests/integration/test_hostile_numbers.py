"""Numbers no registry holds, in version ids, cursors and ranges: 400, never a 500."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import requests

import artfs
from tests.support.registry import RegistryProcess, auth_headers

DATA = os.urandom(1000)


@pytest.mark.parametrize(
    ("path", "range_header"),
    [
        ("/artifacts/{name}/versions/v9223372036854775808", None),  # past SQLite's INTEGER
        ("/artifacts/{name}/versions/v" + "9" * 5000, None),  # past int()'s 4,300 digits
        ("/artifacts/{name}/versions/v\u0663", None),  # an Arabic-Indic 3
        ("/artifacts/{name}/versions?cursor=99999999999999999999", None),
        ("/artifacts/{name}/versions?cursor=%C2%B2", None),  # '²': isdigit(), not int()
        ("/artifacts/{name}/versions?cursor=" + "9" * 5000, None),
        ("/blobs/{digest}", "bytes=" + "9" * 5000 + "-"),
        ("/blobs/{digest}", "bytes=0-" + "9" * 5000),
    ],
)
def test_numbers_past_any_version_or_blob_are_refused(
    shared_registry: RegistryProcess, name: str, path: str, range_header: str | None
) -> None:
    artifact = artfs.Artifact(name, type="dataset")
    artifact.add(io.BytesIO(DATA), logical_path="data.bin")
    with artfs.Client(url=shared_registry.url, use_cache=False) as client:
        client.log_artifact(artifact)
    url = (
        shared_registry.url
        + "/api/v1/projects/default"
        + path.format(name=name, digest=hashlib.sha256(DATA).hexdigest())
    )
    headers = {**auth_headers(), **({"Range": range_header} if range_header else {})}
    answer = requests.get(url, headers=headers, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"
