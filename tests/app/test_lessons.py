"""The Lessons page through AppTest (bundled EfficientNet-Lite0, untrained VGG-16, no network), and the numbers
its sentences quote, checked on hand-made maps."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from backbone_viz.explain import facts
from tests.app.helpers import texts
from webui import lessons
from webui.lessons import progress as lesson_progress
from webui.shell import pages
from webui.shell.links import LESSON_COUNT
from webui.views import widgets

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TIMEOUT = 90


def _open(query: dict[str, str], page: str = "app_pages/lessons.py") -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.switch_page(page)
    return at.run()


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "subheader", "success", "warning"))


def _explore(at: AppTest) -> list:
    return [link.proto for link in at.get("page_link") if link.proto.label.startswith("Explore this")]


# ------------------------------------------------------------------------------------------ the page


@pytest.fixture(scope="module")
def walk() -> AppTest:
    """One session that answers every lesson in turn (the first choice each time)."""
    return _open({"picture": "cat"})


@pytest.mark.parametrize("number", range(1, LESSON_COUNT + 1))
def test_each_lesson_asks_first_then_reveals_and_links(walk: AppTest, number: int) -> None:
    at = walk
    at.session_state["lesson"] = number
    at.run()
    assert not at.exception
    question = at.radio(key=f"_w_lesson.q{number - 1}")
    assert question.value is None  # nothing chosen yet: no figure, no link
    assert "Answer first" in _texts(at) and not _explore(at)
    lesson = lessons.LESSONS[number - 1]
    spec = bv.get_spec("efficientnet_lite0")
    right = lesson.question(spec).answer
    question.set_value(right).run()
    assert not at.exception
    assert "**Right.**" in _texts(at)
    assert ":material/visibility:" in _texts(at)  # the sentence on what to notice
    links = _explore(at)
    assert len(links) == 1
    # Home is the default page: its address is the app's root ("/"), an empty page name.
    pages = {1: "", 2: "feature_buildup", 3: "feature_buildup", 4: "gradcam", 5: "feature_buildup"}
    assert links[0].page == pages.get(
        number, {6: "heads", 7: "inside_block", 8: "build_head", 9: "faithfulness"}.get(number)
    )
    query = dict(q.split("=", 1) for q in links[0].query_string.split("&"))
    assert query["picture"] == "cat" and query["backbone"] == "efficientnet_lite0"
    # The answer travels in the URL: one letter per lesson.
    assert at.query_params["lesson"] == str(number)
    assert at.query_params["answers"][number - 1] == lesson_progress.LETTERS[right]


def test_lesson_2_links_to_the_channel_it_picked(walk: AppTest) -> None:
    walk.session_state["lesson"] = 2
    walk.run()
    text = _texts(walk)
    channel = re.search(r"channel \*\*#(\d+)\*\* has the map that matches the picture's edge map best", text)
    assert channel, text
    link = _explore(walk)[0]
    assert link.page == "feature_buildup"
    assert f"channel={channel.group(1)}" in link.query_string and "layer=bn1" in link.query_string


def test_a_link_opens_a_lesson_with_its_answers() -> None:
    at = _open({"picture": "coffee", "lesson": "3", "answers": "ab"})
    assert not at.exception
    assert at.radio(key="_w_lesson.q2").value is None  # lessons 1 and 2 answered, 3 not yet
    assert f"2 of {LESSON_COUNT} answered" in at.get("button_group")[0].proto.label
    assert "3 · Low to high" in _texts(at)
    at.radio(key="_w_lesson.q2").set_value(0).run()  # a wrong answer: the right one is shown, and why
    assert "Not quite: the answer is c)" in _texts(at)
    assert at.query_params["answers"] == "aba"


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        (
            {},
            "EfficientNet-Lite0 is built from 16 blocks, with one convolution before them (the stem) and one "
            "convolution after them; this one, blocks.1.1, is an inverted residual block.",
        ),
        (
            {"backbone": "vgg16", "weights": "untrained"},
            "VGG-16 is built from 13 blocks, each one convolution and its activation; this one, conv2_1, is a "
            "plain block.",
        ),
    ],
)
def test_lesson_7_counts_the_blocks_without_the_stem_and_the_last_convolution(
    query: dict[str, str], sentence: str
) -> None:
    at = _open({"picture": "cat", "lesson": "7", "answers": "------a", **query})
    assert not at.exception
    text = _texts(at)
    assert sentence in text
    assert "built from 18 blocks" not in text


def test_lessons_1_and_3_put_the_last_convolution_in_the_backbone() -> None:
    """Lite0's 1x1 convolution to 1280 channels is stage 5's last layer: no lesson calls it the head's."""
    at = _open({"picture": "cat", "lesson": "3", "answers": "a-c"})
    assert not at.exception
    text = _texts(at)
    assert "One map pixel of last_conv can be changed by a 851 × 851 px square" in text
    at.session_state["lesson"] = 1
    at.run()
    text += _texts(at)
    assert "The backbone is everything up to stage 5: it gives 1280 maps of 7 × 7." in text
    assert "head_conv" not in text


