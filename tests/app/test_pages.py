"""Every page of the web app through Streamlit's AppTest: bundled backbone, sample pictures, no network.

``AppTest.switch_page`` runs only the page file, not ``app.py`` (Streamlit 1.67), so these tests also
check that each page draws the shared sidebar itself when ``app.py`` did not.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from tests.app.helpers import texts
from tests.conftest import CATS, count_model_runs
from webui.shell import pages as registry
from webui.shell.sidebar import WORKING_SHORT_SIDE
from webui.shell.state import Choices, sample_choice
from webui.views import compare_rows

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # AppTest.from_string scripts import webui from the repository root
    sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "assets" / "samples"
PAGES = ("app_pages/home.py", "app_pages/feature_buildup.py", "app_pages/gradcam.py", "app_pages/compare.py")
TIMEOUT = 60


def _start() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    return at.run()


@pytest.fixture
def at() -> AppTest:
    """The app after a first visit: the home page with the default backbone and the cat."""
    at = _start()
    assert not at.exception
    return at


@pytest.fixture
def analyze_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every model run the app makes (cached analyses make none). It counted ``bv.analyze``
    alone, which the app never calls, so its test could not fail; it now sees every engine function that
    runs the model (found from the engine: ``tests.conftest.count_model_runs``)."""
    yield count_model_runs(monkeypatch)


def _texts(at: AppTest) -> str:
    """All markdown, captions, headings and image captions of the last run, as one string."""
    return texts(at, ("markdown", "caption", "title", "subheader", "header", "info"))


def _image_count(at: AppTest) -> int:
    return sum(len(image.value) for image in at.image)


# ------------------------------------------------------------------------------------------ the pages


def test_first_visit_shows_a_real_result(at: AppTest) -> None:
    assert at.title[0].value == "What does a CNN backbone see?"
    assert at.radio(key="_w_backbone").value == "efficientnet_lite0"
    assert at.radio(key="_w_weights").value == "pretrained"
    assert at.selectbox(key="_w_sample").value == "cat"
    text = _texts(at)
    assert "EfficientNet-Lite0, stage by stage" in text
    assert "stage 5 · high" in text and "1280 × 7 × 7" in text
    assert "global pool" in text and "head" in text
    assert "cat" in at.get("progress")[0].proto.text  # the bundled weights are real: a cat is a cat
    assert _image_count(at) >= 1 + 5 + 1  # the crop, one map per stage, the sidebar preview
    assert len(at.get("page_link")) == len(registry.next_pages())  # "Where to go next": every page but Home
    assert len(at.get("download_button")) >= 2  # the stages strip and the one-page report


def test_the_sidebar_says_where_the_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKBONE_VIZ_DEVICE", "cpu")
    at = _start()
    assert not at.exception
    assert "The model runs on the CPU." in _texts(at)
    # A device this server does not have: the sidebar says so, no traceback (the backbone already
    # loaded in this process stays where it is).
    monkeypatch.setenv("BACKBONE_VIZ_DEVICE", "tpu")
    at = _start()
    assert not at.exception
    assert "The model runs on no device it can use: BACKBONE_VIZ_DEVICE is 'tpu'" in _texts(at)


def test_a_backbone_that_cannot_run_here_is_explained_on_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    import webui.shell.weights_ui as weights_ui

    def refuse(name: str, weights: str) -> bv.Backbone:
        raise bv.BackboneVizError("BACKBONE_VIZ_DEVICE asks for a GPU (cuda), but torch sees none.", "Run on cpu.")

    monkeypatch.setattr(weights_ui, "cached_backbone", refuse)
    at = _start()
    assert not at.exception
    assert any("cannot run on this server" in e.value and "Run on cpu." in e.value for e in at.error)


def test_the_app_takes_a_device_argument() -> None:
    from webui import device_argument

    assert device_argument(["--device", "cuda:1"]) == "cuda:1"
    assert device_argument(["--other", "x", "--device=cpu"]) == "cpu"
    assert device_argument([]) is None and device_argument(["--device"]) is None


