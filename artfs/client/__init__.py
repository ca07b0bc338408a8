"""The only code that talks HTTP to the registry, behind a typed interface.

``RegistryAPI`` (``protocol``) is what the client side asks of the registry,
with the dataclasses of ``models`` crossing it; ``RegistryClient`` (``http``)
implements it over ``requests``, with ``RangeReader`` (``ranged``) for ranged
blob reads into caller buffers, and ``Routes`` (``routes``) as the one place
that knows the registry's paths. Nothing here imports the cache, trio or FUSE.
"""

from artfs.client.http import RegistryClient

__all__ = ["RegistryClient"]
