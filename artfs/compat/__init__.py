"""Code written for W&B, Comet or DVCLive, running on artfs with only its import changed.

``artfs.compat.wandb``, ``artfs.compat.comet`` and ``artfs.compat.dvclive``
offer the members of those APIs under their names, with their defaults, return
types and exceptions, and translate each call into the SDK (``artfs.sdk``):
they hold no policy of their own. docs/compat.md lists every member, its artfs
counterpart and the test that runs it, and says why any member is left out.
"""