@pytest.mark.parametrize("page", [p.file for p in registry.PAGES])
def test_every_page_of_the_registry_runs(at: AppTest, page: str) -> None:
    """A smoke test of every page the navigation lists: it runs without a traceback, draws the shared
    sidebar once, and shows something."""
    at.switch_page(page).run()
    assert not at.exception
    assert len(at.sidebar.file_uploader) == 1
    assert at.title or at.header or at.subheader


@pytest.mark.parametrize("page", PAGES)
def test_every_page_draws_the_sidebar_and_pictures(at: AppTest, page: str) -> None:
    at.switch_page(page).run()
    assert not at.exception
    assert not at.error or page == "app_pages/compare.py"  # compare asks for ResNet-50, offline here
    assert at.radio(key="_w_backbone").value == "efficientnet_lite0"
    assert len(at.sidebar.file_uploader) == 1
    assert _image_count(at) >= 6
    assert at.get("download_button")


def test_feature_buildup_controls_do_not_rerun_the_model(at: AppTest, analyze_calls: list[str]) -> None:
    at.switch_page("app_pages/feature_buildup.py").run()
    assert not at.exception
    assert "One map per stage, low → mid → high" in _texts(at)
    slider = at.select_slider(key="_w_layer.efficientnet_lite0")
    assert slider.value == "bn1"
    slider.set_value("bn2").run()
    assert at.metric[0].value == "1280 × 7 × 7"
    assert "stride" in at.metric[1].label.lower() and at.metric[1].value == "32 px"
    at.select_slider(key="_w_k").set_value(8).run()
    assert [len(image.value) for image in at.image].count(8) == 1  # the grid of the 8 most active channels
    at.radio(key="_w_scale").set_value("shared").run()
    assert "Shared scale" in _texts(at)
    channel = at.selectbox(key="_w_channel")
    second = int(channel.options[1].split()[0].lstrip("#"))  # options read "#12 (rank 1, mean 3.59)"
    channel.set_value(second).run()
    assert at.selectbox(key="_w_channel").value == second
    at.slider(key="_w_opacity").set_value(0.9).run()
    assert not at.exception
    assert analyze_calls == []  # every change above used the cached analysis
    # The choice of layer survives a trip to another page.
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/feature_buildup.py").run()
    assert at.select_slider(key="_w_layer.efficientnet_lite0").value == "bn2"


def test_gradcam_explains_any_class(at: AppTest) -> None:
    at.switch_page("app_pages/gradcam.py").run()
    assert not at.exception
    assert len(at.get("progress")) == 5
    assert "Why the rows look so different" in _texts(at)
    assert _image_count(at) >= 3 * 5  # activation, Grad-CAM and overlay for every stage
    at.radio(key="_w_target_mode").set_value("other").run()
    at.selectbox(key="_w_target_class").set_value(0).run()  # class 0: tench, surely not in a cat picture
    assert not at.exception
    assert "Grad-CAM now explains **tench**" in _texts(at)


def test_compare_opens_on_backbones_ready_offline(at: AppTest) -> None:
    # ResNet-50's pretrained weights are not in this test's empty cache: the page must not open on them.
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception and not at.error
    assert at.multiselect(key="_w_compare.rows").value == [
        "efficientnet_lite0/pretrained",
        "efficientnet_lite0/untrained",
    ]


def test_compare_offers_another_backbone_when_it_is_ready() -> None:
    cat = sample_choice("cat")
    # Untrained weights need no download: ResNet-50 is ready and is offered first.
    assert compare_rows.default(Choices("efficientnet_lite0", "untrained", cat)) == [
        "efficientnet_lite0/untrained",
        "resnet50/untrained",
    ]
    assert compare_rows.default(Choices("resnet50", "untrained", cat))[1] == "efficientnet_lite0/untrained"
    # ResNet-50 pretrained is not in this test's cache; the bundled Lite0 is.
    assert compare_rows.default(Choices("resnet50", "pretrained", cat)) == [
        "resnet50/pretrained",
        "efficientnet_lite0/pretrained",
    ]


