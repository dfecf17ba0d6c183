"""What the Real detectors page shows from trained weights, with checkpoints made here under the real files'
names (no network anywhere): Mask R-CNN's masks drawn on the picture, FCN's legend, the CKA comparison with
the classifier the detector started from, and a file under the real name that does not load."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image, ImageDraw
from streamlit.runtime.caching.cache_utils import CachedFunc
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from backbone_viz.core.runs import model_runs
from tests.app.helpers import SAID, detectors_page, texts
from tests.conftest import count_model_runs
from webui.compute import caches, dense_cache
from webui.shell.state import WEIGHTS, sample_choice
from webui.views import dense_view

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/detectors.py"
TIMEOUT = 600
THRESHOLD = "Keep objects scoring at least"
MASK_RCNN = "maskrcnn_resnet50_fpn"
FCN = "fcn_resnet50"
FCOS = "fcos_resnet50_fpn"
#: The seed of every checkpoint's random part: not the app's untrained seed (0), so that a file made here
#: never matches the untrained model by chance.
SEED = 3


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def _fresh_dense_caches() -> Iterator[None]:
    """The dense model and all it made are kept for the whole process (``st.cache_resource``), keyed by name
    and weights choice, not by file: another test's checkpoint under the same file name must not answer
    for this one's, nor this one's for the next test's. Every cached function of the module is emptied."""

    def clear() -> None:
        for cached in vars(dense_cache).values():
            if isinstance(cached, CachedFunc):
                cached.clear()

    clear()
    yield
    clear()




