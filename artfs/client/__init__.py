"""The registry HTTP client (requests): API calls, retries, ranged reads. No FUSE here."""

from artfs.client.http import RegistryClient

__all__ = ["RegistryClient"]
