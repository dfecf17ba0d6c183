"""A detector from a few boxes (backbone_viz.heads.detect): trained on 4 composites of the cat's fur with
their true boxes, it finds the fur pasted on backgrounds it never saw; errors a learner can cause; the same
examples give the same detector; and the shared model is left alone.

The true box of a composite is the box around its true mask after the backbone's crop (``crop_mask``), in
the crop's inclusive pixels, as :func:`backbone_viz.fit_detector` takes them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import backbone_viz as bv
from backbone_viz.heads.cam_box import box_iou, mask_box
from tests.composites import _square, blob, composites
from tests.conftest import model_left_alone, sample
from tests.test_segment import crop_mask

#: Backgrounds of the held-out composites: none of them is under a training composite.
UNSEEN = ("grace_hopper", "flower")


@pytest.fixture(scope="module")
def examples(lite0: bv.Backbone) -> list[tuple[Image.Image, list[tuple[int, int, int, int]]]]:
    """The 4 cat composites among the first 8 at 256 px (backgrounds china, rocket, astronaut, coffee),
    each with its true box in the crop."""
    cats = [c for c in composites(lite0.preprocessing.resize, count=8) if c.source == "cat"]
    return [(c.image, [mask_box(crop_mask(lite0, c.mask))]) for c in cats]


@pytest.fixture(scope="module")
def held_out(lite0: bv.Backbone) -> list[tuple[str, Image.Image, tuple[int, int, int, int]]]:
    """8 new composites: the cat's fur in 4 new blobs (seed 1) on each unseen background, with true boxes."""
    size = lite0.preprocessing.resize
    out = []
    for background in UNSEEN:
        for i in range(4):
            mask = blob(size, np.random.default_rng([1, i]))
            picture = np.where(mask[..., None], _square("cat", size), _square(background, size))
            out.append((background, Image.fromarray(picture), mask_box(crop_mask(lite0, mask))))
    return out


@pytest.fixture(scope="module")
def detector(lite0: bv.Backbone, examples, one_thread) -> bv.Detector:
    return bv.fit_detector(lite0, examples)


# ----------------------------------------------------------------------------------------------- known answers


def test_finds_the_fur_on_unseen_backgrounds(lite0: bv.Backbone, detector, held_out, one_thread) -> None:
    """The notes measured a box IoU of 0.68 / 0.65 with a 1x1 head; here 0.64 on grace_hopper and 0.56 on
    flower (0.60 overall; one flower composite misses at 0.07)."""
    ious: dict[str, list[float]] = {b: [] for b in UNSEEN}
    for background, picture, truth in held_out:
        found = bv.detect(lite0, detector, picture, threshold=0.05, max_boxes=1)
        assert found.boxes, background
        ious[background].append(box_iou(found.boxes[0], truth))
    means = {b: float(np.mean(v)) for b, v in ious.items()}
    assert float(np.mean([*ious[UNSEEN[0]], *ious[UNSEEN[1]]])) >= 0.5, ious
    assert min(means.values()) >= 0.45, ious


def test_fits_its_own_examples(lite0: bv.Backbone, detector, examples, one_thread) -> None:
    for picture, (truth,) in examples:
        found = bv.detect(lite0, detector, picture)
        assert found.boxes and box_iou(found.boxes[0], truth) >= 0.7, (found.boxes, truth)


def test_the_default_stage_is_chosen_by_stride(lite0: bv.Backbone, detector) -> None:
    stride16 = [s for s in lite0.spec.stages if s.stride == 16][-1]
    assert (detector.stage, detector.layer, detector.stride) == (stride16.index, stride16.last.name, 16)
    assert "stride 16" in detector.why and "14 x 14" in detector.why and "several cells" in detector.why
    assert (detector.pictures, detector.boxes) == (4, 4)
    assert detector.losses.shape == (300,) and detector.losses[-1] < detector.losses[0] / 4
    assert detector.features_ms > 0 and detector.fit_ms > 0


def test_detections_shapes(lite0: bv.Backbone, detector, held_out) -> None:
    _, picture, _ = held_out[0]
    found = bv.detect(lite0, detector, picture, threshold=0.0, max_boxes=3)
    size = lite0.preprocessing.crop
    assert found.heatmap.shape == (14, 14) and found.heatmap.dtype == np.float32
    assert not found.heatmap.flags.writeable and ((found.heatmap >= 0) & (found.heatmap <= 1)).all()
    assert len(found.boxes) == len(found.scores) == 3
    assert list(found.scores) == sorted(found.scores, reverse=True)
    assert found.scores[0] == pytest.approx(float(found.heatmap.max()))
    for x0, y0, x1, y1 in found.boxes:
        assert 0 <= x0 <= x1 <= size - 1 and 0 <= y0 <= y1 <= size - 1
    assert (found.stage, found.layer, found.detector) == (detector.stage, detector.layer, detector)
    np.testing.assert_array_equal(np.asarray(found.input_image), np.asarray(lite0.crop(picture)))
    # A peak is a local maximum of its 3 x 3 neighbourhood, and only peaks above the threshold count.
    none = bv.detect(lite0, detector, picture, threshold=0.999)
    assert none.boxes == () and none.scores == ()


def test_another_stage(lite0: bv.Backbone, examples, one_thread) -> None:
    fine = bv.fit_detector(lite0, examples[:2], stage=3, steps=5)
    assert (fine.stage, fine.stride) == (3, 8)
    assert bv.detect(lite0, fine, examples[0][0], threshold=0.0).heatmap.shape == (28, 28)


