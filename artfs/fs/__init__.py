"""The pyfuse3 adapter: the only package that imports pyfuse3 or raises ``FUSEError``."""
