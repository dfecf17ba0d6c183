"""The command line's progress bar: one line on stderr, redrawn in place, for bytes downloaded or steps done.

``weights [#######.......................]   12.3/46.8 MB`` while a weights file downloads,
``train [###############...............] 25/50 steps`` while a head trains or an atlas is made.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Literal

#: ``progress(done, total)``: ``total`` None or 0 when it is not known (a download without a length).
Progress = Callable[[int, int | None], None]

_WIDTH = 30


def progress_printer(label: str, *, counts: Literal["bytes", "steps"] = "bytes") -> Progress:
    """A progress callback that draws a one-line bar on stderr and ends the line when ``done`` reaches
    ``total``.

    Args:
        label: what is in progress, shown first (``"weights"``, ``"atlas"``, ``"train"``).
        counts: what ``done`` and ``total`` count: bytes (shown in MB) or steps.
    """

    def amount(done: int, total: int | None) -> str:
        if counts == "steps":
            return f"{done}/{total} steps" if total else f"{done} steps"
        return f"{done / 1e6:6.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:6.1f} MB"

    def progress(done: int, total: int | None) -> None:
        if total:
            filled = int(_WIDTH * done / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (_WIDTH - filled)}] {amount(done, total)}")
            if done >= total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(f"\r{label} {amount(done, total)}")
        sys.stderr.flush()

    return progress