def test_the_quiz_scores_the_answers() -> None:
    at = _open({"lesson": str(lesson_progress.QUIZ)})
    quiz = lessons.quiz(bv.get_spec("efficientnet_lite0"), _analysis())
    for i, question in enumerate(quiz):
        at.radio(key=f"_w_lesson.q{LESSON_COUNT + i}").set_value(question.answer if i else 0).run()
    assert not at.exception
    assert f"You got {len(quiz) - 1} of {len(quiz)} right." in _texts(at)


def _analysis() -> bv.AnalysisResult:
    from tests.conftest import sample

    return bv.analyze(bv.load_backbone("efficientnet_lite0"), sample("cat"))


def test_lesson_5_without_pretrained_weights_shows_the_untrained_side() -> None:
    at = _open({"backbone": "vgg16", "weights": "untrained", "lesson": "5", "answers": "----c"})
    assert not at.exception
    assert "VGG-16: the pretrained weights are not available" in " ".join(e.value for e in at.error)
    assert "only the untrained side can be shown" in _texts(at)


def test_lesson_5_shows_the_same_layers_pretrained_and_untrained() -> None:
    at = _open({"lesson": "5", "answers": "----c"})
    assert not at.exception
    text = _texts(at)
    match = re.search(r"correlation of (\d\.\d\d) pretrained and (\d\.\d\d) untrained", text)
    assert match and float(match.group(2)) > 0.5  # random filters still pass the picture's brightness
    assert "**pretrained**" in text and "**untrained**" in text


# --------------------------------------------------------------------------------------- the numbers


def _edge_picture() -> Image.Image:
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:, 16:] = 255  # one vertical edge in the middle
    return Image.fromarray(pixels)


def test_edge_channel_picks_the_map_that_lights_up_on_the_edge() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((3, 16, 16)).astype(np.float32)  # channel 0: noise
    maps[1] = 0.0
    maps[1][:, 7:9] = 1.0  # channel 1: bright along the edge
    maps[2] = 1.0 - maps[1]  # channel 2: dark on the edge (negatively matched)
    layer = bv.get_spec("efficientnet_lite0").layers[0]
    result = SimpleNamespace(activations={layer.name: maps}, input_image=_edge_picture())
    channel, r, median = facts.edge_channel(result, layer)
    assert channel == 1 and r > 0.9 and median < r


def test_spots_counts_separate_bright_places() -> None:
    cam = np.zeros((10, 10), np.float32)
    assert facts.spots(cam) == 0
    cam[1:3, 1:3] = 1.0
    cam[6:9, 6:8] = 0.8
    cam[0, 9] = 0.2  # below half the maximum: not a spot
    assert facts.spots(cam) == 2


def test_receptive_field_note_explains_only_what_is_true() -> None:
    lite0 = bv.get_spec("efficientnet_lite0")
    last = widgets.receptive_field_note(lite0.stages[-1].last, 224)
    assert "851 px is more than the 224 px picture" in last and "speck" not in last
    first = widgets.receptive_field_note(lite0.layers[0], 224)
    assert "3 × 3 px" in first and "speck" in first and "more than" not in first
    vgg = widgets.receptive_field_note(bv.get_spec("vgg16").stages[-1].last, 224)  # 196 px
    assert "196 × 196 px" in vgg and "more than" not in vgg and "speck" not in vgg


