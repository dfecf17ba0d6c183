"""Where a detector or segmenter looked: the maps it can be made from, EigenCAM and the in-box rescaling
against pytorch-grad-cam, what the maps show on a made picture, a segmenter's Grad-CAM per class, and
what the shared model must not feel.

No internet: models are built untrained (once each per module, one thread); the segmenter's head is a
checkpoint made here and loaded from a file.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.svd_on_activations import (
    get_2d_projection,
    get_2d_projection_with_sign_correction,
)

import backbone_viz as bv
from backbone_viz.core.runs import model_runs
from backbone_viz.dense import looked
from backbone_viz.dense.inside import _dense_modules, _run, stage_layers
from backbone_viz.dense.models import _work_picture
from backbone_viz.errors import CamError
from backbone_viz.explain.cams import eigen_projection
from tests.conftest import model_left_alone

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = [s.name for s in bv.list_dense()]
#: Where the white square of :func:`square` is, x0, y0, x1, y1 on its 320x240 picture.
SQUARE = (200, 60, 260, 120)


def square() -> Image.Image:
    """A white square on flat grey, 320x240: the only thing on the picture."""
    picture = Image.new("RGB", (320, 240), (90, 90, 90))
    ImageDraw.Draw(picture).rectangle(
        [SQUARE[0], SQUARE[1], SQUARE[2] - 1, SQUARE[3] - 1], fill=(250, 250, 250)
    )
    return picture


def mass_near(
    heat: np.ndarray, box: tuple[int, int, int, int], picture_size: tuple[int, int], margin: int
) -> float:
    """The share of ``heat``'s sum within ``margin`` picture pixels of ``box`` (picture pixels)."""
    h, w = heat.shape
    sx, sy = w / picture_size[0], h / picture_size[1]
    ys, xs = np.mgrid[:h, :w]
    near = (
        (xs + 0.5 >= (box[0] - margin) * sx)
        & (xs + 0.5 <= (box[2] + margin) * sx)
        & (ys + 0.5 >= (box[1] - margin) * sy)
        & (ys + 0.5 <= (box[3] + margin) * sy)
    )
    return float(heat[near].sum() / heat.sum())


@pytest.fixture(scope="module")
def rcnn() -> Iterator[bv.DenseModel]:
    model = bv.load_dense("fasterrcnn_resnet50_fpn", "untrained")
    yield model
    del model
    gc.collect()


@pytest.fixture(scope="module")
def found(rcnn: bv.DenseModel) -> bv.DenseResult:
    return bv.detect_objects(rcnn, square(), threshold=0.0)


# ------------------------------------------------------------------------------------------- the sources


@pytest.mark.parametrize("name", NAMES)
def test_sources_default_first_unique_keys_and_the_backbones_stages(name: str) -> None:
    spec = bv.get_dense_spec(name)
    sources = bv.look_sources(name)
    assert bv.look_sources(spec) == sources
    keys = [s.key for s in sources]
    assert len(set(keys)) == len(keys)
    assert all(s.title and s.title[0].isalpha() for s in sources)
    stages = list(stage_layers(spec))
    if spec.kind == "semantic segmenter":
        # The head reads the last stage: that is the default, then the one before it.
        assert keys == [stages[-1], stages[-2]] == [spec.neck_inputs[-1], stages[-2]]
        assert [s.stride for s in sources] == [8, 8]  # both dilated
    else:
        assert keys[0] == "neck" and sources[0].stride is None
        necks = [k for k in keys if k.startswith("neck:")]
        assert keys == ["neck", *necks, *stages]
        strides = [s.stride for s in sources[1 : 1 + len(necks)]]
        assert strides == sorted(strides), "the neck's outputs, fine to coarse"
        assert sources[0].title == f"the {len(necks)} maps the heads read, together"
        if spec.builder.startswith(("detection.fasterrcnn", "detection.maskrcnn")):
            assert necks == ["neck:0", "neck:1", "neck:2", "neck:3", "neck:pool"]
            assert strides == [4, 8, 16, 32, 64] and "P2 (stride 4)" in sources[1].title
        elif spec.builder.startswith(("detection.retinanet", "detection.fcos")):
            assert necks == ["neck:0", "neck:1", "neck:2", "neck:p6", "neck:p7"]
            assert strides == [8, 16, 32, 64, 128] and "P3 (stride 8)" in sources[1].title
        else:
            assert necks == [f"neck:{i}" for i in range(6)]
            assert strides == [8, 16, 30, 60, 100, 300]
    for s in sources:
        if s.stride is not None:
            assert f"(stride {s.stride})" in s.title


