"""schemathesis hooks for the registry's API document: the rules no JSON Schema can state.

Imported by tests/integration/test_openapi_contract.py; for a run by hand,
``SCHEMATHESIS_HOOKS=tests.support.openapi_hooks st run ...``.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    """Drop manifests whose paths repeat or nest in a file: rules across entries (400)."""
    del context
    if not isinstance(body, dict) or not isinstance(body.get("files"), list):
        return True
    paths = [entry.get("path") for entry in body["files"] if isinstance(entry, dict)]
    named = [path for path in paths if isinstance(path, str)]
    if len(set(named)) != len(named):
        return False
    files = set(named)
    return not any(
        "/".join(path.split("/")[:depth]) in files
        for path in named
        for depth in range(1, path.count("/") + 1)
    )