# ----------------------------------------------------------------------------------------- Home


def test_home_lists_every_page_and_says_how_stages_shrink() -> None:
    every = [p.file for p in pages.PAGES]
    assert [p.file for p in pages.next_pages()] == [p for p in every if p != "app_pages/home.py"]
    assert all((ROOT / p).is_file() for p in every) and len(set(every)) == len(every)
    at = _open({"backbone": "vgg16", "weights": "untrained"}, page="app_pages/home.py")
    assert not at.exception
    lines = [p.next_line for p in pages.next_pages()]
    assert [link.proto.label for link in at.get("page_link")][-len(lines) :] == lines
    info = at.info[0].value
    assert "stage 1 keeps the full 224 × 224 picture" in info and "each stage halves" not in info
    # The sentence about the real backbone only stands once the analysis is there.
    at = _open({"backbone": "vgg16", "weights": "pretrained"}, page="app_pages/home.py")
    assert at.error and "looking at your picture" not in _texts(at)


# ------------------------------------------------------------------------------------------ lesson 6


@pytest.mark.parametrize(
    ("query", "sentences"),
    [
        (
            {},
            [
                "The 8 largest of the 1280 numbers EfficientNet-Lite0's classifier head reads for your picture",
                "The classifier head reads 1280 numbers: each channel of the last stage's map, averaged over "
                "the whole picture. The ImageNet head turns them into 1000 scores.",
                "only 3843 weights (1280 per class plus a bias)",
                "a detector such as RetinaNet takes 3 maps of stages 3, 4 and 5 (40 × 28 × 28, 112 × 14 × 14, "
                "1280 × 7 × 7)",
            ],
        ),
        (
            {"backbone": "vgg16", "weights": "untrained"},
            [
                "The 8 largest of the 4096 numbers the last layer of VGG-16's classifier head reads",
                "its last layer turns these 4096 numbers into 1000 scores",
                "a detector such as RetinaNet takes 2 maps of stages 4 and 5 (512 × 28 × 28, 512 × 14 × 14)",
            ],
        ),
    ],
)
def test_lesson_6_says_which_head_reads_the_numbers_and_which_reads_maps(
    query: dict[str, str], sentences: list[str]
) -> None:
    at = _open({"picture": "cat", "lesson": "6", "answers": "-----d", **query})
    assert not at.exception
    text = _texts(at)
    for sentence in sentences:
        assert sentence in text
    assert "every head" not in text  # a detector's head reads maps, not these numbers
    assert len(at.get("vega_lite_chart")) == 1  # the largest numbers as labelled bars, not a stripe


@pytest.mark.parametrize(("picture", "beats"), [("flower", True), ("cat", False)])
def test_lesson_9_says_from_its_curves_whether_grad_cam_beat_chance(picture: str, beats: bool) -> None:
    """Measured with the bundled weights, deletion areas of Grad-CAM and of the random map: the daisy 0.012
    against 0.036 (Grad-CAM's pixels matter); the cat 0.070 against 0.029, because the cat fills the picture
    and black holes scattered at random break it faster than one region going black."""
    at = _open({"picture": picture, "lesson": "9"})
    at.radio(key="_w_lesson.q8").set_value(2).run()
    assert not at.exception and not at.error
    text = _texts(at)
    found = re.search(r"Grad-CAM (\d\.\d{3}), random (\d\.\d{3})", text)
    assert found, text
    ours, chance = float(found.group(1)), float(found.group(2))
    assert (ours < chance) is beats
    # The sentence follows the two areas (lower: the probability fell faster).
    if ours < chance * 0.9:
        assert "fall faster than chance" in text
    elif ours <= chance:
        assert "only a little better than chance" in text
    else:
        assert "no better than chance" in text and "ROAD" in text
    shown = re.findall(r"order: \*[^*]+\* (\d+\.\d)%", text)
    assert len(shown) == 2