@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The bytes of every file the app hands to Streamlit (``st.image``...), by file id: AppTest keeps only
    the address of a picture, not its pixels."""
    stored: dict[str, bytes] = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):  # noqa: ANN001, ANN202
        file_id = real(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, bytes):
            stored[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return stored


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every model run of the engine and every dense model load, by function name, from now on."""
    calls = count_model_runs(monkeypatch)
    for name in ("load_dense", "detect_objects", "dense_stage_maps", "compare_backbones"):
        if name in model_runs(bv):
            continue  # counted already
        real = getattr(bv, name)

        def counted(*args, _real=real, _name=name, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(bv, name, counted)
    return calls


def _built(name: str) -> dict[str, torch.Tensor]:
    """An untrained build's state dict (seed :data:`SEED`): a checkpoint of exactly the right layout."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return bv.get_dense_spec(name).build().state_dict()


def _save(state: dict[str, torch.Tensor], folder: Path, name: str) -> Path:
    """``state`` in the torch cache under the real trained file's name of ``name``; ``cached_path`` trusts
    the cache (files only get there verified), so no SHA-256 is checked on load."""
    path = folder / bv.get_dense_spec(name).weights_file.filename
    torch.save(state, path)
    return path


# ------------------------------------------------------------------------------------------ the page






def _sliders(at: AppTest) -> list:  # AppTest's Slider elements
    return [s for s in at.slider if s.label == THRESHOLD]


def _found(name: str) -> bv.DenseResult:
    """The result the page drew (the cat, the default picture), from the shared store: runs nothing."""
    result = dense_cache._results().get((name, "pretrained", sample_choice("cat").sha256))
    assert result is not None, "the page kept no result for the cat"
    return result


def _picture() -> Image.Image:
    cat = sample_choice("cat")
    return caches.cached_picture(cat.sha256, cat.data)


def _shown(at: AppTest, media: dict[str, bytes]) -> np.ndarray:
    """The first picture of the page's main area (the drawn findings), as the learner gets it: (H, W, 3)."""
    url = at.main.get("image")[0].value[0]
    data = media[Path(url).stem]
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _colour(result: bv.DenseResult, name: str) -> np.ndarray:
    """The colour the page tints ``name`` with: the palette's entry of its class index."""
    index = result.categories.index(name)
    return np.array(dense_view.PALETTE[index % len(dense_view.PALETTE)], np.int16)


# ------------------------------------------------------------------------------------------ Mask R-CNN


@pytest.fixture
def local_mask_rcnn(offline: Path) -> Path:
    """Mask R-CNN whose box head favours "cat" (background and every other class far below) and whose mask
    head says "inside" everywhere, so that every object's mask fills its box. The cat's bias leaves some
    boxes of the default picture above 50 % and none near 95 % (its scores then spread from about 0.3 to
    0.75 with these random features)."""
    state = _built(MASK_RCNN)
    categories = bv.get_dense_spec(MASK_RCNN).categories
    bias = state["roi_heads.box_predictor.cls_score.bias"]
    assert len(bias) == len(categories)
    bias.fill_(-10.0)
    bias[0] = 0.0  # background
    bias[categories.index("cat")] = -0.78
    state["roi_heads.mask_predictor.mask_fcn_logits.bias"].fill_(10.0)
    return _save(state, offline, MASK_RCNN)


def _boxes_zone(shape: tuple[int, int], boxes: np.ndarray, grow: float, margin: float) -> np.ndarray:
    """(H, W) int: how many of ``boxes`` (x0, y0, x1, y1) cover each pixel, each grown by ``grow`` of its
    size and ``margin`` px on every side (negative: shrunk)."""
    count = np.zeros(shape, np.int32)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    for x0, y0, x1, y1 in boxes:
        dx, dy = grow * (x1 - x0) + margin, grow * (y1 - y0) + margin
        count += (xs >= x0 - dx) & (xs <= x1 + dx) & (ys >= y0 - dy) & (ys <= y1 + dy)
    return count


def _marks(shape: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """(H, W) bool: where a box's outline (3 px) or its label ("cat 73%" on a filled strip at its top
    left, above the box or inside it) may be drawn."""
    marks = np.zeros(shape, bool)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    for x0, y0, x1, y1 in boxes:
        inside = (xs >= x0 - 5) & (xs <= x1 + 5) & (ys >= y0 - 5) & (ys <= y1 + 5)
        deep = (xs >= x0 + 5) & (xs <= x1 - 5) & (ys >= y0 + 5) & (ys <= y1 - 5)
        label = (xs >= x0 - 5) & (xs <= x0 + 130) & (ys >= y0 - 35) & (ys <= y0 + 35)
        marks |= (inside & ~deep) | label
    return marks


def test_mask_rcnn_lists_its_cats_and_draws_their_masks_and_the_slider_runs_nothing(
    local_mask_rcnn: Path, monkeypatch: pytest.MonkeyPatch, media: dict[str, bytes]
) -> None:
    calls = _counted(monkeypatch)
    at = _page("resnet50", "pretrained", MASK_RCNN)
    assert not at.error, [e.value for e in at.error]
    assert all(calls.count(name) == 1 for name in ("load_dense", "detect_objects", "dense_stage_maps")), calls
    result = _found(MASK_RCNN)
    assert result.kind == "instance segmenter" and result.masks is not None
    assert set(result.labels) == {"cat"}
    kept = result.scores >= 0.5
    n = int(kept.sum())
    assert 1 <= n < len(result.scores) and result.scores.max() < 0.95

    # The list: every kept object is a cat, counted and scored as the result says.
    assert _sliders(at)[0].value == 0.5
    listed = [m.value for m in at.markdown if "scoring 50% or more" in m.value]
    assert len(listed) == 1
    many = f" × {n}, best {result.scores[0]:.0%}" if n > 1 else f" {result.scores[0]:.0%}"
    assert listed[0] == (
        f"**{n} {'object' if n == 1 else 'objects'}** scoring 50% or more:\n- **cat**{many}"
    ), listed[0]

    # The mask head's bias makes each mask fill its box (and spill at most the half cell of its 28 x 28
    # grid that torchvision pastes around it).
    h, w = result.masks.shape[1:]
    assert (w, h) == result.image_size  # the cat is smaller than the detector's input: masks at full size
    for box, mask in zip(result.boxes[kept], result.masks[kept], strict=True):
        interior = _boxes_zone((h, w), box[None], 0.0, -2.0) > 0
        spill = _boxes_zone((h, w), box[None], 0.06, 2.0) > 0
        assert mask[interior].mean() > 0.99 and not mask[~spill].any()

    # The drawn picture: inside one kept box, the picture half and half with the cat's colour; outside
    # every kept box (and its outline and label), the picture untouched.
    picture = np.asarray(_picture().convert("RGB"), dtype=np.int16)
    assert picture.shape[:2] == (h, w)  # narrower than the drawn width: drawn at its own size
    drawn = np.asarray(dense_view.drawn(_picture(), result, 0.5), dtype=np.int16)
    boxes = result.boxes[kept]
    marks = _marks((h, w), boxes)
    reach = _boxes_zone((h, w), boxes, 0.06, 2.0)  # where each kept mask may be
    once = (_boxes_zone((h, w), boxes, 0.0, -5.0) == 1) & (reach == 1) & ~marks
    outside = (reach == 0) & ~marks
    assert once.sum() > 2000 and outside.sum() > 2000, (once.sum(), outside.sum())
    cat = _colour(result, "cat")
    np.testing.assert_array_equal(drawn[once], (picture[once] + cat) // 2)
    np.testing.assert_array_equal(drawn[outside], picture[outside])

    # The page shows that very picture (as a JPEG: a few levels off at most).
    shown = _shown(at, media)
    assert shown.shape == drawn.shape
    assert np.abs(shown - drawn).mean() < 3
    assert np.abs(shown[once] - picture[once]).mean() > 20  # the masks are there, not the bare picture

    # The slider filters what is kept: nothing runs again, and no cat scores 95 %.
    calls.clear()
    _sliders(at)[0].set_value(0.95).run()
    assert not at.exception and calls == []
    assert "**Nothing scores 95% or more.**" in _texts(at)
    assert not [m.value for m in at.markdown if "scoring 95% or more" in m.value]
    at.run()
    assert not at.exception and calls == []


def _looked(name: str, source: str) -> bv.LookedMaps:
    """The map the page made of where ``name`` looked on the cat, from the shared store: runs nothing."""
    looked = dense_cache._looked().get((name, "pretrained", sample_choice("cat").sha256, source))
    assert looked is not None, f"the page kept no map from {source!r}"
    return looked


def test_where_mask_rcnn_looked_is_shown_in_its_boxes_and_another_source_runs_once(
    local_mask_rcnn: Path, monkeypatch: pytest.MonkeyPatch, media: dict[str, bytes]
) -> None:
    calls = _counted(monkeypatch)
    at = _page("resnet50", "pretrained", MASK_RCNN)
    assert not at.error, [e.value for e in at.error]
    assert calls.count("where_it_looked") == 1, calls
    text = _texts(at)
    assert "Where did Mask R-CNN look?" in text
    sources = bv.look_sources(MASK_RCNN)
    picker = next(s for s in at.selectbox if s.label == "Make the map from")
    assert list(picker.options) == [s.title for s in sources] and picker.value == sources[0].key
    looked = _looked(MASK_RCNN, "neck")
    result = _found(MASK_RCNN)
    n = int((result.scores >= 0.5).sum())
    # The map is made for the best boxes, and the caption counts the boxes shown from the result.
    assert [r.score for r in looked.regions] == pytest.approx(list(result.scores[: len(looked.regions)]))
    shown = min(n, len(looked.regions))
    which = (
        f"the best {shown} of the {n} objects scoring 50% or more"
        if n > len(looked.regions)
        else "each object scoring 50% or more"
    )
    assert f"Inside each box ({which}), the map rescaled to that box" in text
    assert looked.method == "EigenCAM" and "EigenCAM needs no gradient and no class" in text
    assert f"Made from {sources[0].title} in " in text
    # After the findings, two pictures: the map in the boxes and over the whole picture, at the map's size.
    pictures = [np.asarray(Image.open(io.BytesIO(media[Path(i.value[0]).stem]))) for i in at.main.get("image")]
    assert [p.shape[:2] for p in pictures[1:3]] == [looked.whole.shape] * 2
    assert np.abs(pictures[1].astype(int) - pictures[2]).mean() > 5  # the boxes' map is not the whole one

    # Another source: made once, then kept for every rerun and for the threshold slider.
    calls.clear()
    stride4 = next(s for s in sources if s.stride == 4 and s.key.startswith("neck:"))
    picker.set_value(stride4.key).run()
    assert not at.exception and calls == ["where_it_looked"], calls
    assert f"Made from {stride4.title} in " in _texts(at)
    calls.clear()
    _sliders(at)[0].set_value(0.95).run()
    assert not at.exception and calls == []
    assert "No object scores 95% or more: move the slider above down" in _texts(at)


def test_a_label_of_a_box_at_the_right_edge_stays_inside_the_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    picture = _picture()
    w, h = picture.size
    categories = bv.get_dense_spec(MASK_RCNN).categories
    cat = categories.index("cat")
    # As Mask R-CNN found on the cat (x0 = 431 of 451 px), without running it.
    result = bv.DenseResult(
        model=MASK_RCNN, kind="detector", trained=True,
        boxes=np.array([[w - 20.0, 10.0, w - 1.0, h - 10.0]], np.float32), scores=np.array([0.54], np.float32),
        labels=("cat",), label_ids=np.array([cat]), masks=None, class_map=None, legend=(),
        categories=categories, threshold=0.05, image_size=(w, h), input_size=(512, 769), ms=0.0,
    )  # fmt: skip
    drawn_texts: list[tuple[tuple[int, int, int, int], str]] = []
    real = ImageDraw.ImageDraw.text

    def text(self, xy, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        drawn_texts.append((self.textbbox(xy, text, font=kwargs.get("font")), text))
        return real(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", text)
    out = dense_view.drawn(picture, result, 0.5)
    assert [t for _, t in drawn_texts] == ["cat 54%"] and out.size == (w, h)
    (left, top, right, bottom), _ = drawn_texts[0]
    assert 0 <= left < right <= w and 0 <= top < bottom <= h


# ------------------------------------------------------------------------------------------ FCN


def _fcn_file(folder: Path, centre: float) -> Path:
    """FCN whose head paints "dog" near the border and "cat" everywhere else, whatever the features: its
    first conv sums each position's 3 x 3 window of every channel (channel 0) and takes ``centre`` times the
    centre alone (channel 1); the last conv scores cat by channel 0 minus channel 1. Inside the map a window
    holds 9 positions (cat when 9 > ``centre``); the zero padding leaves 6 on an edge and 4 in a corner. So
    7.5 paints a frame one map cell wide (about 5 % of the picture), 5 only the four corners' cells."""
    state = _built(FCN)
    categories = bv.get_dense_spec(FCN).categories
    first = state["classifier.0.weight"]  # (512, 2048, 3, 3); the batch norm after it is the identity
    first.zero_()
    first[0] = 1.0
    first[1, :, 1, 1] = centre
    last = state["classifier.4.weight"]  # (21, 512, 1, 1)
    last.zero_()
    last[categories.index("cat"), 0] = 1.0
    last[categories.index("cat"), 1] = -1.0
    bias = state["classifier.4.bias"]
    bias.fill_(-10.0)
    bias[categories.index("cat")] = bias[categories.index("dog")] = 0.0
    return _save(state, folder, FCN)


@pytest.fixture
def local_fcn(offline: Path) -> Path:
    """FCN painting a dog frame around a cat (:func:`_fcn_file`)."""
    return _fcn_file(offline, 7.5)


def test_fcn_legend_gives_each_class_its_share_of_the_picture(
    local_fcn: Path, monkeypatch: pytest.MonkeyPatch, media: dict[str, bytes]
) -> None:
    calls = _counted(monkeypatch)
    at = _page("resnet50", "pretrained", FCN)
    assert not at.error, [e.value for e in at.error]
    assert all(calls.count(name) == 1 for name in ("load_dense", "detect_objects", "dense_stage_maps")), calls
    result = _found(FCN)
    assert result.class_map is not None and result.class_map.shape == result.image_size[::-1]

    # The shares come from the class map: cat inside, dog on the frame.
    counts = np.bincount(result.class_map.ravel(), minlength=len(result.categories)) / result.class_map.size
    cat, dog = result.categories.index("cat"), result.categories.index("dog")
    assert set(np.flatnonzero(counts)) == {cat, dog}
    assert 0.85 < counts[cat] < 1.0
    assert (result.class_map[0] == dog).all() and (result.class_map[:, 0] == dog).all()
    assert (result.class_map[100:200, 100:300] == cat).all()
    assert [(i, name) for i, name, _ in result.legend] == [(cat, "cat"), (dog, "dog")]
    for _, _, share in result.legend:
        assert share in (pytest.approx(counts[cat]), pytest.approx(counts[dog]))

    # The legend as the learner reads it: largest first, the shares as the class map counts them.
    text = _texts(at)
    assert "**Each pixel's class** (VOC's 20 and background)" in text
    legend = [m.value for m in at.markdown if "of the picture" in m.value]
    assert len(legend) == 1
    shares = re.findall(r"\*\*(\w+)\*\*: (\d+)% of the picture", legend[0])
    assert shares == [("cat", f"{counts[cat] * 100:.0f}"), ("dog", f"{counts[dog] * 100:.0f}")], legend[0]
    assert sum(int(s) for _, s in shares) == 100
    assert f"color:rgb{tuple(int(v) for v in _colour(result, 'cat'))}'>■</span> **cat**" in legend[0]
    # Every pixel has a class: no objects, no threshold.
    assert not _sliders(at) and "scoring" not in text
    h, w = result.input_size
    assert h == 520 and w == round(520 * result.image_size[0] / result.image_size[1])  # shorter side 520
    assert f"FCN read the picture at {w} × {h} px; " in text

    # The drawn picture: each class's pixels tinted with its colour (the picture shown at its own size).
    picture = np.asarray(_picture().convert("RGB"), dtype=np.float32)
    drawn = np.asarray(dense_view.drawn(_picture(), result, 1.0), dtype=np.float32)
    for index in (cat, dog):
        where = result.class_map == index
        tint = np.array(dense_view.PALETTE[index % len(dense_view.PALETTE)], np.float32)
        np.testing.assert_allclose(drawn[where], 0.45 * picture[where] + 0.55 * tint, atol=1.0)
    shown = _shown(at, media)
    assert shown.shape == drawn.shape and np.abs(shown - drawn).mean() < 3


def test_where_fcn_looked_is_a_grad_cam_for_each_class(local_fcn: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counted(monkeypatch)
    at = _page("resnet50", "pretrained", FCN)
    assert not at.error, [e.value for e in at.error]
    assert calls.count("where_it_looked") == 1, calls
    looked = _looked(FCN, bv.look_sources(FCN)[0].key)
    result = _found(FCN)
    text = _texts(at)
    assert "Where did FCN look?" in text and looked.method == "Grad-CAM"
    assert "Grad-CAM weighs each channel of the features by how much it raises the class" in text
    # One map per class other than the background, largest first, with the legend's shares.
    shares = {name: share for _, name, share in result.legend}
    assert [r.label for r in looked.regions] == [n for _, n, _ in result.legend if n != "__background__"][:4]
    for region in looked.regions:
        assert region.score == pytest.approx(shares[region.label])
        assert f"**{region.label}**: {dense_view.share_text(region.score)} of the picture" in text
    calls.clear()
    at.run()
    assert not at.exception and calls == []


def test_a_class_on_a_sliver_of_the_picture_is_not_called_0_or_100_percent(offline: Path) -> None:
    _fcn_file(offline, 5.0)  # dog only in the four corners
    at = _page("resnet50", "pretrained", FCN)
    result = _found(FCN)
    shares = {name: share for _, name, share in result.legend}
    assert set(shares) == {"cat", "dog"} and 0 < shares["dog"] < 0.005  # the case this test is about
    legend = next(m.value for m in at.markdown if "of the picture" in m.value)
    assert "**dog**: 0% of the picture" not in legend
    assert "**cat**: 100% of the picture" not in legend


# ------------------------------------------------------------------------------------------ CKA


@pytest.fixture
def fcos_from_v1(offline: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """The V1 ImageNet classifier file FCOS started from (an untrained torchvision ResNet-50 of its own
    seed, saved under that file's name) and an FCOS file whose stem and layer1 hold exactly its weights,
    as torchvision's training kept them, and other values from layer2 on. Returns the FCOS file and the
    V1 state."""
    spec = bv.get_dense_spec(FCOS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED + 4)
        v1 = torchvision.models.resnet50().state_dict()
    torch.save(v1, offline / spec.start_file.filename)
    state = _built(FCOS)
    copied = 0
    for key, value in v1.items():
        if key.startswith(("conv1.", "bn1.", "layer1.")):
            state[f"backbone.body.{key}"] = value.clone()
            copied += 1
    assert copied > 10
    bias = state["head.classification_head.cls_logits.bias"]
    bias.fill_(-10.0)
    bias[spec.categories.index("cat")] = 6.0
    return _save(state, offline, FCOS), v1


def _table(at: AppTest) -> list[list[str]]:
    """The rows of the comparison's table, each as its cells."""
    tables = [m.value for m in at.markdown if "| stage | stride |" in m.value]
    assert len(tables) == 1
    lines = [line for line in tables[0].splitlines() if re.match(r"\| \d", line)]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_measuring_the_change_shows_the_kept_stages_unchanged_and_a_rerun_runs_nothing(
    fcos_from_v1: tuple[Path, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = bv.get_dense_spec(FCOS)
    at = _page("resnet50", "pretrained", FCOS)
    assert not at.error, [e.value for e in at.error]
    text = _texts(at)
    # Before measuring: which classifier it compares with, named.
    assert (
        f"It compares with ResNet-50 holding {spec.start_enum} ({spec.start_file.filename}), the ImageNet "
        "weights FCOS's backbone started from." in text
    )
    calls = _counted(monkeypatch)
    at.button(key=f"dense.compare.{FCOS}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert calls == ["compare_backbones"]

    kept = {s.index for s in bv.frozen_stages(spec)}
    assert kept == {1, 2}  # torchvision's recipe: the stem and layer1
    stages = bv.get_spec("resnet50").stages
    rows = _table(at)
    assert [r[0] for r in rows] == [f"{s.index} · `{s.last.label}`" for s in stages]
    assert [int(r[1]) for r in rows] == [s.stride for s in stages]
    for stage, (_, _, cka, baseline, change, frozen) in zip(stages, rows, strict=True):
        if stage.index in kept:
            # The same weights on the same input: the same maps, CKA 1; the untrained baseline is not.
            assert (cka, change, frozen) == ("1.00", "0 (kept)", "yes"), stage
            assert float(baseline) < 0.995
        else:
            assert frozen == "no" and change != "0 (kept)" and float(change) > 0, stage
            assert float(cka) < 0.995
    # The largest change of a trained stage is the largest difference of its weights from the V1 file's.
    v1 = fcos_from_v1[1]
    fcos = torch.load(fcos_from_v1[0], weights_only=True)
    layer2 = max(
        float((fcos[f"backbone.body.{k}"].float() - v.float()).abs().max())
        for k, v in v1.items()
        if k.startswith("layer2.") and not k.endswith("num_batches_tracked")
    )
    assert rows[2][4] == f"{layer2:.3g}"

    text = _texts(at)
    n = dense_cache.sample_count()
    assert (
        f"ResNet-50 with {spec.start_enum}, the weights FCOS's backbone started from; pooled over {n} "
        "pictures." in text
    )
    # The table and the caption say what was measured (two stages may round to the same CKA).
    ready = dense_cache.comparison(FCOS, "pretrained")
    assert ready is not None and ready.classifier_weights == spec.start_file.filename and ready.started_from
    assert [r[2:4] for r in rows] == [[f"{s.cka:.2f}", f"{s.baseline_cka:.2f}"] for s in ready.stages]
    low = min(ready.stages, key=lambda s: s.cka)
    assert (
        f"The stage least like the classifier's is stage {low.stage} (CKA {low.cka:.2f}, against "
        f"{low.baseline_cka:.2f} for the untrained baseline)." in text
    )

    # A rerun (or another session) reads the stored comparison: nothing runs, the same table.
    calls.clear()
    at.run()
    assert not at.exception and calls == []
    assert _table(at) == rows
    assert "Measure how much each stage changed" not in [b.label for b in at.button]


# ------------------------------------------------------------------------------------------ bad files


def _vgg_state() -> dict[str, torch.Tensor]:
    """A few of VGG-16's classifier weights: a state dict of another model (the whole one is 528 MB)."""
    return {
        "features.0.weight": torch.zeros(64, 3, 3, 3),
        "features.0.bias": torch.zeros(64),
        "classifier.6.weight": torch.zeros(1000, 4096),
        "classifier.6.bias": torch.zeros(1000),
    }


@pytest.mark.parametrize("damage", ["another model", "truncated"])
def test_a_file_that_does_not_load_is_explained_and_the_app_goes_on(offline: Path, damage: str) -> None:
    spec = bv.get_dense_spec(FCOS)
    path = _save(_vgg_state(), offline, FCOS)
    if damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    at = _page("resnet50", "pretrained", FCOS)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    if damage == "another model":
        assert errors[0].startswith(f"**The file {spec.weights_file.filename} on this computer cannot be used:**")
        assert f"{spec.weights_file.filename} does not fit FCOS on ResNet-50: missing: " in errors[0]
        assert "not in this model: features.0.weight" in errors[0]
    else:
        assert f"{spec.weights_file.filename} is incomplete or damaged and could not be read" in errors[0]
    # Nothing claimed from a model that did not load.
    assert not _sliders(at) and "scoring" not in _texts(at)
    assert "Measure how much each stage changed" not in [b.label for b in at.button]

    assert f"dense.untrained_after_error.{FCOS}" in {b.key for b in at.button}
    # The rest of the app goes on (offline, with untrained weights): another page, then this one.
    at.session_state[WEIGHTS] = "untrained"
    at.switch_page("app_pages/home.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "What does a CNN backbone see?"
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "An untrained FCOS finds nothing" in _texts(at)


def test_a_file_under_the_real_name_that_does_not_fit_says_where_it_is_not_to_use_it(offline: Path) -> None:
    spec = bv.get_dense_spec(FCOS)
    _save(_vgg_state(), offline, FCOS)
    at = _page("resnet50", "pretrained", FCOS)
    error = at.error[0].value
    assert "does not fit" in error  # the case this test is about
    assert f"Use {spec.weights_file.filename}" not in error
    assert str(offline) in error  # the folder to delete it from


def _texts(at: AppTest) -> str:
    return texts(at, SAID)


def _page(backbone: str, weights_choice: str, model: str | None = None) -> AppTest:
    return detectors_page(backbone, weights_choice, model, timeout=TIMEOUT)
