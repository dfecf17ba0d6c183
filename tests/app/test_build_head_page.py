"""The "Build a head" page through AppTest: paint to segment (strokes given through the canvas's wrapper,
which AppTest cannot draw on), a box from Grad-CAM per stage for any class, and a detector from a box
(given through the box canvas's wrapper). Bundled backbone, no network."""

from __future__ import annotations

import re
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


def _boxing(monkeypatch: pytest.MonkeyPatch, boxes: list[tuple[float, float, float, float]]) -> None:
    """Replaces the box canvas by one that sends ``boxes`` (x0, y0, x1, y1 in CROP px) as canvas dicts."""
    scale = paint.CANVAS_PX / 224

    def box_canvas(picture, *, label, key):
        return [
            {
                "left": x0 * scale,
                "top": y0 * scale,
                "width": (x1 - x0 + 1) * scale,
                "height": (y1 - y0 + 1) * scale,
            }
            for x0, y0, x1, y1 in boxes
        ]

    monkeypatch.setattr(paint, "box_canvas", box_canvas)


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


def test_canvas_boxes_become_crop_boxes() -> None:
    side = paint.CANVAS_PX
    drawn = [
        {"left": 0, "top": 0, "width": side, "height": side},  # the whole canvas: the whole crop
        {"left": 64, "top": 32, "width": -32, "height": 64},  # dragged leftwards: still a box
        {"left": 10, "top": 10, "width": 0, "height": 50},  # no width: kept, for the engine to explain
        {"left": -20, "top": 250, "width": 60, "height": 40},  # over the edge: clipped
    ]
    assert paint.boxes_from_canvas(drawn, 128) == [
        (0, 0, 127, 127),
        (16, 16, 31, 47),
        (5, 5, 5, 29),
        (0, 125, 19, 127),
    ]


# -------------------------------------------------------------------------------------------- page


def test_page_opens_on_lite0_with_an_unpainted_canvas_and_a_box_per_stage() -> None:
    at = _open()
    assert not at.exception and not at.error
    assert at.title[0].value == "Build a head: segment, box, detect"
    text = _texts(at)
    assert "Paint a stroke of each label on the picture" in text
    assert [r.value for r in at.text_input] == ["object", "background", "thing"]
    assert "Drag a box on the picture: the detector trains as soon as you let go." in text
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


# ------------------------------------------------------------------------------------------ detector

#: Around the cat's left eye in Lite0's crop of the cat sample (tests/test_examples.py measured it).
EYE = (28, 50, 104, 118)


def test_a_boxed_eye_trains_a_detector_that_finds_it_and_a_rerun_trains_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _boxing(monkeypatch, [EYE])
    runs = count_model_runs(monkeypatch)
    at = _open()
    assert not at.exception and not at.error
    assert "fit_detector" in runs and "detect" in runs
    text = _texts(at)
    # It trained on the learner's picture and its eye pasted onto the 5 other sample photos but one.
    assert "on 6 pictures and their mirror images (6 boxes)" in text
    assert "Stage 4 (blocks.4.2) has stride 16" in text and "each thing spans several cells" in text
    assert "your thing pasted onto 5 photos" in text
    # On the eye pasted onto the held-out photo: found, and the overlap with the truth is stated.
    found = re.search(r"the best box overlaps it by IoU (\d\.\d\d)", text)
    assert found and float(found.group(1)) >= 0.5, text
    assert "cells of stage 4: a box is drawn at each peak above 0.30" in text
    runs.clear()
    at.run()
    assert not at.exception and "fit_detector" not in runs and "detect" not in runs
    # A higher threshold looks again without training again.
    at.slider(key="build.threshold").set_value(0.95).run()
    assert not at.exception and "fit_detector" not in runs and "detect" in runs
    assert "No box: no cell's score reaches the threshold" in _texts(at)
    # On the learner's own picture it finds the eye it was shown.
    at.slider(key="build.threshold").set_value(0.3).run()
    at.selectbox(key="build.find_on").set_value("yours").run()
    assert not at.exception and "**Found one box** of *thing*" in _texts(at)


def test_a_box_with_no_width_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    _boxing(monkeypatch, [(40, 40, 40, 120)])
    at = _open()
    assert not at.exception and not at.error
    assert any("has no width" in i.value for i in at.info)
    assert "Trained in" not in _texts(at)


def test_any_class_can_be_boxed_and_a_link_keeps_it() -> None:
    at = _open()
    choice = at.selectbox(key="_w_build.box_class")
    assert choice.options[0].startswith("tiger cat (") and "%" in choice.options[0]
    assert "daisy (#985)" in choice.options
    choice.set_value(985).run()
    assert not at.exception and not at.error
    text = _texts(at)
    assert "The head gives *daisy*" in text and "a class it does not see here" in text
    assert at.query_params["target"] == "985"
    # The link opens the same class's boxes.
    again = _open({"picture": "cat", "target": "985"})
    assert not again.exception and "The head gives *daisy*" in _texts(again)
    # Another picture starts again at its own top class.
    at.selectbox(key="_w_sample").set_value("flower").run()
    assert not at.exception and "a class it does not see here" not in _texts(at)
