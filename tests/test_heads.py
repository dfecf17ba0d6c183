"""Heads: exact per-channel score splits, a new head fitted on frozen features, the FPN's inputs.

Semantic tests use the bundled EfficientNet-Lite0 (real ImageNet weights); architecture tests use
untrained ResNet-50, GoogLeNet and VGG-16; the maths (folding the scaler, honest leave-one-out) runs
on a tiny hand-made backbone or plain numpy data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import backbone_viz as bv
from backbone_viz import heads
from backbone_viz.backbones import Backbone, _prepare
from backbone_viz.graph import build_extractor
from backbone_viz.specs import BackboneSpec, Preprocessing, _layers
from tests.conftest import count_hooks, sample

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def _untrained(name: str) -> tuple[Backbone, bv.AnalysisResult]:
    torch.manual_seed(0)
    bb = bv.load_backbone(name, weights="untrained", device="cpu")
    return bb, bv.analyze(bb, sample("cat"))


@pytest.fixture(scope="module")
def resnet50() -> tuple[Backbone, bv.AnalysisResult]:
    return _untrained("resnet50")


@pytest.fixture(scope="module")
def cat(lite0: Backbone) -> bv.AnalysisResult:
    """The cat photo under the bundled backbone's own ImageNet head."""
    return bv.analyze(lite0, sample("cat"))


@pytest.fixture(scope="module")
def new_head(lite0: Backbone) -> bv.LinearHead:
    """The page's example set (cat and coffee: crops of one photo each; person: two real photos)."""
    return bv.fit_head(lite0, bv.example_set())


# ------------------------------------------------------------------------------------------ contributions


def _assert_splits_exactly(c: bv.Contributions, res: bv.AnalysisResult) -> None:
    assert c.values.shape == c.pooled.shape == c.weights.shape == res.pooled.shape
    assert c.logit == pytest.approx(float(res.logits[res.target.index]))
    assert c.values.sum() + c.bias == pytest.approx(c.logit, abs=1e-4)
    np.testing.assert_allclose(c.values, c.weights * c.pooled)


