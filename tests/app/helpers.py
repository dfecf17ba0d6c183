"""What the AppTest tests read off a run (its visible text), and how they open a page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streamlit.testing.v1 import AppTest

from webui.shell.state import BACKBONE, WEIGHTS

ROOT = Path(__file__).resolve().parents[2]
#: What a page says: every element kind whose text a learner reads.
SAID = ("markdown", "caption", "title", "subheader", "info", "warning", "error")


def texts(at: AppTest, kinds: Sequence[str]) -> str:
    """The values of the elements of ``kinds`` (``"markdown"``, ``"caption"``...) of the last run, plus
    every image caption and progress text, as one string."""
    parts = [e.value for kind in kinds for e in at.get(kind)]
    parts += [c for image in at.image for c in image.captions]
    parts += [p.proto.text for p in at.get("progress")]
    return "\n".join(str(p) for p in parts)


def detectors_page(backbone: str, weights: str, model: str | None = None, *, timeout: float = 300) -> AppTest:
    """The Real detectors page run with ``backbone`` and ``weights`` chosen (and its model, when given)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.session_state[BACKBONE] = backbone
    at.session_state[WEIGHTS] = weights
    if model is not None:
        at.session_state[f"dense.model.{backbone}"] = model
    at.run()
    at.switch_page("app_pages/detectors.py").run()
    assert not at.exception, at.exception
    return at