def _real_strides(dense: bv.DenseModel, height: int) -> dict[str, int]:
    """The stride of every neck output and stage on a (1, 3, height, height) input, from their real shapes."""
    x = torch.zeros(1, 3, height, height)
    out = {}
    with torch.inference_mode():
        if dense.spec.kind != "semantic segmenter":
            out = {f"neck:{k}": v for k, v in dense.model.backbone(x).items()}
        out.update(_run(_dense_modules(dense), x, stage_layers(dense.spec)))
    return {k: round(height / v.shape[-2]) for k, v in out.items()}


@pytest.mark.parametrize(
    "name",
    [
        "ssd300_vgg16",
        "fasterrcnn_resnet50_fpn",
        "retinanet_resnet50_fpn",
        "fcos_resnet50_fpn",
        "fcn_resnet50",
    ],
)
def test_the_strides_and_neck_names_are_the_models_own(name: str, request: pytest.FixtureRequest) -> None:
    """Each kind of neck once (Mask R-CNN's is Faster R-CNN's; DeepLabV3's backbone is FCN's)."""
    built = {"fasterrcnn_resnet50_fpn": "rcnn", "fcn_resnet50": "fcn"}
    dense = request.getfixturevalue(built[name]) if name in built else bv.load_dense(name, "untrained")
    height = dense.spec.input_size if name.startswith("ssd") else 512
    real = _real_strides(dense, height)
    sources = bv.look_sources(dense)
    named = [s.key for s in sources if s.stride is not None]
    if dense.spec.kind != "semantic segmenter":
        assert [k for k in named if k.startswith("neck:")] == [k for k in real if k.startswith("neck:")]
    for s in sources:
        if s.stride is not None:
            assert real[s.key] == s.stride, s.key


# ------------------------------------------------------------------------------------------- the maths


def test_eigencam_is_pytorch_grad_cams_projection_on_a_detectors_map(rcnn: bv.DenseModel) -> None:
    work, _ = _work_picture(rcnn, square())
    with torch.inference_mode():
        batch = rcnn.model.transform([TF.to_tensor(work)])[0]
        acts = rcnn.model.backbone(batch.tensors)["2"].float().numpy()  # P4, (1, 256, h, w)
    theirs = get_2d_projection(acts)[0]
    top = np.abs(theirs).max()
    np.testing.assert_allclose(eigen_projection(acts[0]), theirs, atol=1e-5 * top)
    # Where the map is made, the sign is the one pytorch-grad-cam's sign correction picks.
    corrected = get_2d_projection_with_sign_correction(acts)[0]
    np.testing.assert_allclose(looked._eigencam(acts[0]), np.maximum(corrected, 0), atol=1e-5 * top)
    # Both signs occur on this picture's maps: the correction is not idle. (Our projection, just shown
    # equal: pytorch-grad-cam's full SVD of P2's 22,528 places would make a 2 GB matrix.)
    flips = []
    with torch.inference_mode():
        for value in rcnn.model.backbone(batch.tensors).values():
            raw = eigen_projection(value[0].float().numpy())
            flips.append(abs(raw.min()) > abs(raw.max()))
    assert any(flips) and not all(flips)


def test_a_map_on_an_unpadded_input_is_pytorch_grad_cams_upsampled_map(rcnn: bv.DenseModel) -> None:
    """A 512x512 picture is the detector's input as it is (no resize, no padding), and the map's size: the
    whole map is pytorch-grad-cam's EigenCAM output (ReLU, min-max, OpenCV's bilinear resize to the input)."""
    picture = square().resize((512, 512))
    result = bv.detect_objects(rcnn, picture, threshold=0.0)
    made = bv.where_it_looked(rcnn, picture, result, source="neck:2")
    with torch.inference_mode():
        batch = rcnn.model.transform([TF.to_tensor(picture)])[0]
        assert tuple(batch.tensors.shape[-2:]) == (512, 512) and tuple(batch.image_sizes[0]) == (512, 512)
        acts = rcnn.model.backbone(batch.tensors)["2"].float().numpy()
    cam = np.maximum(get_2d_projection_with_sign_correction(acts), 0)
    theirs = scale_cam_image(cam, (512, 512))[0]
    assert made.whole.shape == (512, 512)
    np.testing.assert_allclose(made.whole, theirs, atol=2e-3)


