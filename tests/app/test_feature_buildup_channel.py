"""Feature build-up's channel picker follows the layer: a channel number means nothing in another layer, so
a new layer starts on its most active channel, unless a link asked for a channel in that layer (AppTest,
bundled EfficientNet-Lite0, no network)."""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/feature_buildup.py"
LAYER = "_w_layer.efficientnet_lite0"
TIMEOUT = 90


def _channels(at: AppTest) -> list[int]:
    """The channel picker's options, most active first (they read ``"#12 (rank 1, mean 3.59)"``)."""
    return [int(option.split()[0].lstrip("#")) for option in at.selectbox(key="_w_channel").options]


def _rank(at: AppTest) -> int:
    """The rank, by mean activation in its layer, of the channel the picker shows."""
    picker = at.selectbox(key="_w_channel")
    option = picker.options[_channels(at).index(picker.value)]
    return int(option.split("rank ")[1].split(",")[0])


def test_a_new_layer_starts_on_its_most_active_channel() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    # blocks.0.0 has 16 channels, so at 16 channels shown each of them is an option there.
    at.select_slider(key=LAYER).set_value("blocks.0.0").run()
    assert at.select_slider(key="_w_k").value == 16
    second = _channels(at)
    assert len(second) == 16 and _rank(at) == 1
    # In the stem, pick a channel that blocks.0.0 also offers but not as its most active one: kept as a
    # number, it would show a weak channel there.
    at.select_slider(key=LAYER).set_value("bn1").run()
    assert _rank(at) == 1  # the stem too starts on its most active channel
    old = next(c for c in _channels(at)[1:] if c in second[1:])
    at.selectbox(key="_w_channel").set_value(old).run()
    assert at.selectbox(key="_w_channel").value == old
    at.select_slider(key=LAYER).set_value("blocks.0.0").run()
    assert not at.exception
    assert at.selectbox(key="_w_channel").value == second[0] != old
    assert _rank(at) == 1
    assert f"channel #{second[0]} of blocks.0.0" in " ".join(c for image in at.image for c in image.captions)
    # A channel picked in this layer stays while the layer does (a change of the colour scale).
    at.selectbox(key="_w_channel").set_value(second[3]).run()
    at.radio(key="_w_scale").set_value("shared").run()
    assert at.selectbox(key="_w_channel").value == second[3]


def test_a_link_keeps_its_channel_in_its_layer() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"picture": "cat", "layer": "blocks.2.1", "channel": "7"})
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.select_slider(key=LAYER).value == "blocks.2.1"
    assert at.selectbox(key="_w_channel").value == 7
    at.select_slider(key=LAYER).set_value("blocks.3.0").run()
    assert _rank(at) == 1
