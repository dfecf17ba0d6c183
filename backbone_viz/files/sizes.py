"""Sizes of files for people: one way to write them, in every message and table."""

from __future__ import annotations

import math
from typing import Literal

#: Binary units, as torchvision's ``_file_size`` and Streamlit's upload cap count them.
_UNITS = (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024))


def describe_size(n: int | None, *, rounding: Literal["nearest", "up", "down"] = "nearest") -> str:
    """``n`` bytes as ``"98 MB"``, ``"4.2 MB"``, ``"312 kB"``, ``"900 bytes"`` or ``"unknown size"``.

    Args:
        n: a size in bytes, or None when unknown.
        rounding: ``"nearest"`` for a figure to read (a tenth below 10 units, whole units above);
            ``"up"`` for a file and ``"down"`` for a limit, to a tenth, so that a file one byte over a
            limit never reads as "20 MB, more than the limit of 20 MB".

    Raises:
        ValueError: a negative size.
    """
    if n is None:
        return "unknown size"
    if n < 0:
        raise ValueError(f"size must be >= 0, got {n}")
    for unit, scale in _UNITS:
        if n >= scale:
            value = n / scale
            if rounding == "nearest":
                return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
            tenths = math.ceil(value * 10) if rounding == "up" else math.floor(value * 10)
            return f"{tenths / 10:g} {unit}"
    return f"{n} bytes"