def test_cat_score_splits_into_channels(lite0: Backbone, cat: bv.AnalysisResult) -> None:
    res = cat
    assert res.target.label in CATS
    c = bv.head_contributions(lite0, res)
    _assert_splits_exactly(c, res)
    assert c.target == res.target and c.values.shape == (1280,)
    up, down = c.top_up(5), c.top_down(5)
    assert len(up) == len(down) == 5 and not set(up) & set(down)
    assert (np.diff(c.values[up]) <= 0).all() and (c.values[up] > 0).all()
    assert (np.diff(c.values[down]) >= 0).all() and (c.values[down] < 0).all()
    assert c.values[up[0]] == c.values.max() and c.values[down[0]] == c.values.min()
    assert not c.values.flags.writeable
    # The head reads the mean of each channel of the last stage: that is why each channel's map can be
    # shown next to its share of the score.
    np.testing.assert_allclose(res.pooled, res.activations["bn2"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)


def test_resnet50_and_googlenet_split_too(resnet50: tuple[Backbone, bv.AnalysisResult]) -> None:
    bb, res = resnet50
    _assert_splits_exactly(bv.head_contributions(bb, res), res)
    np.testing.assert_allclose(res.pooled, res.activations["layer4.2"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)
    bb, res = _untrained("googlenet")
    _assert_splits_exactly(bv.head_contributions(bb, res), res)
    # Untrained GoogLeNet's activations shrink to ~1e-13 by its last stage (its init has std 0.01 and
    # eval-mode BatchNorm does not rescale), so check the wiring with a relative tolerance only.
    np.testing.assert_allclose(res.pooled, res.activations["inception5b"].mean(axis=(1, 2)), rtol=1e-4, atol=0)


def test_vgg_does_not_split() -> None:
    bb, res = _untrained("vgg16")
    with pytest.raises(bv.HeadError, match="not a sum") as info:
        bv.head_contributions(bb, res)
    assert "Grad-CAM" in info.value.hint
    # Its listed layers end at stride 16, so a detector neck gets C3 and C4 only.
    levels = bv.feature_pyramid(res)
    assert [(lv.name, lv.layer.label, lv.shape) for lv in levels] == [
        ("C3", "conv4_3", (512, 28, 28)),
        ("C4", "conv5_3", (512, 14, 14)),
    ]


class _TinyNet(nn.Module):
    """conv 1x1 (3 -> 2: red, blue) -> ReLU -> global average pool -> linear (2 -> 2, with bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).view(2, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[2.0, -1.0], [-1.0, 3.0]]))
            self.fc.bias.copy_(torch.tensor([0.5, -0.25]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def _tiny_backbone(model: nn.Module, size: int, categories: tuple[str, ...]) -> Backbone:
    _prepare(model)
    spec = BackboneSpec(
        name="tiny", title="Tiny", summary="", params_millions=0.0,
        layers=_layers([("relu", "relu", 2, 1, 1)]), head="fc", pooled="flatten", head_splits=True,
        # Identity preprocessing: resize and crop to `size`, mean 0, std 1.
        preprocessing=Preprocessing(size, size, "bilinear", (0.0,) * 3, (1.0,) * 3),
        weights_file=None, build=type(model),
    )
    extractor = build_extractor(model, ["relu"], head="fc", pooled="flatten")
    return Backbone(spec, model, "untrained", categories, torch.device("cpu"), extractor)


def test_contributions_match_hand_computation() -> None:
    bb = _tiny_backbone(_TinyNet(), 2, ("a", "b"))
    pixels = np.array([[[255, 0, 51], [0, 0, 255]], [[102, 0, 0], [204, 0, 102]]], dtype=np.uint8)
    res = bv.analyze(bb, Image.fromarray(pixels), target="b")
    red, blue = pixels[..., 0].mean() / 255, pixels[..., 2].mean() / 255
    c = bv.head_contributions(bb, res)
    np.testing.assert_allclose(c.values, [-1.0 * red, 3.0 * blue], atol=1e-6)
    assert c.bias == -0.25 and c.logit == pytest.approx(-red + 3 * blue - 0.25, abs=1e-6)
    assert list(c.top_up(5)) == [1] and list(c.top_down(5)) == [0]


# ------------------------------------------------------------------------------------------ fit_head


def test_fitted_head_recognises_new_classes(lite0: Backbone, new_head: bv.LinearHead) -> None:
    """What this shows, honestly: "cat" and "coffee" are crops of one photo each, so their leave-one-out
    only proves that another crop of a seen photo is recognised; "person" holds two different people,
    so its leave-one-out proves a head fitted on Grace Hopper alone calls the astronaut a person (and
    the reverse). The held-out variants below are new crops of seen photos."""
    head = new_head
    assert head.categories == ("cat", "coffee", "person") and head.name == "new head: cat / coffee / person"
    assert head.weight.shape == (3, 1280) and head.bias.shape == (3,) and head.weight.dtype == torch.float32
    assert not head.weight.requires_grad and head.n_images == (3, 3, 2)
    assert head.backbone == "efficientnet_lite0" and head.weights == "pretrained"
    assert head.loo_accuracy == 1.0, head.loo_predictions
    assert [(p.label, p.index) for p in head.loo_predictions][-2:] == [("person", 0), ("person", 1)]
    assert all(p.correct for p in head.loo_predictions) and 0 < head.fit_seconds < 60

    coffee = sample("coffee").transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((40, 30, 560, 380))
    assert bv.analyze(lite0, coffee, head=head).target.label == "coffee"
    cat = sample("cat").transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((60, 20, 420, 290))
    mine = bv.analyze(lite0, cat, head=head)
    assert mine.head == head.name and mine.categories == head.categories
    assert mine.target.label == "cat" and mine.probabilities.shape == (3,)
    imagenet = bv.analyze(lite0, cat)
    assert imagenet.target.label in CATS
    for layer in ("blocks.4.2", "bn2"):
        a, b = mine.gradcam[layer], imagenet.gradcam[layer]
        assert a.max() > 0 and b.max() > 0
        assert not np.allclose(a / a.max(), b / b.max(), atol=1e-2), layer
    # The new head is linear in the same pooled vector, so its score splits exactly as well.
    c = bv.head_contributions(lite0, mine, head=head)
    _assert_splits_exactly(c, mine)
    with pytest.raises(bv.HeadError, match="head"):
        bv.head_contributions(lite0, mine)  # the head it used is needed
    with pytest.raises(bv.HeadError, match="own head"):
        bv.head_contributions(lite0, imagenet, head=head)


def test_fit_head_leaves_the_shared_model_alone(lite0: Backbone, new_head: bv.LinearHead) -> None:
    assert count_hooks(lite0.model) == 0 and not lite0.model.training
    assert all(not p.requires_grad and p.grad is None for p in lite0.model.parameters())


def test_head_from_another_backbone_is_refused(new_head: bv.LinearHead, lite0: bv.Backbone) -> None:
    """Same feature width, other weights: it would run and mean nothing, so it must be refused."""
    torch.manual_seed(0)
    untrained = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    with pytest.raises(bv.HeadError, match="trained on efficientnet_lite0 \\(pretrained weights\\)"):
        bv.analyze(untrained, sample("cat"), head=new_head)
    res = bv.analyze(lite0, sample("cat"), head=new_head)
    with pytest.raises(bv.HeadError, match="pretrained weights"):
        bv.head_contributions(untrained, res, head=new_head)
    with pytest.raises(bv.HeadError, match="1280 features"):
        new_head.logits(torch.zeros(1, 2048))  # what resnet50's pooled vector would be


def test_leave_one_out_leaves_out_the_augmented_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny backbone whose pooled vector is the mean red and blue of uniform grey photos. Class "a" is
    black and white, class "b" two mid greys: no linear head separates them, and an honest leave-one-out
    says so (a held-out white photo's mirrored and cropped copies would have given it away)."""
    bb = _tiny_backbone(_TinyNet(), 8, ("x", "y"))
    grey = [Image.new("RGB", (12, 8), (v, v, v)) for v in (0, 255, 128, 140)]
    sizes = []
    fit = heads._fit_affine
    monkeypatch.setattr(heads, "_fit_affine", lambda x, *a, **k: sizes.append(len(x)) or fit(x, *a, **k))
    head = bv.fit_head(bb, {"a": grey[:2], "b": grey[2:]})
    views = 2 + heads.RANDOM_CROPS
    assert sizes == [3 * views] * 4 + [4 * views]  # each held-out photo takes all its copies with it
    assert [p.predicted for p in head.loo_predictions[:2]] == ["b", "b"] and head.loo_accuracy <= 0.5
    pooled = torch.tensor([[v / 255, v / 255] for v in (0, 255, 128, 140)])
    assert head.logits(pooled).argmax(dim=1).tolist() != [0, 0, 1, 1]  # nor does the final head


@pytest.mark.parametrize("classes", [2, 3])
def test_folded_scaler_gives_sklearns_probabilities(classes: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6)) * [1.0, 10.0, 0.1, 5.0, 1.0, 0.0] + [0.0, 3.0, -2.0, 0.0, 8.0, 4.0]
    y = np.arange(30) % classes
    weight, bias = heads._fit_affine(x, y, classes, seed=0)
    assert weight.shape == (classes, 6) and bias.shape == (classes,)
    z = x @ weight.T + bias
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    np.testing.assert_allclose(probs, reference.predict_proba(x), atol=1e-6)


def test_augmentations_are_seeded(lite0: Backbone) -> None:
    photo = sample("rocket")
    first = heads._views(lite0, photo, 224, np.random.default_rng([0, 0, 0]))
    again = heads._views(lite0, photo, 224, np.random.default_rng([0, 0, 0]))
    other = heads._views(lite0, photo, 224, np.random.default_rng([1, 0, 0]))
    assert len(first) == 2 + heads.RANDOM_CROPS and all(v.size == (224, 224) for v in first)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(np.asarray(first[-1]), np.asarray(other[-1]))


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ({"cat": 2}, "at least 2 classes"),
        ({"cat": 2, "dog": 0}, "'dog' has no photos"),
        ({"cat": 2, "dog": 1}, "'dog' has 1 photo;"),
        ({"cat": 2, "  ": 2}, "no name"),
        ({"cat": 2, "Cat ": 2}, "Two classes are called 'Cat'"),
        ({f"c{i}": 2 for i in range(11)}, "at most 10"),
        ({"cat": 2, "dog": 21}, "at most 20"),
    ],
)
def test_unusable_examples_are_explained(lite0: Backbone, examples: dict[str, int], message: str) -> None:
    photo = Image.new("RGB", (32, 32))
    with pytest.raises(bv.HeadError, match=message) as info:
        bv.fit_head(lite0, {label: [photo] * n for label, n in examples.items()})
    assert info.value.hint


