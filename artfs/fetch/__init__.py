"""Getting blob chunks into the cache: parallel ranged fetches, single flight, read-ahead.

Import from the modules (``artfs.fetch.fetcher``, …): re-exporting them here
would load trio into every process that imports just one of them.
"""
