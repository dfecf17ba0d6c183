"""The "Backbone → heads" page through AppTest: bundled EfficientNet-Lite0, sample pictures, no network."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from tests.app.helpers import texts

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "assets" / "samples"
PAGE = "app_pages/heads.py"
TIMEOUT = 60
PARTS = json.loads((SAMPLES / "parts.json").read_text(encoding="utf-8"))


@pytest.fixture
def at() -> AppTest:
    """The heads page after a first visit: the default backbone (bundled, pretrained) and the cat."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info", "warning"))


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _train_on_the_example_set(at: AppTest) -> None:
    at.button(key="heads.example").click().run()
    assert not at.exception
    at.button(key="heads.train").click().run()
    assert not at.exception
    assert not at.error


def test_page_shows_all_three_sections(at: AppTest) -> None:
    assert at.title[0].value == "Backbone → heads: one backbone, many heads"
    assert [tab.label for tab in at.tabs] == [
        "1 · What the head sees",
        "2 · A new head on the same backbone",
        "3 · Heads for detection and segmentation",
    ]
    assert not at.error
    text = _texts(at)
    assert "What the head reads: 1280 numbers" in text  # EfficientNet-Lite0's pooled vector, folded
    assert "The head reads 1280 numbers: the 8 largest" in text  # the readable bars
    assert "What each channel adds to “tiger cat”" in text
    assert "Channels that push “tiger cat” up most" in text
    assert "Nothing trained yet" in text
    for name, shape in (("C3", "40 × 28 × 28"), ("C4", "112 × 14 × 14"), ("C5", "1280 × 7 × 7")):
        assert f"**{name}** · stride" in text and shape in text
    assert "Why a detector needs maps at several scales" in text
    assert "Faster R-CNN" in text and "RetinaNet" in text and "DeepLab" in text
    assert sum(len(image.value) for image in at.image) >= 2 + 2 * 6 + 4  # strips, channel maps, pyramid
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # the largest numbers and what the channels add
    assert all('"fontSize":14' in chart.proto.spec.replace(" ", "") for chart in charts)
    assert "the whole picture (339 × 339 px)" not in text  # C4 seen from a central cell only
    assert "a cell near the centre: the whole 224 px picture (339 × 339 px" in text
    assert "the whole 224 px picture, from every cell (851 × 851 px)" in text  # C5
    assert "DeepLab reads the last stage" in text and "Above are the three maps" in text


def test_contributions_add_up_to_the_logit(at: AppTest) -> None:
    shown = _metrics(at)
    total, bias = float(shown["Sum of contributions"]), float(shown["+ bias"])
    assert shown["= sum + bias"] == shown["Head's score (logit)"]
    assert total + bias == pytest.approx(float(shown["= sum + bias"]), abs=0.0015)
    # The number shown is the network's own score for the top class, computed here independently.
    backbone = bv.load_backbone("efficientnet_lite0", device="cpu")
    result = bv.analyze(backbone, bv.load_image(SAMPLES / "cat.jpg"))
    assert shown["Head's score (logit)"] == f"{result.logits[result.target.index]:.3f}"
    # Another class splits too, with its own numbers.
    at.radio(key="_w_heads.split_class").set_value(result.predictions[2].index).run()
    assert not at.exception
    shown = _metrics(at)
    assert shown["Head's score (logit)"] == f"{result.logits[result.predictions[2].index]:.3f}"
    assert shown["= sum + bias"] == shown["Head's score (logit)"]


def test_example_set_trains_a_new_head_that_classifies_a_new_picture(at: AppTest) -> None:
    _train_on_the_example_set(at)
    shown = _metrics(at)
    assert shown["Leave-one-out accuracy"] == "100%"
    assert shown["Photos right"] == "8 of 8"
    assert shown["Fit time"].endswith(" s")
    assert shown["Numbers learned"] == "3,843"  # 3 × 1280 weights + 3 biases
    text = _texts(at)
    assert "Only the head was trained" in text
    assert "a picture it was not trained on." in text  # by default: a held-out sample picture
    # The sidebar's cat: one of its training photos, said so.
    at.radio(key="_w_heads.test_picture").set_value("sidebar").run()
    assert not at.exception
    text = _texts(at)
    assert "Not a fair test" in text
    assert "**cat** — " in text and "Grad-CAM explains this class" in text  # the new head's answer
    assert "new head: Grad-CAM for “cat”" in text and "ImageNet head: Grad-CAM for “tiger cat”" in text
    table = at.dataframe[0].value
    assert len(table) == 8 and set(table["right?"]) == {"✓"}
    head = at.session_state["heads.head"]
    assert head.categories == ("cat", "coffee", "person")

    # A rocket is "person": the head can only choose among its own classes.
    at.selectbox(key="_w_sample").set_value("rocket").run()
    assert not at.exception
    assert "**person** — " in at.get("progress")[-3].proto.text
    assert "A head can only choose among its own classes" in _texts(at)


