"""Links that open the same view (the URL query), the sidebar's gallery and projector mode, through AppTest.

Bundled EfficientNet-Lite0 and the sample pictures; no network. ``AppTest.query_params`` stands in for the
address a link opens.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import texts

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TIMEOUT = 60


def _open(page: str, query: dict[str, str]) -> AppTest:
    """A fresh session that opens ``page`` from a link with ``query``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    if page != "app_pages/home.py":
        at.switch_page(page)
    return at.run()


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info", "warning"))


def test_a_link_reproduces_picture_backbone_weights_layer_and_channel() -> None:
    layer = "blocks.2.0"
    first = _open("app_pages/feature_buildup.py", {"picture": "coffee", "weights": "untrained", "layer": layer})
    assert not first.exception
    channel = first.selectbox(key="_w_channel").options[2]  # a channel of this layer's top ones
    query = {
        "picture": "coffee",
        "backbone": "efficientnet_lite0",
        "weights": "untrained",
        "layer": layer,
        "channel": channel.split()[0].lstrip("#"),
    }
    at = _open("app_pages/feature_buildup.py", query)
    assert not at.exception and not at.toast
    assert at.selectbox(key="_w_sample").value == "coffee"
    assert at.session_state["image"].name == "coffee"
    assert at.radio(key="_w_weights").value == "untrained"
    assert at.select_slider(key="_w_layer.efficientnet_lite0").value == layer
    assert at.selectbox(key="_w_channel").value == int(query["channel"])
    assert at.query_params == query  # the page writes the same view back


def test_a_link_reproduces_the_grad_cam_target() -> None:
    at = _open("app_pages/gradcam.py", {"picture": "cat", "target": "1"})  # 1: goldfish
    assert not at.exception and not at.toast
    assert at.radio(key="_w_target_mode").value == "other"
    assert at.selectbox(key="_w_target_class").value == 1
    assert "Grad-CAM now explains **goldfish**" in _texts(at)
    assert at.query_params["target"] == "1"


def test_invalid_values_are_ignored_with_a_notice() -> None:
    query = {
        "picture": "../../etc/passwd",
        "backbone": "alexnet",
        "weights": "half",
        "layer": "no.such.layer",
        "channel": "-3",
        "target": "cat",
        "lesson": "99",
        "answers": "zz",
        "present": "yes",
        "colour": "red",
    }
    at = _open("app_pages/feature_buildup.py", query)
    assert not at.exception
    notice = " ".join(t.value for t in at.toast)
    for name in query:
        assert f"{name}=" in notice, name
    # Nothing was taken: the defaults stand.
    assert at.selectbox(key="_w_sample").value == "cat"
    assert at.radio(key="_w_backbone").value == "efficientnet_lite0"
    assert at.radio(key="_w_weights").value == "pretrained"
    assert at.toggle(key="_w_present").value is False
    assert at.query_params == {"picture": "cat", "backbone": "efficientnet_lite0", "weights": "pretrained"}


def test_a_channel_out_of_the_layers_range_is_refused() -> None:
    at = _open("app_pages/feature_buildup.py", {"layer": "bn1", "channel": "32"})  # the stem has 32 channels
    assert not at.exception
    assert "stem has channels 0 to 31" in " ".join(t.value for t in at.toast)


def test_changing_a_control_updates_the_url_and_the_copy_link() -> None:
    at = _open("app_pages/home.py", {})
    assert at.query_params["picture"] == "cat"
    at.selectbox(key="_w_sample").set_value("rocket").run()
    at.radio(key="_w_weights").set_value("untrained").run()
    assert not at.exception
    assert at.query_params["picture"] == "rocket"
    assert at.query_params["weights"] == "untrained"
    link = at.sidebar.code[0].value
    assert "picture=rocket" in link and "weights=untrained" in link
    assert "cannot travel in a link" in _texts(at)


def test_an_upload_is_left_out_of_the_link_and_the_sidebar_says_so() -> None:
    at = _open("app_pages/home.py", {})
    data = (ROOT / "assets" / "samples" / "flower.jpg").read_bytes()
    at.sidebar.file_uploader[0].upload("flower.jpg", data, "image/jpeg").run()
    assert not at.exception
    assert "picture" not in at.query_params
    assert "Your own picture cannot travel in a link" in _texts(at)


# --------------------------------------------------------------------------------- point 4 defects


def test_clicking_a_gallery_thumbnail_picks_that_picture() -> None:
    at = _open("app_pages/home.py", {})
    at.button(key="thumb.rocket").click().run()
    assert not at.exception
    assert at.session_state["image"].name == "rocket"
    assert at.selectbox(key="_w_sample").value == "rocket"
    assert at.button(key="thumb.rocket").proto.type == "primary"  # the picture on show is framed
    assert at.button(key="thumb.cat").proto.type == "secondary"


