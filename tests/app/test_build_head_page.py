"""The "Build a head" page through AppTest: paint to segment (strokes given through the canvas's wrapper,
which AppTest cannot draw on) and a box from Grad-CAM per stage. Bundled backbone, no network."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import texts
from tests.conftest import count_model_runs
from webui.views import paint

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/build_head.py"
TIMEOUT = 120
RED, BLUE = paint.COLOURS[0][1], paint.COLOURS[1][1]


def _open(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.switch_page(PAGE)
    return at.run()


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info", "warning"))


def _strokes(object_rows: slice, background_rows: slice) -> np.ndarray:
    """A canvas's RGBA with a red (first label) band and a blue (second label) band, as the canvas sends."""
    side = paint.CANVAS_PX
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    rgba[object_rows, 120:180] = (*RED, 255)
    rgba[background_rows, 10:290] = (*BLUE, 255)
    return rgba


def _painting(monkeypatch: pytest.MonkeyPatch, rgba: np.ndarray | None) -> Callable[..., np.ndarray | None]:
    """Replaces the canvas (a browser component AppTest cannot paint on) by one that sends ``rgba``."""

    def canvas(picture, *, colour, key):
        return rgba

    monkeypatch.setattr(paint, "canvas", canvas)
    return canvas


# ------------------------------------------------------------------------------------------ strokes


def test_canvas_strokes_become_a_label_map_of_the_crop() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[0, 0] = (*RED, 255)  # label 0
    rgba[1, 1] = (*BLUE, 255)  # label 1
    rgba[2, 2] = (RED[0] - 20, RED[1] + 10, RED[2], 255)  # a stroke's slightly blended edge: still label 0
    rgba[3, 3] = (*RED, 40)  # too transparent: unpainted
    rgba[0, 3] = (255, 255, 255, 255)  # a colour of no label: unpainted
    colours = [RED, BLUE]
    assert paint.strokes_from_canvas(rgba, colours, 4).tolist() == [
        [0, -1, -1, -1],
        [-1, 1, -1, -1],
        [-1, -1, 0, -1],
        [-1, -1, -1, -1],
    ]
    # A canvas twice the crop's size: each 2 x 2 canvas block is one crop pixel.
    big = np.zeros((4, 4, 4), dtype=np.uint8)
    big[:2, :2] = (*BLUE, 255)
    big[2:, 2:] = (*RED, 255)
    assert paint.strokes_from_canvas(big, colours, 2).tolist() == [[1, -1], [-1, 0]]
    assert paint.strokes_from_canvas(None, colours, 3).tolist() == [[-1] * 3] * 3


# -------------------------------------------------------------------------------------------- page


def test_page_opens_on_lite0_with_an_unpainted_canvas_and_a_box_per_stage() -> None:
    at = _open()
    assert not at.exception and not at.error
    assert at.title[0].value == "Build a head: segment and box"
    text = _texts(at)
    assert "Paint a stroke of each label on the picture" in text
    assert [r.value for r in at.text_input] == ["object", "background"]
    # One box per stage of Lite0, each described; the pretrained head's box falls on the evidence.
    for stage in range(1, 6):
        assert f"**stage {stage}**" in text
    assert text.count(" px (") + text.count("nothing to box") == 5
    assert "where the evidence for *tiger cat* is" in text


def test_vgg16_untrained_opens_and_says_the_box_follows_no_learned_object() -> None:
    at = _open({"backbone": "vgg16", "weights": "untrained"})
    assert not at.exception and not at.error
    text = _texts(at)
    assert "follows no learned object" in text
    assert sum(f"**stage {i}**" in text for i in range(1, 6)) == 5


def test_painting_two_labels_gives_a_mask_and_a_rerun_fits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _painting(monkeypatch, _strokes(slice(100, 200), slice(5, 30)))
    runs = count_model_runs(monkeypatch)
    at = _open()
    assert not at.exception and not at.error
    assert "fit_segmenter" in runs  # the mask and the comparison (first, middle, last stage; all of them)
    text = _texts(at)
    assert "**The mask**, from every stage" in text and "object" in text
    assert "Which stages does a segmenter need?" in text
    for title in ("stage 1 only", "stage 3 only", "stage 5 only", "all 5 stages"):
        assert f"**{title}**" in text
    assert "one cell per 32 × 32 px" in text and "Agrees with all stages on" in text
    assert not any("accura" in t.lower() for t in text.splitlines())
    # The same head on another sample picture, said to be fitted on one picture.
    assert "apply_segmenter" in runs
    assert "Your head, unchanged, on" in text and "it never learned what the new background is not" in text
    runs.clear()
    at.run()  # nothing changed
    assert not at.exception
    assert "fit_segmenter" not in runs and "apply_segmenter" not in runs
    # Another picture: the head is applied again, not fitted again.
    at.selectbox(key="build.other").set_value("rocket").run()
    assert not at.exception
    assert "apply_segmenter" in runs and "fit_segmenter" not in runs
    assert "Falcon 9" in _texts(at)
    runs.clear()
    # Renaming a label fits again (the names are part of the segmenter) and shows the new name.
    at.text_input(key="build.name.0").set_value("cat").run()
    assert not at.exception and "fit_segmenter" in runs
    assert "cat" in _texts(at)


def test_one_label_painted_shows_the_engines_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    rgba = np.zeros((paint.CANVAS_PX, paint.CANVAS_PX, 4), dtype=np.uint8)
    rgba[50:60, 50:250] = (*RED, 255)
    _painting(monkeypatch, rgba)
    at = _open()
    assert not at.exception and not at.error
    assert any("Only 'object' is painted" in i.value for i in at.info)
    assert "Which stages does a segmenter need?" not in _texts(at)