def test_a_head_belongs_to_its_backbone(at: AppTest) -> None:
    _train_on_the_example_set(at)
    at.radio(key="_w_weights").set_value("untrained").run()
    assert not at.exception
    assert "Your head belongs to another backbone" in _texts(at)
    assert "Leave-one-out accuracy" not in _metrics(at)
    at.button(key="heads.retrain").click().run()
    assert not at.exception
    assert not at.error
    assert at.session_state["heads.head"].weights == "untrained"
    assert "Leave-one-out accuracy" in _metrics(at)
    # Back to pretrained: the untrained head no longer fits; switching back is offered and works.
    at.radio(key="_w_weights").set_value("pretrained").run()
    at.button(key="heads.back").click().run()
    assert not at.exception
    assert at.radio(key="_w_weights").value == "untrained"
    assert "Your head belongs to another backbone" not in _texts(at)


def test_vgg_explains_why_its_score_does_not_split(at: AppTest) -> None:
    at.radio(key="_w_weights").set_value("untrained").run()
    at.radio(key="_w_backbone").set_value("vgg16").run()
    assert not at.exception
    assert not at.error
    text = _texts(at)
    assert "VGG-16's score does not split into channels" in text
    assert "three fully connected layers with a ReLU between them" in text
    assert [link.proto.page for link in at.get("page_link")] == ["gradcam"]  # to the Grad-CAM page
    assert "Sum of contributions" not in _metrics(at)
    assert "What the head's last layer reads: 4096 numbers" in text
    assert "The head reads 4096 numbers: the 8 largest" in text
    assert "they are not channels" in text and "its number times the head's weight" not in text
    assert len(at.get("vega_lite_chart")) == 1  # the largest numbers only: no split
    assert "no stride-32 map listed for VGG-16" in text  # C3 and C4 only
    assert "Above are the two maps" in text


def test_own_photos_too_few_or_unreadable_are_explained(at: AppTest) -> None:
    cat, coffee = (SAMPLES / "cat.jpg").read_bytes(), (SAMPLES / "coffee.jpg").read_bytes()
    at.text_input(key="_w_heads.label.0").input("cat")
    at.text_input(key="_w_heads.label.1").input("coffee")
    at.file_uploader(key="heads.files.0").set_value([("cat.jpg", cat, "image/jpeg")])
    at.file_uploader(key="heads.files.1").set_value(
        [("coffee.jpg", coffee, "image/jpeg"), ("coffee2.jpg", coffee, "image/jpeg")]
    )
    at.run()
    at.button(key="heads.train").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The class 'cat' has 1 photo; it needs at least 2.\n\n"
        "Add photos: each one is left out in turn to test the head, so it must learn from the others."
    ]
    assert "heads.head" not in at.session_state

    at.file_uploader(key="heads.files.0").set_value(
        [("cat.jpg", cat, "image/jpeg"), ("notes.png", b"not a picture at all\n" * 20, "image/png")]
    )
    at.run()
    at.button(key="heads.train").click().run()
    assert not at.exception
    assert any("notes.png could not be used" in e.value for e in at.error)
    assert "heads.head" not in at.session_state

    at.file_uploader(key="heads.files.0").set_value(
        [("cat.jpg", cat, "image/jpeg"), ("cat2.jpg", cat, "image/jpeg")]
    )
    at.run()
    at.button(key="heads.train").click().run()
    assert not at.exception
    assert not at.error
    assert at.session_state["heads.head"].categories == ("cat", "coffee")
    assert "cat.jpg" in set(at.dataframe[0].value["photo"])


# ------------------------------------------------------------------------------- the readable bars


def test_largest_table_lists_the_largest_numbers_first() -> None:
    from webui.views import head_reads

    values = np.array([0.5, 3.0, 0.0, 2.25, 7.125], dtype=np.float32)
    table = head_reads.largest_table(values, 3)
    assert list(table["name"]) == ["#4", "#1", "#3"]
    assert list(table["value"]) == [7.125, 3.0, 2.25]
    assert list(table["label"]) == ["7.12", "3", "2.25"]


def test_contribution_rows_are_the_channels_that_add_and_pull_most() -> None:
    from webui.views import head_reads

    weights = np.array([1.0, -2.0, 0.5, 3.0, -0.1], dtype=np.float32)
    pooled = np.array([1.0, 1.0, 2.0, 0.5, 1.0], dtype=np.float32)
    values = weights * pooled  # +1, -2, +1, +1.5, -0.1
    contributions = SimpleNamespace(
        values=values,
        weights=weights,
        pooled=pooled,
        top_up=lambda k: np.array([3, 0, 2])[:k],
        top_down=lambda k: np.array([1, 4])[:k],
    )
    table = head_reads.contribution_rows(contributions, 2)
    assert list(table["name"]) == ["#3", "#0", "#1", "#4"]
    assert list(table["label"]) == ["+1.500", "+1.000", "-2.000", "-0.100"]
    chart = head_reads.value_bars(table).to_dict()
    assert chart["layer"][0]["mark"]["type"] == "bar"


