"""The registry's failures as domain errors, the same whichever HTTP client met them.

Both ``RegistryClient`` (``requests``) and ``RangeReader`` (``http.client``)
report through here, so a user reads one sentence for one failure.
"""

from __future__ import annotations

import json
import re

from artfs.errors import ArtfsError, Transient, error_for_code

__all__ = ["BodyCutOff", "error_from_answer", "tls_failure", "unreachable"]


class BodyCutOff(Transient):
    """An answer that broke off while its body was read: worth another try."""


def unreachable(url: str) -> Transient:
    """The one error for a registry nobody answers at ``url``, whichever path found out.

    Users met urllib3's ``HTTPConnectionPool(...): Max retries exceeded ...``
    here; what helps is the URL that was tried and the two ways to fix it.
    """
    return Transient(
        f"cannot reach the registry at {url} (start one with 'artfs serve', or set ARTFS_URL)"
    )


_VERIFY_FAILED = re.compile(r"certificate verify failed: ([^(\'\"]+)")


def tls_failure(url: str, exc: BaseException) -> Transient:
    """The error for a TLS handshake that failed, most often an untrusted certificate."""
    found = _VERIFY_FAILED.search(str(exc))
    if found is None:
        return Transient(f"TLS with the registry at {url} failed: {exc}")
    return Transient(
        f"the registry at {url} has a certificate this machine does not trust "
        f"({found.group(1).strip()}); for a private CA, give its certificate with "
        "--ca-bundle or ARTFS_CA_BUNDLE"
    )


def error_from_answer(status: int, body: bytes, source: str) -> ArtfsError:
    """The domain error of a registry's error answer (its JSON ``error`` body, if any)."""
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "error", f"HTTP {status} from {source}"
    if status >= 500 and code in ("error", "internal", "http_error"):
        return Transient(f"registry error ({status}): {message}")
    return error_for_code(code, message)