def _tutorial(boxes: list[tuple[int, int, int, int]], cam: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's Faster R-CNN tutorial, ``renormalize_cam_in_bounding_boxes`` without the drawing,
    with one change: ``scale_cam_image`` takes a batch (n, h, w), and the tutorial hands it one (h, w) map,
    so it rescales each row on its own; here it gets the batch of one it expects, which rescales each box
    (and then the whole) as the tutorial's docstring says."""
    renormalized_cam = np.zeros(cam.shape, dtype=np.float32)
    images = []
    for x1, y1, x2, y2 in boxes:
        img = renormalized_cam * 0
        img[y1:y2, x1:x2] = scale_cam_image(cam[None, y1:y2, x1:x2].copy())[0]
        images.append(img)
    renormalized_cam = np.max(np.float32(images), axis=0)
    return scale_cam_image(renormalized_cam[None])[0]


def test_renormalising_in_boxes_is_the_tutorials() -> None:
    rng = np.random.default_rng(0)
    cam = rng.random((40, 60)).astype(np.float32) ** 2
    boxes = [(5, 4, 25, 20), (15, 10, 40, 30), (50, 0, 60, 40)]  # overlapping, and one on the edge
    mine = bv.renormalise_in_boxes(cam, np.array(boxes, np.float32))
    np.testing.assert_allclose(mine, _tutorial(boxes, cam), atol=1e-6)
    inside = np.zeros(cam.shape, bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert (mine[~inside] == 0).all() and mine.max() == pytest.approx(1.0)
    # Each box alone spans [0, 1] (the tutorial rescales inside each box).
    for box in boxes:
        alone = bv.renormalise_in_boxes(cam, np.array([box], np.float32))
        x0, y0, x1, y1 = box
        assert alone[y0:y1, x0:x1].min() == 0.0 and alone[y0:y1, x0:x1].max() == pytest.approx(1.0)
    # A box partly outside the map is clipped; fractional edges take every pixel they touch; none: zeros.
    clipped = bv.renormalise_in_boxes(cam, np.array([[-10.0, -5.0, 10.5, 8.2]], np.float32))
    np.testing.assert_allclose(clipped, _tutorial([(0, 0, 11, 9)], cam), atol=1e-6)
    assert not bv.renormalise_in_boxes(cam, np.zeros((0, 4), np.float32)).any()


def test_a_padded_inputs_cells_are_cut_to_the_picture() -> None:
    # 819 of 832 columns are the picture: at stride 8, 103 of 104 cells touch it; at stride 32, all 26.
    assert looked._picture_cells((64, 104), (512, 832), (512, 819)) == (64, 103)
    assert looked._picture_cells((16, 26), (512, 832), (512, 819)) == (16, 26)
    assert looked._picture_cells((16, 26), (512, 832), (512, 832)) == (16, 26)
    # A cam of 2x3 cells of 8 px over a 16x24 input, the picture its left 16x20: the last column's cell
    # is cut to its 4 picture pixels, not squeezed into the picture.
    cam = torch.zeros(2, 3)
    cam[:, 2] = 1.0
    out = looked._to_picture(cam, (8.0, 8.0), (16, 20), (20, 16))
    full = F.interpolate(cam[None, None], size=(16, 24), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(out, full[:, :20].numpy(), atol=1e-6)


def test_the_maps_size() -> None:
    assert looked._map_size((320, 240)) == (320, 240)  # never enlarged
    assert looked._map_size((1024, 768)) == (512, 384)
    assert looked._map_size((300, 2000)) == (77, 512)


# ------------------------------------------------------------------------------------------- detectors


@pytest.mark.parametrize("source", ["neck", "neck:0"])
def test_an_untrained_detector_looks_at_the_only_thing_on_the_picture(
    rcnn: bv.DenseModel, found: bv.DenseResult, source: str
) -> None:
    """An untrained network still answers edges and contrast: its map sits on the white square. (The
    stride-4 map is the one whose raw EigenCAM sign lands on the grey instead: its mass near the square
    was 0 before the sign correction.)"""
    check = model_left_alone(rcnn.model)
    made = bv.where_it_looked(rcnn, square(), found, source=source, threshold=0.0)
    check()
    assert made.method == "EigenCAM" and made.model == rcnn.name and made.source.key == source
    assert made.whole.shape == (240, 320) and made.whole.dtype == np.float32
    assert made.whole.min() >= 0.0 and made.whole.max() == pytest.approx(1.0)
    area = (SQUARE[2] - SQUARE[0] + 20) * (SQUARE[3] - SQUARE[1] + 20) / (320 * 240)  # 8% of the picture
    assert mass_near(made.whole, SQUARE, (320, 240), margin=10) > 0.5 > 5 * area
    y, x = np.unravel_index(made.whole.argmax(), made.whole.shape)
    assert SQUARE[0] - 10 <= x <= SQUARE[2] + 10 and SQUARE[1] - 10 <= y <= SQUARE[3] + 10


def test_the_regions_are_the_best_boxes_and_the_map_is_rescaled_inside_them(
    rcnn: bv.DenseModel, found: bv.DenseResult
) -> None:
    assert len(found) > 3  # an untrained Faster R-CNN boxes noise at threshold 0
    threshold = float(np.sort(found.scores)[-5])  # the best 5 (ties aside) pass
    made = bv.where_it_looked(rcnn, square(), found, source="layer2.3", threshold=threshold, max_regions=3)
    assert len(made.regions) == 3
    best = np.argsort(-found.scores, kind="stable")[:3]
    assert [r.score for r in made.regions] == pytest.approx(found.scores[best].tolist())
    assert all(r.score >= threshold and r.heat is None for r in made.regions)
    for region, i in zip(made.regions, best, strict=True):
        assert region.label == found.labels[i] and region.box.dtype == np.float32
        np.testing.assert_array_equal(region.box, found.boxes[i])
    # The picture is the maps' size here, so the boxes are in the map's pixels as they are.
    boxes = np.array([r.box for r in made.regions])
    np.testing.assert_allclose(made.in_boxes, bv.renormalise_in_boxes(made.whole, boxes), atol=1e-6)
    inside = np.zeros(made.whole.shape, bool)
    for x0, y0, x1, y1 in boxes:
        inside[int(np.floor(y0)) : int(np.ceil(y1)), int(np.floor(x0)) : int(np.ceil(x1))] = True
    assert (made.in_boxes[~inside] == 0).all() and made.in_boxes.max() == pytest.approx(1.0)
    assert "EigenCAM" in made.why and "no gradient" in made.why and made.why.count(". ") == 1
    assert made.source.title.startswith("stage 3") and made.seconds > 0


def test_a_larger_picture_maps_at_512_and_boxes_scale_with_it(rcnn: bv.DenseModel) -> None:
    picture = square().resize((1024, 768))
    result = bv.detect_objects(rcnn, picture, threshold=0.0)
    made = bv.where_it_looked(rcnn, picture, result, threshold=0.0, max_regions=2)
    assert made.whole.shape == made.in_boxes.shape == (384, 512)
    boxes = np.array([r.box for r in made.regions]) / 2
    np.testing.assert_allclose(made.in_boxes, bv.renormalise_in_boxes(made.whole, boxes), atol=1e-6)
    big = [SQUARE[0] * 3.2, SQUARE[1] * 3.2, SQUARE[2] * 3.2, SQUARE[3] * 3.2]
    assert mass_near(made.whole, tuple(int(v) for v in big), (1024, 768), margin=32) > 0.5


def test_no_boxes_still_gives_the_whole_map(rcnn: bv.DenseModel) -> None:
    nothing = bv.detect_objects(rcnn, square(), threshold=1.0)
    assert len(nothing) == 0
    made = bv.where_it_looked(rcnn, square(), nothing, source="neck:3")
    assert made.regions == () and made.whole.max() == pytest.approx(1.0)
    assert made.in_boxes.shape == made.whole.shape and not made.in_boxes.any()


def test_bad_requests_say_what_is_wrong(rcnn: bv.DenseModel, found: bv.DenseResult) -> None:
    with pytest.raises(CamError, match=r"no maps called 'neck:p6'.*Choose one of: neck, neck:0") as info:
        bv.where_it_looked(rcnn, square(), found, source="neck:p6")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="between 0 and 1, not 1.5"):
        bv.where_it_looked(rcnn, square(), found, threshold=1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        bv.where_it_looked(rcnn, square(), found, threshold=-0.1)
    with pytest.raises(CamError, match="320x240 picture, not fasterrcnn_resnet50_fpn's on this 100x100"):
        bv.where_it_looked(rcnn, square().resize((100, 100)), found)
    with pytest.raises(ValueError, match="dense model"):
        bv.look_sources("yolo")


def test_two_sessions_at_once_get_what_one_gets_alone(rcnn: bv.DenseModel, found: bv.DenseResult) -> None:
    check = model_left_alone(rcnn.model)
    alone = bv.where_it_looked(rcnn, square(), found, source="neck:2", threshold=0.0)
    together: list[bv.LookedMaps] = []
    threads = [
        threading.Thread(
            target=lambda: together.append(
                bv.where_it_looked(rcnn, square(), found, source="neck:2", threshold=0.0)
            )
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check()
    assert len(together) == 2
    for other in together:
        np.testing.assert_allclose(other.whole, alone.whole, atol=1e-6)
        np.testing.assert_allclose(other.in_boxes, alone.in_boxes, atol=1e-6)
        assert [r.label for r in other.regions] == [r.label for r in alone.regions]


def test_it_is_marked_as_running_a_model() -> None:
    assert "where_it_looked" in model_runs(bv)
    assert "look_sources" not in model_runs(bv) and "renormalise_in_boxes" not in model_runs(bv)


# ------------------------------------------------------------------------------------------- segmenters

CAT = 8  # VOC: background, aeroplane, bicycle, bird, boat, bottle, bus, car, cat


def halves() -> Image.Image:
    """Dark left half, bright right half, 160x120."""
    picture = Image.new("RGB", (160, 120), (30, 30, 30))
    ImageDraw.Draw(picture).rectangle([80, 0, 159, 119], fill=(235, 235, 235))
    return picture


@pytest.fixture(scope="module")
def fcn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bv.DenseModel]:
    """An FCN whose last convolution is a line between the head's features on the bright half and on the
    dark half of :func:`halves`: "cat" wins on the bright side, the background on the dark side, every
    other class nowhere. Made here, saved, and loaded from the file as a user's checkpoint is."""
    built = bv.load_dense("fcn_resnet50", "untrained")
    work, _ = _work_picture(built, halves())
    from backbone_viz.dense.models import _normalise

    x = _normalise(built, TF.to_tensor(work))
    head = built.model.classifier
    with torch.inference_mode():
        before_last = torch.nn.Sequential(*list(head.children())[:-1])
        feats = before_last(built.model.backbone(x)["out"])[0]  # (512, h, w), before the last 1x1 conv
    w = feats.shape[-1]
    bright, dark = feats[:, :, w // 2 + 2 :].mean((1, 2)), feats[:, :, : w // 2 - 2].mean((1, 2))
    direction = bright - dark
    # The file holds the auxiliary head too, as torchvision's does (loading drops it).
    state = {k: v for k, v in built.spec.build().state_dict().items() if k.startswith("aux_classifier.")}
    state.update({k: v.clone() for k, v in built.model.state_dict().items()})
    weight = torch.zeros_like(state["classifier.4.weight"])
    bias = torch.full_like(state["classifier.4.bias"], -1e3)
    weight[CAT, :, 0, 0] = direction
    bias[CAT] = -float(direction @ (bright + dark)) / 2
    bias[0] = 0.0
    state["classifier.4.weight"], state["classifier.4.bias"] = weight, bias
    path = Path(tmp_path_factory.mktemp("fcn")) / "fcn-bright-cat.pth"
    torch.save(state, path)
    del built, state
    gc.collect()
    model = bv.load_dense("fcn_resnet50", path)
    yield model
    del model
    gc.collect()


@pytest.fixture(scope="module")
def segmented(fcn: bv.DenseModel) -> bv.DenseResult:
    return bv.detect_objects(fcn, halves())


def test_a_segmenters_grad_cam_names_its_class_and_leaves_the_model_alone(
    fcn: bv.DenseModel, segmented: bv.DenseResult
) -> None:
    picture, result = halves(), segmented
    assert [name for _, name, _ in result.legend] == ["cat", "__background__"] or [
        name for _, name, _ in result.legend
    ] == ["__background__", "cat"]
    check = model_left_alone(fcn.model)
    made = bv.where_it_looked(fcn, picture, result)
    check()
    assert made.method == "Grad-CAM" and made.source.key == "layer4.2"
    assert [r.label for r in made.regions] == ["cat"]  # the background is left out
    region = made.regions[0]
    share = dict((name, f) for _, name, f in result.legend)["cat"]
    assert region.score == pytest.approx(share) and 0.4 < share < 0.6
    # Its box is around the class's own pixels, in the picture's pixels (mostly the bright half; an
    # untrained backbone's padding also makes the top row cat).
    assert (result.class_map[20:100, 90:] == CAT).all() and (result.class_map[20:100, :70] == 0).all()
    rows, cols = np.nonzero(result.class_map == CAT)
    np.testing.assert_array_equal(region.box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    assert region.box[2] == 160 and region.box[3] == 120
    # Grad-CAM puts the cat on the bright half, where the head was made to see it.
    assert region.heat[:, 80:].sum() > 0.9 * region.heat.sum()
    assert region.heat.shape == made.whole.shape == (120, 160) and region.heat.dtype == np.float32
    assert region.heat.min() == pytest.approx(0.0, abs=1e-6) and region.heat.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(made.whole, region.heat)
    np.testing.assert_array_equal(made.in_boxes, made.whole)
    assert "Grad-CAM" in made.why and "each class gets its own map" in made.why
    # No gradient is left anywhere, and the next plain run is the same as before.
    assert all(p.grad is None and not p.requires_grad for p in fcn.model.parameters())
    again = bv.detect_objects(fcn, picture)
    np.testing.assert_array_equal(again.class_map, result.class_map)


def test_a_segmenters_grad_cam_is_the_class_scores_gradient_at_the_layer(
    fcn: bv.DenseModel, segmented: bv.DenseResult
) -> None:
    """By hand, on a copy: Grad-CAM at layer4 with the score of the cat's own pixels (those the result gave
    the cat), as pytorch-grad-cam's SemanticSegmentationTarget takes it, on the picture at
    ``GRADCAM_SCALE`` of the model's input size."""
    import copy

    from backbone_viz.dense.looked import GRADCAM_SCALE

    picture = halves()
    with torch.inference_mode():  # a caller's inference mode does not stop the gradient
        made = bv.where_it_looked(fcn, picture, segmented)
    mine = copy.deepcopy(fcn.model)
    work, _ = _work_picture(fcn, picture)
    size = (round(work.width * GRADCAM_SCALE), round(work.height * GRADCAM_SCALE))
    work = work.resize(size, Image.Resampling.BILINEAR)
    from backbone_viz.dense.models import _normalise

    x = _normalise(fcn, TF.to_tensor(work))
    with torch.no_grad():
        feats = mine.backbone(x)["out"]
    feats.requires_grad_(True)
    out = F.interpolate(mine.classifier(feats), size=x.shape[-2:], mode="bilinear", align_corners=False)[0]
    given = Image.fromarray(segmented.class_map).resize((x.shape[-1], x.shape[-2]), Image.Resampling.NEAREST)
    mask = torch.from_numpy(np.asarray(given) == CAT).float()
    (out[CAT] * mask).sum().backward()
    cam = F.relu((feats.grad.mean((2, 3), keepdim=True) * feats).sum(1))[0].detach()
    # To the map's size as every map is brought there: up to the input's pixels, then down to the map's.
    cam = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
    cam = F.interpolate(cam, size=(120, 160), mode="bilinear", align_corners=False, antialias=True)
    cam = cam[0, 0].numpy()
    expected = (cam - cam.min()) / (cam.max() - cam.min())
    np.testing.assert_allclose(made.whole, expected, atol=1e-4)


def test_grad_cam_one_stage_earlier_runs_the_last_stage_with_gradients(
    fcn: bv.DenseModel, segmented: bv.DenseResult
) -> None:
    check = model_left_alone(fcn.model)
    made = bv.where_it_looked(fcn, halves(), segmented, source="layer3.5")
    check()
    assert made.source.title == "stage 4 · layer3.5 (stride 8)" and [r.label for r in made.regions] == ["cat"]
    heat = made.regions[0].heat
    assert heat.min() == pytest.approx(0.0, abs=1e-6) and heat.max() == pytest.approx(1.0)
    last = bv.where_it_looked(fcn, halves(), segmented, max_regions=0)
    assert last.regions == () and not last.whole.any()  # no classes asked for, no gradient run


def test_a_segmenter_that_sees_only_background_has_no_classes(
    fcn: bv.DenseModel, segmented: bv.DenseResult
) -> None:
    result = segmented
    background = dataclasses.replace(result, legend=((0, "__background__", 1.0),))
    made = bv.where_it_looked(fcn, halves(), background)
    assert made.regions == () and not made.whole.any() and made.whole.shape == (120, 160)
    with pytest.raises(CamError, match="no maps called 'neck'"):
        bv.where_it_looked(fcn, halves(), result, source="neck")
