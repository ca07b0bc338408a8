"""``FaultProxy`` itself, in front of a real registry: each fault does what it says, once."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import artfs
from tests.support.fault_proxy import BLOB_READS, Fault, FaultProxy
from tests.support.polling import wait_until
from tests.support.registry import TEST_TOKEN, RegistryProcess, auth_headers

DATA = os.urandom(200_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def blob_url(shared_registry: RegistryProcess) -> str:
    """The path of a blob the shared registry holds (``DATA``), under any base URL."""
    artifact = artfs.Artifact("fault-proxy-blob", type="dataset")
    artifact.add(io.BytesIO(DATA), logical_path="data.bin")
    with artfs.Client(url=shared_registry.url, token=TEST_TOKEN, use_cache=False) as sdk:
        sdk.log_artifact(artifact)
    return f"/api/v1/projects/default/blobs/{DIGEST}"


@pytest.fixture
def proxy(shared_registry: RegistryProcess) -> Iterator[FaultProxy]:
    with FaultProxy(shared_registry.url) as proxy:
        yield proxy


def get(proxy: FaultProxy, path: str, **headers: str) -> requests.Response:
    return requests.get(proxy.url + path, headers={**auth_headers(), **headers}, timeout=30)


def test_requests_pass_unchanged(proxy: FaultProxy, blob_url: str) -> None:
    with requests.Session() as session:  # one kept-alive connection, several requests
        for _ in range(3):
            answer = session.get(proxy.url + blob_url, headers=auth_headers(), timeout=30)
            assert answer.status_code == 200
            assert answer.content == DATA
    ranged = get(proxy, blob_url, Range="bytes=10-19")
    assert ranged.status_code == 206
    assert ranged.content == DATA[10:20]
    assert proxy.requests == 4
    assert not proxy.faults


def test_status_corrupt_and_cut_apply_as_many_times_as_asked(
    proxy: FaultProxy, blob_url: str
) -> None:
    proxy.add(Fault.status(503, method="GET", times=1))
    assert get(proxy, blob_url).status_code == 503
    assert get(proxy, blob_url).content == DATA

    proxy.add(Fault.corrupt(flips=1, path=BLOB_READS, times=1))
    assert get(proxy, "/healthz").ok  # not a blob read: untouched, the rule still armed
    damaged = get(proxy, blob_url).content
    assert len(damaged) == len(DATA)
    assert sum(a != b for a, b in zip(damaged, DATA, strict=True)) == 1
    assert get(proxy, blob_url).content == DATA

    proxy.add(Fault.cut(after=1000, path=BLOB_READS, times=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(proxy, blob_url)
    assert get(proxy, blob_url).content == DATA
    assert proxy.faults == {"status": 1, "corrupt": 1, "cut": 1}


def test_drop_closes_without_an_answer(proxy: FaultProxy, blob_url: str) -> None:
    proxy.add(Fault.drop(times=1))
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    connection.request("GET", blob_url, headers=auth_headers())
    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    connection.close()
    assert proxy.faults == {"drop": 1}


def test_a_hung_registry_answers_once_resumed(proxy: FaultProxy, blob_url: str) -> None:
    proxy.stop("hang")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, proxy, blob_url)
        wait_until(lambda: proxy.faults["hang"] == 1, "the request is held")
        assert not pending.done()
        proxy.resume()
        assert pending.result(timeout=30).content == DATA


def test_a_refusing_registry_comes_back_on_the_same_port(proxy: FaultProxy, blob_url: str) -> None:
    port = proxy.port
    proxy.stop("refuse")
    with pytest.raises(requests.ConnectionError):
        get(proxy, blob_url)
    proxy.resume()
    assert proxy.port == port
    assert get(proxy, blob_url).content == DATA
    assert proxy.faults["refuse"] >= 1
