"""TLS: a registry bound beyond loopback serves HTTPS only, and clients verify it.

The certificate is self-signed, made by the test with the openssl CLI, so it
stands in for a private CA: clients given it (``--ca-bundle``,
``ARTFS_CA_BUNDLE``) push, pull and mount; clients without it are refused with
one clear line about the certificate.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import fails, ok
from tests.integration.trees import make_tree, read_tree
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess, free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=artfs-test",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_registry(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[RegistryProcess]:
    """A registry on every address (0.0.0.0), as one shared across machines is."""
    server = RegistryProcess(
        tmp_path / "registry-data", serve_args=["--host", "0.0.0.0"], tls=certificate
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artfs", "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_binding_beyond_loopback_without_tls_is_refused(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    data = tmp_path / "never"
    for host in ("0.0.0.0", "192.0.2.2", "::"):
        done = serve("--data", str(data), "--host", host)
        assert done.returncode == 1
        assert done.stderr == (
            f"artfs: error: binding {host} exposes the registry beyond this machine, so it "
            "needs TLS: give --tls-cert and --tls-key (or bind 127.0.0.1)\n"
        )
    half = serve("--data", str(data), "--host", "0.0.0.0", "--tls-cert", str(certificate[0]))
    assert half.returncode == 1
    assert half.stderr == (
        "artfs: error: --tls-cert and --tls-key go together: give both or neither\n"
    )
    assert not data.exists()


def test_clients_with_the_ca_bundle_push_pull_and_mount(
    tmp_path: Path,
    tls_registry: RegistryProcess,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = tls_registry.url
    assert url.startswith("https://")
    files = make_tree(tmp_path / "src")
    pushed = ok(url, "--ca-bundle", certificate[0], "push", "model", tmp_path / "src")
    assert pushed.stdout.strip().splitlines()[-1] == "v1"
    monkeypatch.setenv("ARTFS_CA_BUNDLE", str(certificate[0]))
    ok(url, "pull", "model:v1", tmp_path / "dest")
    assert read_tree(tmp_path / "dest") == files
    with mounted(tmp_path / "mnt", url, tmp_path / "cache") as mount:
        assert read_tree(mount.path / "model" / "v1") == files


def test_clients_without_it_meet_a_clear_certificate_error(
    tmp_path: Path, tls_registry: RegistryProcess
) -> None:
    line = fails(tls_registry.url, "ls")
    assert line == (
        f"artfs: error: the registry at {tls_registry.url} has a certificate this machine "
        "does not trust (self-signed certificate); for a private CA, give its certificate "
        "with --ca-bundle or ARTFS_CA_BUNDLE"
    )