def test_compare_aligns_backbones_and_recovers_offline(at: AppTest) -> None:
    at.switch_page("app_pages/compare.py").run()
    at.multiselect(key="_w_compare.rows").set_value(["efficientnet_lite0/pretrained", "resnet50/pretrained"]).run()
    assert not at.exception
    assert any("ResNet-50: the pretrained weights are not available" in e.value for e in at.error)
    text = _texts(at)
    for stride in (2, 4, 8, 16, 32):
        assert f"stride {stride}" in text
    at.button(key="compare.resnet50.untrained.resnet50").click().run()
    assert not at.exception
    assert not at.error
    # Only that row became untrained: the sidebar's weights (and the Lite0 row) stay pretrained.
    assert at.radio(key="_w_weights").value == "pretrained"
    assert at.multiselect(key="_w_compare.rows").value == [
        "efficientnet_lite0/pretrained",
        "resnet50/untrained",
    ]
    assert "2048 × 7 × 7" in _texts(at)  # ResNet-50's last stage, beside Lite0's 1280 × 7 × 7


def test_compare_puts_pretrained_and_untrained_side_by_side(at: AppTest) -> None:
    at.switch_page("app_pages/compare.py").run()
    rows = ["efficientnet_lite0/pretrained", "efficientnet_lite0/untrained"]
    at.multiselect(key="_w_compare.rows").set_value(rows).run()
    assert not at.exception and not at.error
    text = _texts(at)
    assert "pretrained · 4.7 M parameters" in text and "untrained · 4.7 M parameters" in text
    assert text.count("1280 × 7 × 7") == 2
    pretrained_row = text.split("pretrained · 4.7 M parameters")[1].split("untrained · 4.7 M parameters")[0]
    assert any(f"% {name}" in pretrained_row for name in CATS)  # the pretrained row's top-5 names the cat


# ------------------------------------------------------------------------------- sidebar and pictures


def test_upload_replaces_the_picture_on_every_page(at: AppTest) -> None:
    data = (SAMPLES / "flower.jpg").read_bytes()
    at.sidebar.file_uploader[0].upload("flower.jpg", data, "image/jpeg").run()
    assert not at.exception
    assert at.session_state["image"].name == "flower.jpg"
    assert "Now showing: your picture flower.jpg" in _texts(at)
    at.switch_page("app_pages/gradcam.py").run()
    assert not at.exception
    assert at.session_state["image"].name == "flower.jpg"


def test_a_large_photo_is_kept_at_working_size(at: AppTest) -> None:
    """A phone-sized photo is decoded once and kept at the working size: sessions stay small and fast."""
    import io

    from PIL import Image

    big = bv.load_image(SAMPLES / "coffee.jpg").resize((4000, 3000))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=90)
    at.sidebar.file_uploader[0].upload("phone.jpg", buffer.getvalue(), "image/jpeg").run()
    assert not at.exception
    kept = at.session_state["image"]
    assert kept.name == "phone.jpg" and len(kept.data) < len(buffer.getvalue())
    assert Image.open(io.BytesIO(kept.data)).size == (500, 375)  # the decoder's 1/8 scale
    # The working copy still has more pixels than any backbone resizes to before its crop.
    assert max(s.preprocessing.resize for s in bv.list_backbones()) == WORKING_SHORT_SIDE <= 375
    assert any("megapixels" in c.value for c in at.sidebar.caption)


def test_bad_upload_is_refused_and_the_app_keeps_working(at: AppTest) -> None:
    at.sidebar.file_uploader[0].upload("notes.png", b"These are my notes, not a picture.\n" * 10, "image/png")
    at.run()
    assert not at.exception
    assert any("notes.png could not be used" in e.value for e in at.error)
    assert at.session_state["image"].name == "cat"
    assert "Still showing the previous picture" in at.error[0].value
    assert _image_count(at) >= 7


def test_camera_photo_is_used(at: AppTest) -> None:
    at.toggle(key="_w_use_camera").set_value(True).run()
    at.camera_input[0].upload("photo.jpg", (SAMPLES / "coffee.jpg").read_bytes()).run()
    assert not at.exception
    assert at.session_state["image"].kind == "camera"


