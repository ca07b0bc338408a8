"""The API document at /openapi.json is true of the server that serves it.

schemathesis generates requests from the document (valid and invalid ones) and
checks each answer of a real ``artfs serve`` against it: no 5xx, only declared
statuses, content types and bodies, valid requests accepted and invalid ones
refused. Exceptions, each with its reason, are in schemathesis.toml at the
repository's root; the rules no schema can state are in
tests/support/openapi_hooks.py. Bounded here (examples per operation, a timeout
per request); runs by hand go further (docs/design.md, "The API document").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

import tests.support.openapi_hooks  # noqa: F401  (registers the hooks)
from artfs.server.auth import OPEN_PATHS
from tests.support.registry import RegistryProcess, auth_headers

CONFIG = Path(__file__).parents[2] / "schemathesis.toml"
#: Per operation and generation mode (valid, invalid): ~30 operations, ~600 cases.
MAX_EXAMPLES = 10
#: Seconds a request may take before its case fails; a hung server fails, not hangs.
REQUEST_TIMEOUT = 30.0
#: Every method the server might route; the document must name each one it does.
METHODS = ("get", "head", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A registry of its own: schemathesis creates and deletes at random."""
    server = RegistryProcess(tmp_path_factory.mktemp("openapi-registry") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(api_server: RegistryProcess) -> Any:
    config = SchemathesisConfig.from_path(CONFIG)
    project = config.projects.default
    project.update(request_timeout=REQUEST_TIMEOUT)
    # The token is the test's to send (auth_headers), not a value to fuzz.
    project.generation.update(with_security_parameters=False)
    return schemathesis.openapi.from_url(
        f"{api_server.url}/openapi.json", config=config, headers=auth_headers(), timeout=30
    )


def _fuzz(operation: Any, mode: GenerationMode, session: requests.Session) -> int:
    """Run MAX_EXAMPLES cases of ``operation`` in ``mode``; the number of requests made.

    Each request carries the admin token; the first valid request of an operation
    behind the token check is also sent without one, and its 401 must conform too.
    """
    made = 0
    anonymous = mode is GenerationMode.POSITIVE and operation.path not in OPEN_PATHS

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,  # no timed assertions: REQUEST_TIMEOUT bounds a hung server
        database=None,
        phases=[Phase.generate],  # a failure's message has its request; no shrinking
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        nonlocal made, anonymous
        made += 1
        case.call_and_validate(session=session, headers=auth_headers())
        if anonymous:
            anonymous = False
            made += 1
            response = case.call(session=session)
            assert response.status_code == 401, response.text
            case.validate_response(response)

    try:
        call()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (/healthz)
    return made


def test_every_answer_conforms_to_the_document(api_schema: Any) -> None:
    """Every operation, with valid and with invalid requests: 0 failures."""
    failures: list[str] = []
    cases = 0
    with requests.Session() as session:
        for result in api_schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    cases += _fuzz(operation, mode, session)
                except Exception as exc:  # every operation is tried; all failures are shown
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"schemathesis: {cases} requests, {len(failures)} failures")
    assert cases >= MAX_EXAMPLES * 2 * 20
    assert not failures, "\n\n".join(failures)


def _document(server: RegistryProcess) -> dict[str, Any]:
    response = requests.get(f"{server.url}/openapi.json", headers=auth_headers(), timeout=30)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def _routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    """(method, path) of each route, into included routers (FastAPI keeps them whole)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        for method in getattr(route, "methods", None) or ():
            yield method, route.path


def test_document_names_every_route_the_server_answers(api_server: RegistryProcess) -> None:
    """Each (method, path) the app routes is in the document, with its error answers."""
    from artfs.server.app import create_app
    from artfs.server.settings import ServerSettings

    app = create_app(ServerSettings(data_dir=api_server.data_dir.with_name("routes-only")))
    served = {
        (method.lower(), path)
        for method, path in _routes(app.routes)
        if path not in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
    }
    paths = _document(api_server)["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert served == documented
    for path, item in paths.items():
        for method, operation in item.items():
            declared = set(operation["responses"])
            assert "422" not in declared, f"{method} {path}: the server answers 400, never 422"
            # every body is bounded as it arrives; every API request needs a token
            wanted = {"408", "413"} | ({"400", "401", "403"} if path.startswith("/api/") else set())
            assert wanted <= declared, f"{method} {path} declares only {sorted(declared)}"
            assert operation["security"] == ([] if path in OPEN_PATHS else [{"bearer": []}])


def test_405_names_the_methods_allowed(api_server: RegistryProcess) -> None:
    paths = _document(api_server)["paths"]
    project = "/api/v1/projects/{project}"
    for template, path, allowed in (
        ("/healthz", "/healthz", "GET"),
        (f"{project}/artifacts", "/api/v1/projects/p/artifacts", "GET, POST"),
        (
            f"{project}/artifacts/{{name}}/versions/{{ref}}",
            "/api/v1/projects/p/artifacts/a/versions/v1",
            "GET, PATCH, DELETE",
        ),
    ):
        assert {method.upper() for method in paths[template]} == set(allowed.split(", "))
        for method in ("TRACE", "OPTIONS", "PUT"):
            response = requests.request(
                method, f"{api_server.url}{path}", headers=auth_headers(), timeout=30
            )
            assert response.status_code == 405, (method, path)
            assert response.headers["Allow"] == allowed, (method, path)
            assert response.json()["error"]["code"] == "method_not_allowed"


def test_refusals_in_the_validators_words(api_server: RegistryProcess) -> None:
    """What the document's patterns exclude, the validators refuse, with their messages."""
    base = f"{api_server.url}/api/v1/projects/p/artifacts"
    headers = auth_headers()
    cases = {
        f"{base}/a/versions?cursor=%C2%B2": "invalid cursor",  # '²' is a digit to str.isdigit
        f"{base}/a/versions?cursor={'9' * 30}": "invalid cursor",
        f"{base}/a/versions/v{'1' * 30}": "not a version number",
        f"{base}/a/versions/v0": "versions start at v1",
    }
    requests.post(base, json={"name": "a"}, headers=headers, timeout=30)
    for url, words in cases.items():
        response = requests.get(url, headers=headers, timeout=30)
        assert response.status_code == 400, (url, response.text)
        assert words in response.json()["error"]["message"]
    # pydantic alone would read true as 1; the document says integer
    response = requests.post(
        f"{base}/a/uploads", json={"ttl_seconds": True}, headers=headers, timeout=30
    )
    assert response.status_code == 400, response.text
    assert "not true or false" in response.json()["error"]["message"]
