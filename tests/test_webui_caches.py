"""The web app's shared caches (webui/caches.py), called directly, outside a Streamlit run.

What they hold is measured as the bytes of the distinct numpy buffers reachable from every
``st.cache_resource`` entry of the process, so that the test sees whatever the caches keep, however they
are organised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.caching.cache_resource_api import _resource_caches

import backbone_viz as bv
from tests.conftest import count_model_runs
from webui.compute import caches

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
#: Explaining a second class of the same picture may add at most this fraction to what the caches hold
#: (keeping whole analyses per class would add a second copy of the activations, ~55 MB for VGG-16).
SECOND_TARGET_GROWTH = 1.2


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    caches.clear_analyses()
    caches.clear_backbones()
    yield
    caches.clear_analyses()
    caches.clear_backbones()


def _cached_values() -> list[object]:
    """Every value in every ``st.cache_resource`` of this process.

    Streamlit has no public way to list a cache's entries; its resource-cache registry is read here. If a
    Streamlit release moves it, this raises (AttributeError), it does not pass quietly.
    """
    values = []
    for function_caches in _resource_caches._function_caches.values():
        for cache in function_caches.values():
            values += [result.value for result in cache._mem_cache.values()]
    return values


def _buffers(obj: object, found: dict[int, int], seen: set[int]) -> None:
    """Adds ``{data pointer: bytes}`` of each numpy buffer reachable from ``obj`` (a view counts as its base)."""
    if id(obj) in seen or isinstance(obj, (str, bytes, bv.Backbone)):
        return  # a backbone's weights are torch tensors, not what this measures
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        while isinstance(obj.base, np.ndarray):
            obj = obj.base
        found[obj.__array_interface__["data"][0]] = obj.nbytes
    elif isinstance(obj, Mapping):
        for value in obj.values():
            _buffers(value, found, seen)
    elif isinstance(obj, (tuple, list)):
        for value in obj:
            _buffers(value, found, seen)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _buffers(getattr(obj, f.name), found, seen)


def _held_bytes() -> int:
    found: dict[int, int] = {}
    seen: set[int] = set()
    for value in _cached_values():
        _buffers(value, found, seen)
    return sum(found.values())


def test_a_second_gradcam_target_does_not_copy_the_activations() -> None:
    data = (SAMPLES / "cat.jpg").read_bytes()
    sha = "cat-test-digest"
    first = caches.cached_analysis("vgg16", "untrained", sha, data)
    one_target = _held_bytes()
    other = next(p.index for p in first.predictions if p.index != first.target.index)
    second = caches.cached_analysis("vgg16", "untrained", sha, data, other)
    two_targets = _held_bytes()
    print(f"VGG-16, one picture: {one_target:,} bytes for one Grad-CAM target, {two_targets:,} for two")

    assert one_target > 50_000_000  # the activations of one VGG-16 picture are cached
    assert two_targets <= SECOND_TARGET_GROWTH * one_target
    assert second.target.index == other
    # The second target's maps are its own, as analyze makes them; the activations are the same arrays.
    backbone = caches.cached_backbone("vgg16", "untrained")
    direct = bv.analyze(backbone, bv.load_image(data), other)
    for name, cam in direct.gradcam.items():
        np.testing.assert_allclose(second.gradcam[name], cam, rtol=1e-4, atol=1e-6)
    for name, activation in first.activations.items():
        assert np.shares_memory(second.activations[name], activation)
    # The top class asked for by number is the top class's Grad-CAM made first: nothing new is held.
    again = caches.cached_analysis("vgg16", "untrained", sha, data, first.target.index)
    assert again.gradcam[first.layers[-1].name] is first.gradcam[first.layers[-1].name]
    assert _held_bytes() == two_targets


def test_the_bundled_backbone_is_never_evicted_by_others() -> None:
    bundled = next(spec.name for spec in bv.list_backbones() if spec.bundled)
    kept = caches.cached_backbone(bundled, "pretrained")
    # The smallest of the others, one more than their cache holds.
    others = sorted(
        (spec for spec in bv.list_backbones() if not spec.bundled), key=lambda s: s.params_millions
    )
    names = [spec.name for spec in others[: caches.OTHER_BACKBONES + 1]]
    first = caches.cached_backbone(names[0], "untrained")
    for name in names[1:]:
        caches.cached_backbone(name, "untrained")
    assert caches.cached_backbone(bundled, "pretrained") is kept
    assert caches.cached_backbone(names[0], "untrained") is not first  # the others' least recently used


def test_activations_alone_run_no_gradient_and_grad_cam_comes_once_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = count_model_runs(monkeypatch)
    data = (SAMPLES / "rocket.jpg").read_bytes()
    sha = "rocket-test-digest"
    activations = caches.cached_activations("efficientnet_lite0", "pretrained", sha, data)
    assert calls == ["layer_activations"]  # Home's view: one forward pass, no backward
    top = caches.cached_gradcam("efficientnet_lite0", "pretrained", sha, data)
    assert calls == ["layer_activations", "layer_gradcam"]
    assert top.target.index == activations.predictions[0].index
    # Asked for again, by None or by the class's number, and joined: all cache hits.
    assert caches.cached_gradcam("efficientnet_lite0", "pretrained", sha, data, top.target.index) is top
    joined = caches.cached_analysis("efficientnet_lite0", "pretrained", sha, data)
    assert calls == ["layer_activations", "layer_gradcam"]
    assert joined.gradcam is top.gradcam and joined.activations is activations.activations
