"""The only code that talks HTTP to the registry, behind a typed interface.

``RegistryAPI`` (``protocol``) is what the client side asks of the registry,
with the dataclasses of ``models`` crossing it; ``RegistryClient`` (``http``)
implements it over ``requests``, with ``RangeReader`` (``ranged``) for ranged
blob reads into caller buffers, and ``Routes`` (``routes``) as the one place
that knows the registry's paths. Nothing here imports the cache, trio or FUSE.

Import from the modules (``artfs.client.http``, …): re-exporting the client
here would load ``requests`` into every process that only needs ``models``,
``artfs --help`` included.
"""
