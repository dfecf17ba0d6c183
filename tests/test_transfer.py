"""Transfer learning: a new linear head fitted on the frozen backbone's pooled vectors.

Semantic tests use the bundled EfficientNet-Lite0 (real ImageNet weights); the maths (folding the
scaler, honest leave-one-out) runs on a tiny hand-made backbone or plain numpy data.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import backbone_viz as bv
from backbone_viz.core.backbones import Backbone
from backbone_viz.heads import transfer
from tests.conftest import CATS, TinyNet, assert_splits_exactly, count_hooks, sample, tiny_backbone


@pytest.fixture(scope="module")
def new_head(lite0: Backbone) -> bv.LinearHead:
    """The page's example set (cat and coffee: crops of one photo each; person: two real photos)."""
    return bv.fit_head(lite0, bv.example_set())


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
    assert_splits_exactly(c, mine)
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


def test_head_fits_only_its_backbone_and_weights(new_head: bv.LinearHead, lite0: bv.Backbone) -> None:
    assert new_head.fits(lite0)
    # Stand-ins with only what fits() reads: loading real backbones would add nothing here.
    other_weights = SimpleNamespace(spec=lite0.spec, weights="untrained")
    other_backbone = SimpleNamespace(spec=SimpleNamespace(name="resnet50"), weights="pretrained")
    assert not new_head.fits(other_weights)  # type: ignore[arg-type]
    assert not new_head.fits(other_backbone)  # type: ignore[arg-type]


def test_pooled_features_are_the_analysis_pooled_vectors(lite0: Backbone) -> None:
    """The features a head is fitted on are exactly the vectors analyze() gives the head later."""
    photos = [sample(name) for name in ("cat", "rocket", "coffee")]
    features = transfer._pooled_features(lite0, [lite0.crop(p) for p in photos])
    assert features.shape == (3, 1280) and features.dtype == np.float64
    for row, photo in zip(features, photos, strict=True):
        np.testing.assert_allclose(row, bv.analyze(lite0, photo).pooled, rtol=0, atol=1e-5)


def test_leave_one_out_leaves_out_the_augmented_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny backbone whose pooled vector is the mean red and blue of uniform grey photos. Class "a" is
    black and white, class "b" two mid greys: no linear head separates them, and an honest leave-one-out
    says so (a held-out white photo's mirrored and cropped copies would have given it away)."""
    bb = tiny_backbone(TinyNet(), 8, ("x", "y"))
    grey = [Image.new("RGB", (12, 8), (v, v, v)) for v in (0, 255, 128, 140)]
    sizes = []
    fit = transfer._fit_affine
    monkeypatch.setattr(transfer, "_fit_affine", lambda x, *a, **k: sizes.append(len(x)) or fit(x, *a, **k))
    head = bv.fit_head(bb, {"a": grey[:2], "b": grey[2:]})
    views = 2 + transfer.RANDOM_CROPS
    assert sizes == [3 * views] * 4 + [4 * views]  # each held-out photo takes all its copies with it
    assert [p.predicted for p in head.loo_predictions[:2]] == ["b", "b"] and head.loo_accuracy <= 0.5
    pooled = torch.tensor([[v / 255, v / 255] for v in (0, 255, 128, 140)])
    assert head.logits(pooled).argmax(dim=1).tolist() != [0, 0, 1, 1]  # nor does the final head


@pytest.mark.parametrize("classes", [2, 3])
def test_folded_scaler_gives_sklearns_probabilities(classes: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6)) * [1.0, 10.0, 0.1, 5.0, 1.0, 0.0] + [0.0, 3.0, -2.0, 0.0, 8.0, 4.0]
    y = np.arange(30) % classes
    weight, bias = transfer._fit_affine(x, y, classes, seed=0)
    assert weight.shape == (classes, 6) and bias.shape == (classes,)
    z = x @ weight.T + bias
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    np.testing.assert_allclose(probs, reference.predict_proba(x), atol=1e-6)


def test_augmentations_are_seeded(lite0: Backbone) -> None:
    photo = sample("rocket")
    first = transfer._views(lite0, photo, 224, np.random.default_rng([0, 0, 0]))
    again = transfer._views(lite0, photo, 224, np.random.default_rng([0, 0, 0]))
    other = transfer._views(lite0, photo, 224, np.random.default_rng([1, 0, 0]))
    assert len(first) == 2 + transfer.RANDOM_CROPS and all(v.size == (224, 224) for v in first)
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