def test_grad_cam_marks_the_class_it_explains() -> None:
    at = _open("app_pages/gradcam.py", {"picture": "cat"})
    bars = [p.proto.text for p in at.get("progress")]
    assert "Grad-CAM explains this class" in bars[0]  # the top class, while it is the one explained
    chosen = bars[2].split("**")[1]  # the third of the top-5
    at.radio(key="_w_target_mode").set_value("other").run()
    index = _categories(at).index(chosen)
    at.selectbox(key="_w_target_class").set_value(index).run()
    assert not at.exception
    bars = [p.proto.text for p in at.get("progress")]
    marked = [text for text in bars if "Grad-CAM explains this class" in text]
    assert len(marked) == 1 and f"**{chosen}**" in marked[0], bars


def _categories(at: AppTest) -> list[str]:
    box = at.selectbox(key="_w_target_class")
    return [option.rsplit(" (#", 1)[0] for option in box.options]


def test_the_untrained_note_says_what_is_true() -> None:
    at = _open("app_pages/home.py", {"weights": "untrained"})
    note = at.warning[0].value
    assert "noise" not in note
    assert "still show its edges and colours" in note and "the top-5 is a guess" in note


@pytest.mark.parametrize("page", ["app_pages/home.py", "app_pages/gradcam.py"])
def test_projector_mode_from_the_link_folds_the_explanations(page: str) -> None:
    at = _open(page, {"present": "1"})
    assert not at.exception
    assert at.toggle(key="_w_present").value is True
    assert not at.info  # the page's explanation is folded under "What to notice"
    assert any(e.label == "What to notice" for e in at.expander)
    assert at.query_params["present"] == "1"
    at.toggle(key="_w_present").set_value(False).run()
    assert at.info and "present" not in at.query_params


def test_a_linked_channel_outside_the_most_active_ones_is_shown() -> None:
    import backbone_viz as bv
    from tests.conftest import sample

    result = bv.analyze(bv.load_backbone("efficientnet_lite0"), sample("cat"))
    means = result.activations["bn1"].mean(axis=(1, 2))
    quiet = int(means.argmin())  # the stem's least active channel: never among the 16 shown first
    at = _open("app_pages/feature_buildup.py", {"picture": "cat", "layer": "bn1", "channel": str(quiet)})
    assert not at.exception and not at.toast
    box = at.selectbox(key="_w_channel")
    assert box.value == quiet
    rank = int(box.format_func(quiet).split("rank ")[1].split(",")[0])
    assert rank == int((means > means[quiet]).sum()) + 1 > 16  # its true rank, not its place in the list
    assert at.query_params["channel"] == str(quiet)


# ------------------------------------------------------------------------------- the teacher's link


def _copied_query(at: AppTest) -> str:
    """The query the "Copy link" button copies (its data-query attribute)."""
    buttons = [h.proto.body for h in at.get("html") if "bv-copy-link" in h.proto.body]
    assert len(buttons) == 1, "one Copy link button per page"
    return buttons[0].split("data-query=", 1)[1].split('"')[1].replace("&amp;", "&")


def test_the_copy_link_keeps_the_opacity() -> None:
    at = _open("app_pages/gradcam.py", {"picture": "coffee", "opacity": "0.85"})
    assert not at.exception
    assert at.slider(key="_w_cam_opacity").value == pytest.approx(0.85)
    at.slider(key="_w_cam_opacity").set_value(0.3).run()
    assert at.query_params["opacity"] == "0.3"
    assert "opacity=0.3" in _copied_query(at) and "picture=coffee" in _copied_query(at)
    assert "opacity=0.3" in at.sidebar.code[0].value


def test_an_opacity_off_the_slider_is_refused_with_a_notice() -> None:
    at = _open("app_pages/gradcam.py", {"opacity": "7"})
    assert not at.exception
    assert at.slider(key="_w_cam_opacity").value == pytest.approx(0.55)
    assert "opacity='7'" in " ".join(t.value for t in at.toast)


def test_a_lesson_link_leaves_the_answers_out_unless_asked() -> None:
    at = _open("app_pages/lessons.py", {"lesson": "2", "answers": "bc"})
    assert not at.exception
    assert at.query_params["answers"].startswith("bc")  # the teacher's own address keeps them
    assert "answers" not in _copied_query(at) and "answers" not in at.sidebar.code[0].value
    assert "lesson=2" in _copied_query(at)
    at.sidebar.checkbox(key="_links.share_answers").check().run()
    assert "answers=bc" in _copied_query(at) and "answers=bc" in at.sidebar.code[0].value
