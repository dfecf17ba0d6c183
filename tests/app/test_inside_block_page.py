"""The "Inside a block" page through Streamlit's AppTest: the diagram with this picture's maps, what to
notice, a knock-out that changes the top-5, the block ablation's chart, and every kind of block (Lite0
pretrained; ResNet-50, GoogLeNet and VGG-16 untrained, offline)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import texts

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/inside_block.py"
TIMEOUT = 180


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info", "error"))


def _images(at: AppTest) -> int:
    return sum(len(image.value) for image in at.image)


def _top5(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def _open(backbone: str = "efficientnet_lite0", weights: str = "pretrained") -> AppTest:
    """The app, switched to ``backbone`` with ``weights`` in the sidebar, on the page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    if weights != "pretrained":
        at.radio(key="_w_weights").set_value(weights).run()
    if backbone != "efficientnet_lite0":
        at.radio(key="_w_backbone").set_value(backbone).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def lite0_page() -> AppTest:
    return _open()


def test_the_block_is_drawn_with_this_pictures_maps_and_numbers(lite0_page: AppTest) -> None:
    at = lite0_page
    assert at.title[0].value == "Inside a block: how backbones are built"
    slider = at.select_slider(key="_w_block.efficientnet_lite0")
    assert slider.value == "blocks.1.1"  # the first block with a shortcut
    assert "blocks.1.1 · stage 2" in slider.options
    text = _texts(at)
    assert "blocks.1.1: an inverted residual block" in text
    # Counted among the 16 repeated blocks: not the stem before them, nor the last convolution after them.
    assert "· block 3 of 16 ·" in text and "of 18" not in text
    # The diagram, the crop in the sidebar, the family cards (4) and the original Grad-CAM need no click.
    assert _images(at) >= 1 + 1 + 4
    assert "comes from the shortcut" in text and "from the branch" in text  # the energy share
    assert "multiply-adds" in text and "144× more" in text  # depthwise vs a plain 3x3 of 144 channels
    for family in ("VGG · 2014", "GoogLeNet · 2014", "ResNet · 2015", "EfficientNet · 2019"):
        assert family in text
    assert "138.4 M parameters" in text and "4.7 M parameters" in text
    assert "**EfficientNet-Lite0**: 16 blocks," in text and "**ResNet-18**: 8 blocks," in text
    assert "**VGG-16**: 13 blocks (5 of them end in a max pool)," in text
    assert "**GoogLeNet (Inception v1)**: 9 blocks," in text
    assert "backbone-viz" not in text  # no developer wording


def test_removing_the_block_changes_the_top5(lite0_page: AppTest) -> None:
    at = lite0_page
    before = _top5(at)
    assert len(before) == 0  # no experiment yet
    at.button(key="inside.remove").click().run()
    assert not at.exception
    shown = _top5(at)
    assert len(shown) == 10  # the original top-5 beside the new one
    original, after = shown[:5], shown[5:]
    assert original != after
    assert "tiger cat" in original[0]
    text = _texts(at)
    assert "Without blocks.1.1." in text and "The top class stayed **tiger cat**" in text
    assert sum("Grad-CAM of tiger cat" in c for image in at.image for c in image.captions) == 2
    at.button(key="inside.reset").click().run()
    assert _top5(at) == []


def test_switching_off_channels_changes_the_top5(lite0_page: AppTest) -> None:
    at = lite0_page
    chosen = at.multiselect(key="_w_inside.channels.efficientnet_lite0.blocks.1.1")
    assert len(chosen.value) == 3  # the three most active channels, until the learner picks others
    at.button(key="inside.switch").click().run()
    assert not at.exception
    shown = _top5(at)
    assert len(shown) == 10 and shown[:5] != shown[5:]
    assert "switched off." in _texts(at)


def test_a_block_without_a_shortcut_says_why_it_cannot_be_removed(lite0_page: AppTest) -> None:
    at = lite0_page
    at.select_slider(key="_w_block.efficientnet_lite0").set_value("bn2").run()
    assert not at.exception
    text = _texts(at)
    assert "last_conv cannot be removed: it turns 320 channels into 1280" in text
    assert "the last convolution, after the 16 blocks" in text
    at.select_slider(key="_w_block.efficientnet_lite0").set_value("bn1").run()
    assert "the stem, before the 16 blocks" in _texts(at)
    assert "inside.remove" not in [b.key for b in at.button]
    at.select_slider(key="_w_block.efficientnet_lite0").set_value("blocks.1.1").run()


def test_remove_each_block_in_turn_draws_the_chart_and_says_what_it_shows(lite0_page: AppTest) -> None:
    at = lite0_page
    at.button(key="inside.ablation").click().run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1
    text = _texts(at)
    assert "9 of the 16 blocks can be removed; the others cannot" in text
    assert "6 of the 9 removals left **tiger cat** on top" in text
    assert "No single removal broke the backbone" in text
    # Kept for everyone: the next run shows the chart without a click.
    at.run()
    assert len(at.get("vega_lite_chart")) == 1
    assert "inside.ablation" not in [b.key for b in at.button]


@pytest.mark.parametrize(
    ("backbone", "kind", "words"),
    [
        ("resnet50", "a residual block (with a shortcut)", "comes from the shortcut"),
        ("googlenet", "an inception module", "cannot be removed: an inception module has no shortcut"),
        ("vgg16", "a plain block", "cannot be removed: it turns 64 channels into 128"),
    ],
)
def test_every_kind_of_block_untrained(backbone: str, kind: str, words: str) -> None:
    at = _open(backbone, "untrained")
    assert not at.error
    text = _texts(at)
    assert kind in text and words in text
    assert _images(at) >= 1 + 1 + 4
    if backbone == "resnet50":  # a residual block can be removed: the top-5 is shown again after it
        at.button(key="inside.remove").click().run()
        assert not at.exception
        assert len(_top5(at)) == 10
        assert "Without layer1.0." in _texts(at)


def test_compare_links_to_the_page() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.radio(key="_w_weights").set_value("untrained").run()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception
    assert any(link.proto.page == "inside_block" for link in at.get("page_link"))
