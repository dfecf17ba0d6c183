"""What the AppTest tests read off a run: its visible text."""

from __future__ import annotations

from collections.abc import Sequence

from streamlit.testing.v1 import AppTest


def texts(at: AppTest, kinds: Sequence[str]) -> str:
    """The values of the elements of ``kinds`` (``"markdown"``, ``"caption"``...) of the last run, plus
    every image caption and progress text, as one string."""
    parts = [e.value for kind in kinds for e in at.get(kind)]
    parts += [c for image in at.image for c in image.captions]
    parts += [p.proto.text for p in at.get("progress")]
    return "\n".join(str(p) for p in parts)