# --------------------------------------------------------------------------- what one cell can see


@pytest.mark.parametrize(
    ("field", "stride", "sees"),
    [
        (67, 8, "67 × 67 px around the cell"),
        (239, 16, "239 × 239 px around the cell"),  # wider than 224, yet the central cell misses a border
        (240, 16, "a cell near the centre: the whole 224 px picture (240 × 240 px, wider than the picture)"),
        (447, 32, "a cell near the centre: the whole 224 px picture (447 × 447 px, wider than the picture)"),
        (448, 32, "the whole 224 px picture, from every cell (448 × 448 px)"),
    ],
)
def test_what_one_cell_can_see(field: int, stride: int, sees: str) -> None:
    from webui.views import detector_maps

    assert detector_maps.cell_sees(field, stride, 224) == sees


# ------------------------------------------------------------- a fair test picture, and where Grad-CAM lies


def test_the_new_head_is_shown_a_picture_it_was_not_trained_on(at: AppTest) -> None:
    _train_on_the_example_set(at)
    # The example set uses the cat, coffee, astronaut and Grace Hopper pictures: the others are held out.
    held_out = at.selectbox(key="_w_heads.held_out")
    assert held_out.options == [
        "A Chinese temple tower above a lake",
        "An orange dahlia",
        "A Falcon 9 rocket lifting off",
    ]
    text = _texts(at)
    assert "A Chinese temple tower above a lake: a picture it was not trained on." in text
    assert "Not a fair test" not in text
    # The sidebar's cat is the first cat photo of the example set: said so, not passed off as a test.
    at.radio(key="_w_heads.test_picture").set_value("sidebar").run()
    assert not at.exception
    assert "Not a fair test: the new head was trained on this picture" in _texts(at)


def test_a_grad_cam_beside_the_face_is_pointed_out(at: AppTest) -> None:
    at.selectbox(key="_w_sample").set_value("astronaut").run()
    _train_on_the_example_set(at)
    at.radio(key="_w_heads.test_picture").set_value("sidebar").run()
    assert not at.exception
    view = at.session_state["_heads.view"][2]
    assert view.target.label == "person"
    spec = bv.get_spec("efficientnet_lite0")
    from webui.compute import heads_state

    boxes = {
        name: heads_state.box_in_crop(box, view.picture_size, spec.preprocessing)
        for name, box in PARTS["astronaut.jpg"]["boxes"].items()
    }
    place = heads_state.cam_on_part(view.gradcam, boxes, "her head", spec.preprocessing.crop)
    assert place is not None and place.share < heads_state.MOSTLY  # the helmet and the suit, not her head
    infos = " ".join(i.value for i in at.info)
    assert f"is mostly not on her head:** only {place.share:.0%} of it lies in a box" in infos
    assert f"covers {place.area:.0%} of the crop" in infos


def test_box_in_crop_follows_the_resize_and_the_centre_crop() -> None:
    from webui.compute import heads_state

    prep = bv.get_spec("efficientnet_lite0").preprocessing  # short side to 256, centre 224
    assert (prep.resize, prep.crop) == (256, 224)
    # 512 x 600 -> 256 x 300; the crop starts 16 px from the left and 38 px from the top.
    assert heads_state.box_in_crop((0.5, 0.5, 1.0, 1.0), (512, 600), prep) == (112, 112, 224, 224)
    assert heads_state.box_in_crop((0.25, 0.0, 0.5, 0.1), (512, 600), prep) == (48, 0, 112, 0)


def test_cam_on_part_weighs_the_map_inside_the_box() -> None:
    from webui.compute import heads_state

    cam = np.zeros((4, 4), dtype=np.float32)
    cam[3, 3] = 1.0  # bottom-right cell only
    boxes = {"top left": (0, 0, 32, 32), "bottom right": (32, 32, 64, 64), "everything": (0, 0, 64, 64)}
    place = heads_state.cam_on_part(cam, boxes, "top left", 64)
    assert place is not None and place.share == pytest.approx(0.0, abs=1e-6)
    assert place.area == 0.25 and place.brightest == "bottom right"  # the smallest box holding the peak
    assert heads_state.cam_on_part(cam, boxes, "everything", 64).share == pytest.approx(1.0)
    assert heads_state.cam_on_part(np.zeros((4, 4), np.float32), boxes, "top left", 64) is None


def test_parts_file_describes_real_pictures_with_boxes_inside_them() -> None:
    assert set(PARTS) - {"about"} == {"astronaut.jpg", "grace_hopper.jpg"}
    for name, entry in PARTS.items():
        if name == "about":
            continue
        assert (SAMPLES / name).is_file()
        for box in entry["boxes"].values():
            left, top, right, bottom = box
            assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1
        assert set(entry["classes"].values()) <= set(entry["boxes"])
