"""``Progress``: a byte counter that draws a bar only on a terminal and only for big transfers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["Progress"]

#: Below this many bytes a transfer is over too soon for a progress bar to help.
PROGRESS_THRESHOLD = 4 << 20


class Progress:
    def __init__(self, total: int, description: str, enabled: bool | None = None) -> None:
        show = sys.stderr.isatty() if enabled is None else enabled
        self._bar: tqdm[Any] | None = None
        if show and total >= PROGRESS_THRESHOLD:
            from tqdm import tqdm  # only now: most CLI runs draw no bar

            self._bar = tqdm(
                total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024
            )

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
