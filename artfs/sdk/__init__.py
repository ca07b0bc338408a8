"""The public Python API: build an ``Artifact``, ``log_artifact`` it, ``get_artifact`` it back."""