def test_photos_must_be_images(lite0: Backbone) -> None:
    with pytest.raises(TypeError, match="PIL"):
        bv.fit_head(lite0, {"cat": ["cat.jpg", "cat2.jpg"], "dog": ["a", "b"]})  # type: ignore[list-item]


def test_example_set_contents() -> None:
    examples = bv.example_set()
    assert {k: len(v) for k, v in examples.items()} == {"cat": 3, "coffee": 3, "person": 2}
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for ims in examples.values() for im in ims)
    cats = [np.asarray(im.resize((64, 64))) for im in examples["cat"]]
    assert not np.array_equal(cats[0], cats[1]) and not np.array_equal(cats[1], cats[2])


# ------------------------------------------------------------------------------------------ feature_pyramid


def test_feature_pyramid_takes_the_last_layer_of_each_stride(
    cat: bv.AnalysisResult, resnet50: tuple[Backbone, bv.AnalysisResult]
) -> None:
    _, res = resnet50
    levels = bv.feature_pyramid(res)
    assert [(lv.name, lv.stride, lv.layer.name, lv.shape) for lv in levels] == [
        ("C3", 8, "layer2.3", (512, 28, 28)),
        ("C4", 16, "layer3.5", (1024, 14, 14)),
        ("C5", 32, "layer4.2", (2048, 7, 7)),
    ]
    assert levels[0].activation is res.activations["layer2.3"]
    lite = bv.feature_pyramid(cat)
    assert [(lv.name, lv.layer.name, lv.shape) for lv in lite] == [
        ("C3", "blocks.2.1", (40, 28, 28)),
        ("C4", "blocks.4.2", (112, 14, 14)),
        ("C5", "bn2", (1280, 7, 7)),
    ]
    assert [lv.name for lv in bv.feature_pyramid(res, strides=(32, 4))] == ["C5", "C2"]
    with pytest.raises(ValueError, match="powers of two"):
        bv.feature_pyramid(res, strides=(12,))