def test_sample_choice(at: AppTest) -> None:
    at.selectbox(key="_w_sample").set_value("coffee").run()
    assert not at.exception
    assert at.session_state["image"].name == "coffee"


def test_untrained_weights_work(at: AppTest) -> None:
    at.radio(key="_w_weights").set_value("untrained").run()
    assert not at.exception
    assert not at.error
    assert "Untrained weights" in at.warning[0].value
    assert _image_count(at) >= 7
    # The choice holds on another page, drawn without app.py.
    at.switch_page("app_pages/feature_buildup.py").run()
    assert at.radio(key="_w_weights").value == "untrained"


def test_torchvision_backbone_offline_explains_and_offers_a_way_on(at: AppTest) -> None:
    at.radio(key="_w_backbone").set_value("resnet50").run()
    assert not at.exception
    assert any("ResNet-50: the pretrained weights are not available" in e.value for e in at.error)
    labels = [b.label for b in at.button]
    assert "Use the bundled EfficientNet-Lite0" in labels and "Use an untrained ResNet-50" in labels
    at.button(key="load.bundled.resnet50").click().run()
    assert not at.exception
    assert not at.error
    assert at.radio(key="_w_backbone").value == "efficientnet_lite0"


def test_render_sidebar_draws_once_per_run() -> None:
    # As under `streamlit run`: app.py draws the sidebar, then the page's own call draws nothing.
    at = AppTest.from_string(
        """
import webui
with webui.sidebar_for_this_run():
    webui.page_setup()
    webui.render_sidebar()
""",
        default_timeout=TIMEOUT,
    ).run()
    assert not at.exception  # a second drawing would raise a duplicate widget key error
    assert len(at.sidebar.file_uploader) == 1


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_downloads_as_png(at: AppTest, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    made: dict[str, object] = {}
    real = st.download_button

    def recording(label, data, file_name=None, *args, **kwargs):
        made[file_name] = data
        return real(label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    at.radio(key="_w_weights").set_value("untrained").run()  # compare then draws every backbone's row
    at.switch_page(page).run()
    assert not at.exception
    assert made
    if page != "app_pages/compare.py":
        assert any(name.endswith("-report.png") for name in made)
    for name, data in made.items():
        png = data() if callable(data) else data  # made on click only
        assert isinstance(png, bytes) and png.startswith(b"\x89PNG"), name


def test_download_shows_progress_and_a_failure_is_explained(
    at: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webui.shell import weights_ui

    seen: list[tuple[int, int | None]] = []

    def fake_ensure(wf, *, progress=None, **kwargs):
        for done in (0, 25_000_000, 50_000_000):
            seen.append((done, 100_000_000))
            progress(done, 100_000_000)
        raise bv.WeightsError("The download of the weights stopped halfway.", "Try again in a minute.")

    monkeypatch.setattr(weights_ui.weights_mod, "ensure", fake_ensure)
    at.radio(key="_w_backbone").set_value("googlenet").run()
    assert not at.exception
    assert len(seen) == 3
    assert any(
        "GoogLeNet (Inception v1): the pretrained weights are not available" in e.value for e in at.error
    )
    # The students see one sentence and buttons; why, and what to do, are folded away for the teacher.
    details = [e for e in at.expander if e.label.startswith("For the teacher")]
    assert details and "stopped halfway" in details[0].markdown[0].value
    assert "Try again in a minute." in details[0].markdown[0].value
    assert not any("stopped halfway" in e.value for e in at.error)
    assert not at.get("progress")  # the bar is gone once the download ended


@pytest.mark.parametrize("weights", ["pretrained", "untrained"])
def test_gradcam_says_the_last_stage_sits_on_the_object_only_when_trained(at: AppTest, weights: str) -> None:
    at.radio(key="_w_weights").set_value(weights).run()
    at.switch_page("app_pages/gradcam.py").run()
    assert not at.exception
    text = _texts(at)
    assert ("it sits on the object" in text) == (weights == "pretrained")
    assert "7 × 7 here" in text  # Lite0's last stage, as the map beside it
