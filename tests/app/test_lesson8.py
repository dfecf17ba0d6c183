"""Lesson 8, what is a backbone for: the scripted strokes lie where they should, the reveal's IoU numbers
are the engine's own on the same picture and strokes, and its sentence names the choice that really won."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import torchvision.transforms.functional as TF
from PIL import Image
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from tests.app.helpers import texts
from webui.lessons import LESSONS
from webui.lessons import l8_backbone_for as l8
from webui.shell.links import LESSON_COUNT
from webui.views import paint

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TIMEOUT = 120
#: Lesson 8's right answer, after seven unanswered lessons.
ANSWERED = "-------c"


def _open(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"picture": "cat", "lesson": "8", "answers": ANSWERED, **query})
    at.switch_page("app_pages/lessons.py")
    return at.run()


def _image(example: l8.Example) -> Image.Image:
    return Image.open(io.BytesIO(example.image.data))


# ---------------------------------------------------------------------------------------------- strokes


def test_the_lesson_is_the_eighth_and_its_answer_is_the_outline() -> None:
    assert LESSONS[7] is l8.LESSON and LESSONS[7].number == 8 and not l8.LESSON.gradcam
    assert len(LESSONS) == LESSON_COUNT  # the URL's lesson numbers and the quiz's come after the last
    for spec in bv.list_backbones():
        question = l8.LESSON.question(spec)
        assert question.answer == 2 and "Its outline" in question.choices[2]
        last = spec.stages[-1]
        assert f"({last.stride} × {last.stride} px)" in question.choices[2]


@pytest.mark.parametrize(
    "sizes", sorted({(s.preprocessing.resize, s.preprocessing.crop) for s in bv.list_backbones()})
)
def test_the_strokes_lie_inside_and_outside_the_true_mask(sizes: tuple[int, int]) -> None:
    resize, crop = sizes
    made = l8.example(resize, crop)
    truth, painted = made.truth, made.strokes
    assert truth.shape == painted.shape == (crop, crop) and 0.05 < truth.mean() < 0.5
    assert truth[painted == 0].all() and not truth[painted == 1].any()
    cat, background = int((painted == 0).sum()), int((painted == 1).sum())
    assert 200 < cat < background < 1500  # a few strokes, more of them over the larger background
    assert set(np.unique(painted)) == {-1, 0, 1}
    # The dabs are spread: the background's reach most of the picture, the cat's most of the cat.
    for label, region in ((0, truth), (1, ~truth)):
        ys, xs = np.nonzero(painted == label)
        rows, cols = np.nonzero(region)
        assert np.ptp(ys) > 0.6 * np.ptp(rows) and np.ptp(xs) > 0.6 * np.ptp(cols)
    # Deterministic: the same picture and strokes on every call, so every session shares the fits.
    l8.example.cache_clear()
    again = l8.example(resize, crop)
    assert again.image.sha256 == made.image.sha256 and np.array_equal(again.strokes, painted)


def test_strokes_on_a_hand_made_mask() -> None:
    truth = np.zeros((100, 100), bool)
    truth[30:70, 20:80] = True  # a 40 x 60 rectangle: deepest on rows 49 and 50
    painted = l8.strokes(truth)
    assert truth[painted == 0].all() and not truth[painted == 1].any()
    # The stroke: through the first deepest point, (49, 39), 41 px long and 3 wide, kept 4 px off the edge.
    assert (painted[48:51, 24:60] == 0).all()
    # Nothing is painted on either side of the outline, nor on the picture's frame.
    assert not (painted[truth & ~ndi.binary_erosion(truth)] >= 0).any()
    assert not (painted[~truth & ndi.binary_dilation(truth)] >= 0).any()
    assert not (painted[[0, -1], :] >= 0).any() and not (painted[:, [0, -1]] >= 0).any()


def test_the_true_mask_is_cut_as_the_backbone_crops_the_picture(lite0: bv.Backbone) -> None:
    p = lite0.preprocessing
    made = l8.example(p.resize, p.crop)
    picture = _image(made)
    assert picture.size == (p.resize, p.resize)
    crop = np.asarray(lite0.crop(picture))
    whole = bv.composite(l8._sample(l8.THING), l8._sample(l8.BACKGROUND), p.resize, seed=l8.SEED)
    moved = np.asarray(TF.center_crop(Image.fromarray(whole.mask), p.crop))
    assert np.array_equal(moved, made.truth)
    assert np.array_equal(crop, np.asarray(TF.center_crop(picture, p.crop)))


# --------------------------------------------------------------------------------------------- sentence


def _masks(uniform_last: bool = False) -> list[np.ndarray]:
    masks = [np.eye(8, dtype=np.int64) for _ in range(4)]
    if uniform_last:
        masks[2] = np.ones((8, 8), np.int64)
    return masks


@pytest.mark.parametrize(
    ("ious", "winner"),
    [
        ([0.5, 0.4, 0.6, 0.8], "**All 5 stages together** cut the cat out best (IoU 0.80"),
        ([0.5, 0.4, 0.85, 0.7], "Here **stage 5 alone** scored best (IoU 0.85; all 5 stages 0.70)"),
        ([0.9, 0.4, 0.6, 0.8], "Here **stage 1 alone** scored best (IoU 0.90; all 5 stages 0.80)"),
        ([0.5, 0.95, 0.6, 0.8], "Here **stage 3 alone** scored best (IoU 0.95; all 5 stages 0.80)"),
    ],
)
def test_the_sentence_names_the_winner(ious: list[float], winner: str) -> None:
    text = l8.sentence(bv.get_spec("efficientnet_lite0"), "pretrained", ious, _masks(), l8.LABELS)
    assert winner in text
    assert "from a 7 × 7 grid (one cell per 32 × 32 px)" in text and "untrained" not in text


def test_the_sentence_for_a_last_stage_that_labels_one_thing() -> None:
    spec = bv.get_spec("vgg16")
    text = l8.sentence(spec, "untrained", [0.7, 0.6, 0.0, 0.75], _masks(uniform_last=True), l8.LABELS)
    assert "Stage 5 alone labels every pixel *background*" in text and "grid" not in text.split("Stage 5")[1]
    assert "With untrained weights no stage has learned what a cat is" in text
    assert "(one cell per pixel)" in text  # VGG's first stage keeps the full picture


# ---------------------------------------------------------------------------------------------- the page


def _shown(at: AppTest) -> dict[str, float]:
    """The reveal's IoU per choice of stages, as its captions show them."""
    shown = {}
    for image in at.image:
        for caption in image.captions:
            match = re.fullmatch(r"(.+) · IoU (\d\.\d\d)", caption)
            if match:
                shown[match.group(1)] = float(match.group(2))
    return shown


