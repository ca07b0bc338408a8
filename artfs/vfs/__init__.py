"""The mounted tree as pure data: artifacts, versions, aliases, files; inode numbers.

Nothing here imports pyfuse3: ``artfs.fs`` translates between this and the kernel.
"""
