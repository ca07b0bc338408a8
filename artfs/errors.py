"""The domain exception tree, shared by the server, the client, the SDK and the mount.

::

    ArtfsError
     ├── InvalidInput          bad name, path, metadata, JSON, range …      (400)
     │    ├── DigestMismatch   uploaded bytes do not hash to the claimed digest
     │    └── MissingReferences  a download left out references (not fetched yet)
     ├── Unauthorized          no or invalid token                          (401)
     ├── Forbidden             token lacks the scope                        (403)
     ├── NotFound              no such project, artifact, version, blob …   (404)
     ├── Conflict              alias CAS lost, label taken, state wrong …   (409)
     │    └── Finalized        a change to an artifact already logged or finalized
     ├── TooLarge              metadata or a request body over its limit    (413)
     ├── Corrupt               bytes received or cached fail verification
     │    └── SourceChanged    a reference's bytes differ from what was logged
     ├── ReadOnly              a write where only reading is allowed
     ├── NoSpace               local disk full
     ├── Offline               the network is off limits (ARTFS_OFFLINE) and the
     │                         answer is not on this machine
     ├── LocalError            any other local-disk errno, carried as it is (.staging)
     └── Transient             server unreachable, 5xx, timeout: worth a retry
          └── Busy             too many uploads of one caller at once       (429)

Each class carries a stable ``code`` string; the server sends it in its JSON
errors and the client turns it back into the same class, so a caller catches
``NotFound`` whether the lookup was local or remote. HTTP statuses are mapped in
``artfs.server.errors``, errnos in ``artfs.fs.errors``: one table each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "ArtfsError",
    "Busy",
    "Conflict",
    "Corrupt",
    "DigestMismatch",
    "Finalized",
    "Forbidden",
    "InvalidInput",
    "LocalError",
    "MissingReferences",
    "NoSpace",
    "NotFound",
    "Offline",
    "ReadOnly",
    "SourceChanged",
    "TooLarge",
    "Transient",
    "Unauthorized",
    "UnfetchedReference",
    "error_for_code",
]


class ArtfsError(Exception):
    """Base of every error artfs raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ArtfsError):
    code = "invalid_input"


class DigestMismatch(InvalidInput):
    code = "digest_mismatch"


class UnfetchedReference(NamedTuple):
    """A file a download did not write because its bytes live at ``uri``."""

    path: str
    uri: str


class MissingReferences(InvalidInput):
    """A download wrote every file but these references, whose bytes are not fetched yet.

    Raised after the other files are written, so a caller that can do without
    them (W&B's ``allow_missing_references=True``) loses nothing by asking again.
    """

    code = "missing_references"

    def __init__(self, message: str, references: Iterable[UnfetchedReference] = ()) -> None:
        super().__init__(message)
        self.references = list(references)


class Unauthorized(ArtfsError):
    code = "unauthorized"


class Forbidden(ArtfsError):
    code = "forbidden"


class NotFound(ArtfsError):
    code = "not_found"


class Conflict(ArtfsError):
    code = "conflict"


class Finalized(Conflict):
    """A change to a draft that is logged or finalized (W&B's ``ArtifactFinalizedError``):
    log a new draft instead (``LoggedArtifact.new_draft``)."""

    code = "finalized"


class TooLarge(ArtfsError):
    code = "too_large"


class Corrupt(ArtfsError):
    code = "corrupt"


class SourceChanged(Corrupt):
    """A reference whose source no longer holds what was logged (another digest, size,
    ETag, version or mtime): its bytes are refused, never handed out."""

    code = "source_changed"


class ReadOnly(ArtfsError):
    code = "read_only"


class NoSpace(ArtfsError):
    code = "no_space"


class Offline(ArtfsError):
    """Work that needs the registry, asked while artfs may not use the network.

    Not ``Transient``: retrying cannot help until the user lifts ``ARTFS_OFFLINE``.
    """

    code = "offline"


class Transient(ArtfsError):
    code = "transient"


class Busy(Transient):
    """The caller has as many requests of this kind running as the server allows."""

    code = "busy"


class LocalError(ArtfsError):
    """A local filesystem error whose errno the caller should see unchanged."""

    code = "local_error"

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


def _all_subclasses(cls: type[ArtfsError]) -> list[type[ArtfsError]]:
    found: list[type[ArtfsError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


_BY_CODE: dict[str, type[ArtfsError]] = {c.code: c for c in _all_subclasses(ArtfsError)}


def error_for_code(code: str, message: str) -> ArtfsError:
    """Rebuild the exception a peer reported by its ``code``; unknown codes stay generic."""
    cls = _BY_CODE.get(code, ArtfsError)
    if cls is LocalError:  # never sent over the wire; stay generic if it is
        cls = ArtfsError
    return cls(message)
