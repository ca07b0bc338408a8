"""DVCLive's exceptions (``dvclive.error``), as artfs raises them."""

from __future__ import annotations

from artfs.errors import InvalidInput

__all__ = ["DvcLiveError", "InvalidDataTypeError"]


class DvcLiveError(Exception):
    """Base of DVCLive's errors."""


class InvalidDataTypeError(DvcLiveError, InvalidInput):
    """``log_artifact`` was given a path that is neither a file nor a directory."""

    def __init__(self, name: object, val: object) -> None:
        InvalidInput.__init__(self, f"Data '{name}' has not supported type {val}")
