"""The feature atlas page and the feature build-up card "What does this channel look for?" (AppTest).

Pictures made on demand are made tiny here (32 px, 2 steps): these tests check the pages, not the
pictures (tests/test_atlas.py does)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from tests.app.helpers import texts
from webui.compute import featurevis_cache
from webui.shell.links import PRESENT
from webui.views.featurevis_view import atlas_caption

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TIMEOUT = 120


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info"))


def _images(at: AppTest) -> int:
    """Pictures on the page (the sidebar's gallery left out)."""
    return sum(len(image.value) for image in at.main.image)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(featurevis_cache, "PICTURE", {"size": 32, "steps": 2, "seed": 0})
    monkeypatch.setattr(featurevis_cache, "SMALL_ATLAS", {"per_stage": 1, "size": 32, "steps": 2, "seed": 0})
    featurevis_cache.clear_made()
    yield
    featurevis_cache.clear_made()


@pytest.fixture
def at() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def test_the_shipped_atlas_shows_every_stage_at_once(at: AppTest) -> None:
    at.switch_page("app_pages/atlas.py").run()
    assert not at.exception
    assert _images(at) == 40
    text = _texts(at)
    assert "shipped with backbone-viz" in text and "stage 5" in text
    assert "Projector mode shows" not in text  # beside the sidebar every picture is shown
    # One caption format under every picture, as a button that enlarges it, with the key above.
    shipped = featurevis_cache.shipped_atlas("efficientnet_lite0", "pretrained")
    labels = {b.label for b in at.button}
    assert all(atlas_caption(e) in labels for entries in shipped.rows.values() for e in entries)
    assert "×" in atlas_caption(shipped.rows[1][0])  # each picture beats the best photo
    assert "#channel · how many times harder the picture makes it fire than its best sample photo" in text
    assert not [b for b in at.button if b.key == "atlas.make"]
    # The rows say what their pictures show, not "objects" for a row of jumbled parts.
    assert "not whole objects" in text and "high · objects" not in text


def test_a_picture_opens_large_beside_its_top_patches(at: AppTest) -> None:
    at.switch_page("app_pages/atlas.py").run()
    entry = featurevis_cache.shipped_atlas("efficientnet_lite0", "pretrained").rows[3][0]
    before = len(at.image)
    at.button(key=f"atlas.large.3.{entry.channel}").click().run()
    assert not at.exception
    text = _texts(at)
    assert "Where it fires most in the sample photos" in text and "Each patch is" in text
    assert f"{atlas_caption(entry)}: the channel's mean is {entry.activation:.3g} on this picture" in text
    assert len(at.image) == before + 1 + 9  # the picture large and its 9 top patches, in the dialog


def test_projector_mode_shows_fewer_larger_pictures(at: AppTest) -> None:
    at.session_state[PRESENT] = True
    at.switch_page("app_pages/atlas.py").run()
    assert not at.exception
    assert _images(at) == 5 * 6
    assert "Projector mode shows 30 of them: the strongest of each stage." in _texts(at)


def test_untrained_weights_make_a_small_atlas_on_demand(at: AppTest, tiny: None) -> None:
    at.radio(key="_w_weights").set_value("untrained").run()
    at.switch_page("app_pages/atlas.py").run()
    assert not at.exception
    assert "No atlas of EfficientNet-Lite0 with untrained weights" in _texts(at)
    assert _images(at) == 0
    at.button(key="atlas.make").click().run()
    assert not at.exception
    assert _images(at) == 5
    text = _texts(at)
    assert "made here" in text and "no growth from edges to objects" in text
    assert "No atlas of" not in text  # the note goes once the atlas is there
    assert "nothing learned" in text and "not whole objects" not in text
    # Made once for every session: the next visit shows it without a button.
    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    again.radio(key="_w_weights").set_value("untrained").run()
    again.switch_page("app_pages/atlas.py").run()
    assert _images(again) == 5
    assert "No atlas of" not in _texts(again)


def test_the_card_shows_patches_and_makes_the_picture_on_demand(at: AppTest, tiny: None) -> None:
    at.switch_page("app_pages/feature_buildup.py").run()
    assert not at.exception
    text = _texts(at)
    channel = at.selectbox(key="_w_channel").value
    assert f"What does channel #{channel} of stem look for?" in text
    assert "Where it fires most in real photos" in text
    # The patch sentence and the red square name the same field: what one map position of stem sees.
    rf = bv.get_spec("efficientnet_lite0").layer("stem").receptive_field
    assert f"red square: the {rf} × {rf} px" in text
    assert f"That position sees only {rf} × {rf} px of the photo" in text
    before = _images(at)
    at.button(key="fv.make.pretrained").click().run()
    assert not at.exception
    assert _images(at) == before + 2  # the card's picture, and the same under "pretrained" in the pair
    assert "on this picture" in _texts(at)
    at.button(key="fv.pair.untrained").click().run()
    assert not at.exception
    assert _images(at) == before + 3


def test_the_card_shows_the_shipped_picture_for_an_atlas_layer(at: AppTest) -> None:
    at.switch_page("app_pages/feature_buildup.py").run()
    at.select_slider(key="_w_layer.efficientnet_lite0").set_value("blocks.2.1").run()
    shipped = featurevis_cache.shipped_atlas("efficientnet_lite0", "pretrained")
    channels = {e.channel for e in shipped.rows[3]}
    box = at.selectbox(key="_w_channel")
    pick = next(
        (int(o.split()[0].lstrip("#")) for o in box.options if int(o.split()[0].lstrip("#")) in channels),
        None,
    )
    assert pick is not None  # the channels that fire most on the gallery fire on the cat too
    box.set_value(pick).run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "fv.make.pretrained"]
    assert "the most any sample photo gets" in _texts(at)
