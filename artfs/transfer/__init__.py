"""Moving blobs between local files, the registry and the machine's chunk cache.

For the SDK and for commits: parallel, retried, resumable and verified. Blocking
code on thread pools, never trio. Import from the modules
(``artfs.transfer.downloads``, …).
"""
