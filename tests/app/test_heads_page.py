"""The "Backbone → heads" page through AppTest: bundled EfficientNet-Lite0, sample pictures, no network."""

from __future__ import annotations

import sys
from pathlib import Path

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
    assert "What the head reads: 1280 numbers" in text  # EfficientNet-Lite0's pooled vector
    assert "Channels that push “tiger cat” up most" in text
    assert "Nothing trained yet" in text
    for name, shape in (("C3", "40 × 28 × 28"), ("C4", "112 × 14 × 14"), ("C5", "1280 × 7 × 7")):
        assert f"**{name}** · stride" in text and shape in text
    assert "Why a detector needs maps at several scales" in text
    assert "Faster R-CNN" in text and "RetinaNet" in text and "DeepLab" in text
    assert sum(len(image.value) for image in at.image) >= 2 + 2 * 6 + 4  # strips, channel maps, pyramid
    assert len(at.get("vega_lite_chart")) == 1  # the contribution bars


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
    assert "no stride-32 map listed for VGG-16" in text  # C3 and C4 only


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