def test_the_fit_is_deterministic_and_reports_progress(lite0: bv.Backbone, examples, one_thread) -> None:
    calls: list[tuple[int, int]] = []
    a = bv.fit_detector(lite0, examples[:2], steps=40, progress=lambda done, total: calls.append((done, total)))
    b = bv.fit_detector(lite0, examples[:2], steps=40)
    for name in ("weight", "bias", "weight2", "bias2", "losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.weight, bv.fit_detector(lite0, examples[:2], steps=40, seed=1).weight)
    assert calls[:2] == [(1, 42), (2, 42)] and calls[-1] == (42, 42)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls}) and len(calls) <= 2 + 40


def test_mirrored_boxes_are_trained_too(lite0: bv.Backbone, examples, one_thread) -> None:
    """A detector trained on one picture also finds the thing in the picture's mirror image."""
    picture, (box,) = examples[1]
    det = bv.fit_detector(lite0, [(picture, [box])], steps=150)
    size = lite0.preprocessing.crop
    # The picture is square at the resize size: its crop's mirror image is the crop of its mirror image.
    flipped = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    np.testing.assert_array_equal(np.asarray(lite0.crop(flipped)), np.asarray(lite0.crop(picture))[:, ::-1])
    mirrored = (size - 1 - box[2], box[1], size - 1 - box[0], box[3])
    found = bv.detect(lite0, det, flipped)
    assert found.boxes and box_iou(found.boxes[0], mirrored) >= 0.6


# ------------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("boxes", "match"),
    [
        (None, "There are no examples"),
        ([], "Picture 1 has no box"),
        ([(10, 10, 10, 50)], r"\(10, 10, 10, 50\) on picture 1 has no width"),
        ([(10, 50, 60, 50)], "has no height"),
        ([(60, 10, 10, 50)], "has no width"),
        ([(10, 10, 224, 50)], "reaches outside the 224 x 224 crop"),
        ([(-1, 10, 50, 50)], "reaches outside"),
    ],
)
def test_errors_a_learner_can_cause(lite0: bv.Backbone, boxes, match) -> None:
    examples = [] if boxes is None else [(sample("cat"), boxes)]
    with pytest.raises(bv.DetectError, match=match) as raised:
        bv.fit_detector(lite0, examples, steps=1)
    assert raised.value.hint and isinstance(raised.value, bv.HeadError)


def test_a_second_picture_without_a_box_is_named(lite0: bv.Backbone) -> None:
    with pytest.raises(bv.DetectError, match="Picture 2 has no box"):
        bv.fit_detector(lite0, [(sample("cat"), [(0, 0, 99, 99)]), (sample("china"), [])], steps=1)


def test_unknown_stage_and_bad_threshold(lite0: bv.Backbone, examples, detector) -> None:
    with pytest.raises(bv.DetectError, match="no stage 9"):
        bv.fit_detector(lite0, examples[:1], stage=9, steps=1)
    for threshold in (1.0, -0.1):
        with pytest.raises(bv.DetectError, match="threshold"):
            bv.detect(lite0, detector, examples[0][0], threshold=threshold)


def test_programming_mistakes_are_type_and_value_errors(lite0: bv.Backbone, detector) -> None:
    cat = sample("cat")
    with pytest.raises(TypeError, match="PIL"):
        bv.fit_detector(lite0, [(np.zeros((224, 224, 3)), [(0, 0, 9, 9)])], steps=1)
    with pytest.raises(TypeError, match="not one box"):
        bv.fit_detector(lite0, [(cat, (0, 0, 9, 9))], steps=1)
    with pytest.raises(TypeError, match="4 numbers"):
        bv.fit_detector(lite0, [(cat, [(0, 0, 9)])], steps=1)
    with pytest.raises(ValueError, match="steps"):
        bv.fit_detector(lite0, [(cat, [(0, 0, 9, 9)])], steps=0)
    with pytest.raises(ValueError, match="max_boxes"):
        bv.detect(lite0, detector, cat, max_boxes=0)
    with pytest.raises(TypeError, match="PIL"):
        bv.detect(lite0, detector, np.zeros((224, 224, 3)))


def test_a_detector_from_other_weights_is_refused(lite0: bv.Backbone, detector) -> None:
    torch.manual_seed(0)
    untrained = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    with pytest.raises(bv.DetectError, match="pretrained") as raised:
        bv.detect(untrained, detector, sample("cat"))
    assert raised.value.hint


# ------------------------------------------------------------------------------------------- the shared model


def test_the_shared_model_is_left_alone(lite0: bv.Backbone, examples, one_thread) -> None:
    left_alone = model_left_alone(lite0.model)
    det = bv.fit_detector(lite0, examples[:2], steps=20)
    bv.detect(lite0, det, sample("cat"))
    with pytest.raises(bv.DetectError):
        bv.fit_detector(lite0, [(sample("cat"), [])])
    with torch.no_grad():  # a caller in no_grad mode still gets a trained head
        assert bv.fit_detector(lite0, examples[:1], steps=5).weight2.any()
    left_alone()


def test_marked_as_running_the_model() -> None:
    assert bv.fit_detector.runs_model and bv.detect.runs_model
    assert {"fit_detector", "detect"} <= set(bv.core.runs.model_runs(bv))
