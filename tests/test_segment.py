"""Paint to segment (backbone_viz.heads.segment): known answers on composites with a true mask, the maths
of the prediction against the full hypercolumn, errors a learner can cause, and a shared model left alone.

The strokes are painted as a learner would (``../shared/notes/dense-heads.md``): one short stroke inside
each label, then a few corrections, each a small dab in the largest region the segmenter got wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

import backbone_viz as bv
from backbone_viz.heads.segment import _sample, _stage_maps
from tests.composites import composites
from tests.conftest import model_left_alone, sample

LABELS = ("object", "background")
#: Length of the first stroke of each label, in pixels.
STROKE = 25
#: Radius of a correction dab, in pixels.
DAB = 3
#: Corrections after the first strokes: with 2 strokes, about 250 painted pixels in all.
CORRECTIONS = 7


def crop_mask(bb: bv.Backbone, mask: np.ndarray) -> np.ndarray:
    """(crop, crop) bool: a picture's mask moved exactly as ``bb.crop`` moves the picture's pixels."""
    p = bb.preprocessing
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    resized = TF.resize(image, p.resize, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return np.asarray(TF.center_crop(resized, p.crop)) >= 128


def stroke(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A horizontal stroke of ``STROKE`` pixels through the most interior point of ``region``, clipped to it."""
    depth = ndi.distance_transform_edt(region)
    y, x = np.unravel_index(int(np.argmax(depth)), region.shape)
    xs = np.arange(max(0, x - STROKE // 2), min(region.shape[1], x + STROKE // 2 + 1))
    ys = np.full_like(xs, y)
    keep = region[ys, xs]
    return ys[keep], xs[keep]


def dab(wrong: np.ndarray) -> np.ndarray:
    """(H, W) bool: a disc of radius ``DAB`` at the most interior point of the largest wrong region."""
    parts, n = ndi.label(wrong)
    largest = 1 + int(np.argmax(ndi.sum(wrong, parts, index=range(1, n + 1))))
    depth = ndi.distance_transform_edt(parts == largest)
    y, x = np.unravel_index(int(np.argmax(depth)), wrong.shape)
    yy, xx = np.ogrid[: wrong.shape[0], : wrong.shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= DAB * DAB


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / max((mask | truth).sum(), 1))


def paint_and_correct(
    bb: bv.Backbone, image: Image.Image, truth: np.ndarray, *, levels=None, corrections: int = CORRECTIONS
) -> tuple[bv.Segmentation, np.ndarray]:
    """A learner's session on one picture: a stroke per label, then ``corrections`` dabs where it is wrong.

    Returns the last segmentation and the strokes it was fitted on; label 0 is the object."""
    strokes = np.full(truth.shape, -1, dtype=np.int64)
    for label, region in enumerate((truth, ~truth)):
        strokes[stroke(region)] = label
    seg = bv.fit_segmenter(bb, image, strokes, LABELS, levels=levels)
    for _ in range(corrections):
        found = seg.mask == 0
        wrong = found != truth
        if not wrong.any():
            break
        spot = dab(wrong)
        strokes[spot] = np.where(truth[spot], 0, 1)
        seg = bv.fit_segmenter(bb, image, strokes, LABELS, levels=levels)
    return seg, strokes


@pytest.fixture(scope="module")
def pictures(lite0: bv.Backbone) -> list[tuple[Image.Image, np.ndarray]]:
    """8 composites at 256 px (Lite0's resize): picture and its true mask in the crop's coordinates."""
    return [(c.image, crop_mask(lite0, c.mask)) for c in composites(lite0.preprocessing.resize, count=8)]


def mean_iou(bb: bv.Backbone, pictures, *, levels=None) -> tuple[float, list[float]]:
    scores = [iou(paint_and_correct(bb, image, truth, levels=levels)[0].mask == 0, truth) for image, truth in pictures]
    return float(np.mean(scores)), scores


# ----------------------------------------------------------------------------------------------- known answers


@pytest.fixture(scope="module")
def every_stage(lite0: bv.Backbone, pictures, one_thread) -> tuple[float, list[float]]:
    """Mean and per-composite IoU with every stage's features (the default)."""
    return mean_iou(lite0, pictures)


def test_all_stages_segment_the_composites(every_stage) -> None:
    """The notes measured a mean IoU of 0.86 on Lite0 with every stage weighted equally (0.88 here)."""
    score, scores = every_stage
    assert score >= 0.75, scores
    assert min(scores) >= 0.5, scores


def test_all_stages_beat_the_first_stage_alone(lite0: bv.Backbone, pictures, every_stage, one_thread) -> None:
    """Edges and colours alone leave the pasted region's inside and the busy background confused (0.54
    here, 0.52 in the notes)."""
    first, _ = mean_iou(lite0, pictures, levels=[1])
    assert every_stage[0] > first + 0.1, (every_stage[0], first)


def test_a_painted_pixel_gets_its_label(lite0: bv.Backbone, pictures) -> None:
    image, truth = pictures[0]
    seg, strokes = paint_and_correct(lite0, image, truth, corrections=3)
    painted = strokes >= 0
    assert (seg.mask[painted] == strokes[painted]).mean() >= 0.95
    assert seg.head.pixels == (int((strokes == 0).sum()), int((strokes == 1).sum()))


def test_shapes_and_probabilities(lite0: bv.Backbone, pictures) -> None:
    image, truth = pictures[1]
    seg, _ = paint_and_correct(lite0, image, truth, corrections=0)
    size = lite0.preprocessing.crop
    assert seg.labels == LABELS
    assert seg.mask.shape == (size, size) and seg.mask.dtype == np.int64
    assert seg.probabilities.shape == (2, size, size) and seg.probabilities.dtype == np.float32
    np.testing.assert_allclose(seg.probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(seg.mask, seg.probabilities.argmax(axis=0))
    assert not seg.mask.flags.writeable and not seg.probabilities.flags.writeable
    assert seg.input_image.size == (size, size)
    np.testing.assert_array_equal(np.asarray(seg.input_image), np.asarray(lite0.crop(image)))
    spec = lite0.spec
    assert seg.stages == tuple(s.index for s in spec.stages)
    assert seg.layers == tuple(s.last.name for s in spec.stages)
    assert [w.shape for w in seg.head.weights] == [(2, s.channels) for s in spec.stages]
    assert seg.fit_ms > 0 and seg.predict_ms > 0 and seg.forward_ms > 0


def test_the_prediction_equals_the_full_hypercolumn(lite0: bv.Backbone, pictures) -> None:
    """A 1x1 convolution per stage, upsampled and summed, is the linear head on the upsampled hypercolumn;
    and the features the fit samples at a pixel are that hypercolumn's."""
    image, truth = pictures[2]
    seg, _ = paint_and_correct(lite0, image, truth, corrections=0)
    size = lite0.preprocessing.crop
    _, maps = _stage_maps(lite0, image, lite0.spec.stages)
    column = torch.cat([F.interpolate(m[None], size=(size, size), mode="bilinear", align_corners=False)[0] for m in maps])
    weight = torch.cat([torch.tensor(w) for w in seg.head.weights], dim=1)
    logits = torch.einsum("kc,chw->khw", weight, column) + torch.tensor(seg.head.bias)[:, None, None]
    np.testing.assert_allclose(torch.softmax(logits, 0).numpy(), seg.probabilities, atol=1e-4)
    ys, xs = np.array([0, 17, 100, 223]), np.array([223, 5, 101, 0])
    for fmap, start in zip(maps, np.cumsum([0] + [m.shape[0] for m in maps])[:-1], strict=True):
        expected = column[start : start + fmap.shape[0], ys, xs].T
        torch.testing.assert_close(_sample(fmap, ys, xs, size), expected, atol=1e-5, rtol=1e-5)


def test_the_fit_is_deterministic(lite0: bv.Backbone, pictures) -> None:
    image, truth = pictures[3]
    _, strokes = paint_and_correct(lite0, image, truth, corrections=1)
    a = bv.fit_segmenter(lite0, image, strokes, LABELS)
    b = bv.fit_segmenter(lite0, image, strokes, LABELS)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    for wa, wb in zip(a.head.weights, b.head.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_levels_choose_stages(lite0: bv.Backbone, pictures) -> None:
    image, truth = pictures[0]
    _, strokes = paint_and_correct(lite0, image, truth, corrections=0)
    stages = lite0.spec.stages
    assert bv.fit_segmenter(lite0, image, strokes, LABELS, levels=[1]).layers == (stages[0].last.name,)
    assert bv.fit_segmenter(lite0, image, strokes, LABELS, levels=[5, 3]).stages == (3, 5)
    mid = bv.fit_segmenter(lite0, image, strokes, LABELS, levels=["mid"])
    assert mid.stages == tuple(s.index for s in stages if s.level == "mid")
    with pytest.raises(bv.SegmentError, match="no stage 9"):
        bv.fit_segmenter(lite0, image, strokes, LABELS, levels=[9])
    with pytest.raises(bv.SegmentError, match="no 'top' stage"):
        bv.fit_segmenter(lite0, image, strokes, LABELS, levels=["top"])


def test_apply_to_another_picture(lite0: bv.Backbone, pictures) -> None:
    """A head painted on one composite labels any other picture: same shapes and labels; applied to its
    own picture again, it gives the fit's own segmentation."""
    image, truth = pictures[0]
    seg, _ = paint_and_correct(lite0, image, truth)
    again = bv.apply_segmenter(lite0, seg.head, sample("cat"))
    size = lite0.preprocessing.crop
    assert again.mask.shape == (size, size) and again.probabilities.shape == (2, size, size)
    assert again.labels == LABELS and again.head is seg.head and again.fit_ms == 0
    assert again.stages == seg.stages
    same = bv.apply_segmenter(lite0, seg.head, image)
    np.testing.assert_allclose(same.probabilities, seg.probabilities, atol=1e-6)


def test_a_head_from_another_backbone_is_refused(lite0: bv.Backbone, pictures) -> None:
    image, truth = pictures[0]
    seg, _ = paint_and_correct(lite0, image, truth, corrections=0)
    torch.manual_seed(0)
    untrained = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    with pytest.raises(bv.SegmentError, match="pretrained"):
        bv.apply_segmenter(untrained, seg.head, image)


# ------------------------------------------------------------------------------------------------------ errors


def _strokes(size: int = 224) -> np.ndarray:
    strokes = np.full((size, size), -1, dtype=np.int64)
    strokes[10, 10:30] = 0
    strokes[200, 10:30] = 1
    return strokes


@pytest.mark.parametrize(
    ("strokes", "labels", "match"),
    [
        (np.full((224, 224), -1), LABELS, "Nothing is painted"),
        (np.where(_strokes() == 1, -1, _strokes()), LABELS, "Only 'object' is painted"),
        (_strokes(), ("object", "background", "sky"), "No stroke of 'sky'"),
        (_strokes(), ("object",), "at least 2 labels"),
        (_strokes(), ("a", "b", "c", "d", "e"), "5 labels; at most 4"),
        (np.where(_strokes() == 1, 2, _strokes()), LABELS, "label number 2"),
        (np.where(_strokes() == 1, -7, _strokes()), LABELS, "label number -7"),
        (_strokes(256), LABELS, "256x256, but the backbone sees a 224x224 crop"),
        (_strokes()[:, :100], LABELS, "224x100"),
        (_strokes(), ("cat", " Cat "), "Two labels are called 'Cat'"),
        (_strokes(), ("cat", "  "), "One label has no name"),
    ],
)
def test_errors_a_learner_can_cause(lite0: bv.Backbone, strokes, labels, match) -> None:
    with pytest.raises(bv.SegmentError, match=match) as raised:
        bv.fit_segmenter(lite0, sample("cat"), strokes, labels)
    assert raised.value.hint
    assert isinstance(raised.value, bv.HeadError)


def test_programming_mistakes_are_type_errors(lite0: bv.Backbone) -> None:
    with pytest.raises(TypeError, match="integer"):
        bv.fit_segmenter(lite0, sample("cat"), _strokes().astype(float), LABELS)
    with pytest.raises(TypeError, match="PIL"):
        bv.fit_segmenter(lite0, np.zeros((224, 224, 3)), _strokes(), LABELS)
    with pytest.raises(TypeError, match="one string"):
        bv.fit_segmenter(lite0, sample("cat"), _strokes(), "cat")


# ------------------------------------------------------------------------------------------- the shared model


def test_the_shared_model_is_left_alone(lite0: bv.Backbone, pictures) -> None:
    left_alone = model_left_alone(lite0.model)
    image, truth = pictures[4]
    seg, _ = paint_and_correct(lite0, image, truth, corrections=1)
    bv.apply_segmenter(lite0, seg.head, sample("cat"))
    with pytest.raises(bv.SegmentError):
        bv.fit_segmenter(lite0, image, np.full((224, 224), -1), LABELS)
    with torch.no_grad():  # a caller in no_grad mode still gets a fitted head
        assert bv.fit_segmenter(lite0, image, _strokes(), LABELS).head.weights[0].any()
    left_alone()


def test_marked_as_running_the_model() -> None:
    assert bv.fit_segmenter.runs_model and bv.apply_segmenter.runs_model
    assert math.isfinite(bv.heads.segment.L2)


def test_a_map_of_tiny_values_segments_like_the_same_map_at_full_size(lite0: bv.Backbone, pictures) -> None:
    """An untrained GoogLeNet's last stage holds values near 1e-12: standardising must scale them up (a
    fixed floor of 1e-5 on the spread once zeroed them, and its head labelled every pixel alike)."""
    from backbone_viz.heads import segment

    image, truth = pictures[0]
    _, strokes = paint_and_correct(lite0, image, truth, corrections=2)
    stages = list(lite0.spec.stages)
    _, maps = segment._stage_maps(lite0, image, stages)
    ys, xs = np.nonzero(strokes >= 0)
    targets = torch.from_numpy(strokes[ys, xs])
    size = strokes.shape[0]
    normal = segment._fit(lite0, stages, maps, LABELS, ys, xs, targets, size)
    tiny = segment._fit(lite0, stages, [m * 1e-12 for m in maps], LABELS, ys, xs, targets, size)
    mask, _ = segment._predict(normal, maps, size)
    tiny_mask, _ = segment._predict(tiny, [m * 1e-12 for m in maps], size)
    assert (mask == tiny_mask).mean() >= 0.99 and len(np.unique(tiny_mask)) == 2