@pytest.mark.parametrize(("name", "weights"), [("efficientnet_lite0", "pretrained"), ("vgg16", "untrained")])
def test_the_reveal_shows_the_engines_iou_and_names_the_real_winner(name: str, weights: str) -> None:
    at = _open({"backbone": name, "weights": weights})
    assert not at.exception
    text = texts(at, ("markdown", "caption", "success", "warning"))
    assert "**Right.**" in text and "The cat's fur on a Chinese temple tower" in text
    shown = _shown(at)
    backbone = bv.load_backbone(name, weights, device="cpu")
    spec = backbone.spec
    made = l8.example(spec.preprocessing.resize, spec.preprocessing.crop)
    picture = _image(made)
    options = paint.stage_choices(spec)
    assert list(shown) == [option.title for option in options]
    measured = []
    for option in options:
        fit = bv.fit_segmenter(backbone, picture, made.strokes, l8.LABELS, levels=option.stages)
        measured.append(bv.mask_iou(fit.mask == 0, made.truth))
        assert shown[option.title] == pytest.approx(measured[-1], abs=0.01)
    best = int(np.argmax(measured))
    named = ["**stage 1 alone**", "**stage 3 alone**", "**stage 5 alone**", "**All 5 stages together**"][best]
    assert named in text and f"(IoU {shown[options[best].title]:.2f}" in text
    assert f"the strokes: {int((made.strokes >= 0).sum())} px" in text
    assert ("With untrained weights" in text) == (weights == "untrained")
    link = [p.proto for p in at.get("page_link") if p.proto.label.startswith("Explore this")][0]
    assert link.page == "build_head" and f"backbone={name}" in link.query_string
