"""torchvision's detectors and segmenters through the gateway: one loaded model per process, what it finds
on a picture, its backbone's maps, and its backbone compared with the classifier's.

* the model: a dense model adds up to ~0.9 GB, so the process keeps AT MOST ONE (:data:`MAX_DENSE_MODELS`);
  asking for another drops the first before the new one is built (a session still running the old one
  keeps its own reference until it is done). Weights are fetched beforehand by the page, with its progress
  bar (:func:`webui.shell.weights_ui.download_with_progress`), never inside a cached function.
* what it finds: keyed by (model, weights, sha256 of the picture), kept from :data:`SCORE_FLOOR` up, so the
  page's threshold slider only filters what is kept (moving it runs nothing).
* where it looked: one map per picture and choice of maps (:func:`looked_maps`), made for the best
  :data:`LOOKED_REGIONS` objects from :data:`SCORE_FLOOR` up, so the slider again only filters.
* its backbone's maps: the channel mean of each stage (h, w), not the maps themselves (tens of MB at a
  detector's input size).
* the comparison with the classifier (linear CKA over the sample pictures): tens of seconds, so it runs
  only when the learner asks, in the page's own run, and is kept in a store afterwards.

Every call that may run a model takes a turn of the fair queue (:func:`webui.compute.caches.in_turn`).
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz.core.lru import LRU
from backbone_viz.files import weights as weights_mod
from webui.compute.caches import cached_picture, in_turn, kept_in_turn
from webui.compute.turns import WaitCallback
from webui.shell.state import ImageChoice, samples

#: Dense models kept loaded in one process: each adds up to ~0.9 GB.
MAX_DENSE_MODELS = 1
#: Pictures' results kept (boxes, a class map or masks at the model's input size: a few MB at most).
MAX_RESULTS = 16
MAX_STAGE_MAPS = 16
MAX_COMPARISONS = 8
#: Maps of where a model looked kept (two maps at most 512 px a side, and a map per class of a segmenter).
MAX_LOOKED = 8
#: The best objects a map of where a detector looked is made for.
LOOKED_REGIONS = 8
#: The largest classes a segmenter's maps are made for: each costs a backward pass through its head
#: (about 3 s for DeepLabV3 on ResNet-101, one CPU thread).
LOOKED_CLASSES = 4
#: Objects are kept from this score up; the page's slider chooses among them.
SCORE_FLOOR = 0.05
#: The shorter side the backbones are compared at: they are fully convolutional, and 224 px keeps a
#: ResNet comparison over the sample pictures to tens of seconds on one CPU thread.
COMPARE_SIZE = 224


class _OneModel:
    """The one dense model this process holds, behind a lock (two sessions asking for two models take
    turns; the second drops the first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._model: bv.DenseModel | None = None

    def get(self, name: str, weights: str) -> bv.DenseModel:
        with self._lock:
            if self._key == (name, weights) and self._model is not None:
                return self._model
            self._key, self._model = None, None
            gc.collect()  # the old model's ~0.9 GB goes before the new one is built
            self._model = bv.load_dense(name, weights)
            self._key = (name, weights)
            return self._model

    def holds(self, name: str, weights: str) -> bool:
        return self._key == (name, weights)


@st.cache_resource(show_spinner=False)
def _one_model() -> _OneModel:
    return _OneModel()


def weights_here(spec: bv.DenseSpec) -> bool:
    """Whether the trained weights file is in the torch cache (no network is asked)."""
    return weights_mod.cached_path(spec.weights_file) is not None


def dense_model(name: str, weights: str, *, on_wait: WaitCallback | None = None) -> bv.DenseModel:
    """The shared dense model (built, and its weights read from the torch cache, on first use).

    Raises:
        WeightsError: pretrained weights that are not here and cannot be had.
    """
    holder = _one_model()
    if holder.holds(name, weights):
        return holder.get(name, weights)
    return in_turn(None, on_wait, lambda: holder.get(name, weights))


def _model_and_picture(
    name: str, weights: str, image: ImageChoice, on_wait: WaitCallback | None
) -> tuple[bv.DenseModel, Image.Image]:
    """The shared model and the decoded picture: what every result of this module is made from."""
    return dense_model(name, weights, on_wait=on_wait), cached_picture(image.sha256, image.data)


@st.cache_resource(show_spinner=False)
def _results() -> LRU[tuple[str, str, str], bv.DenseResult]:
    return LRU(MAX_RESULTS)


def found_objects(
    name: str, weights: str, image: ImageChoice, *, on_wait: WaitCallback | None = None
) -> bv.DenseResult:
    """What the model finds on the picture, every object from :data:`SCORE_FLOOR` up (shared by every
    session: a second look, or a moved slider, runs nothing)."""
    return kept_in_turn(
        _results(),
        (name, weights, image.sha256),
        on_wait,
        inputs=lambda: _model_and_picture(name, weights, image, on_wait),
        make=lambda given: bv.detect_objects(*given, threshold=SCORE_FLOOR),
    )


@st.cache_resource(show_spinner=False)
def _looked() -> LRU[tuple[str, str, str, str], bv.LookedMaps]:
    return LRU(MAX_LOOKED)


def looked_maps(
    name: str, weights: str, image: ImageChoice, source: str, *, on_wait: WaitCallback | None = None
) -> bv.LookedMaps:
    """Where the model looked on the picture, from the maps ``source`` names (a key of
    :func:`backbone_viz.look_sources`), for its best :data:`LOOKED_REGIONS` objects from
    :data:`SCORE_FLOOR` up, or a segmenter's :data:`LOOKED_CLASSES` largest classes (shared by every
    session)."""

    def inputs() -> tuple[bv.DenseModel, Image.Image, bv.DenseResult]:
        result = found_objects(name, weights, image, on_wait=on_wait)
        return (*_model_and_picture(name, weights, image, on_wait), result)

    def make(given: tuple[bv.DenseModel, Image.Image, bv.DenseResult]) -> bv.LookedMaps:
        regions = LOOKED_CLASSES if given[0].spec.kind == "semantic segmenter" else LOOKED_REGIONS
        return bv.where_it_looked(*given, source=source, threshold=SCORE_FLOOR, max_regions=regions)

    return kept_in_turn(_looked(), (name, weights, image.sha256, source), on_wait, inputs=inputs, make=make)


@dataclass(frozen=True)
class StageMap:
    """One stage of the dense model's backbone on a picture.

    Attributes:
        layer: the classifier layer that ends the stage (``"layer2.3"``).
        shape: ``(C, h, w)`` of the stage's map.
        mean: (h, w) float32, the mean of its C channels at each position.
    """

    layer: str
    shape: tuple[int, int, int]
    mean: np.ndarray


@dataclass(frozen=True)
class StageMaps:
    """The dense model's backbone on one picture: each stage's map, and the size of its input.

    Attributes:
        stages: one :class:`StageMap` per stage of the classifier's spec, shallow to deep.
        input_size: ``(h, w)`` of the tensor the backbone read.
        seconds: wall time of the pass.
    """

    stages: tuple[StageMap, ...]
    input_size: tuple[int, int]
    seconds: float


@st.cache_resource(show_spinner=False)
def _stage_maps() -> LRU[tuple[str, str, str], StageMaps]:
    return LRU(MAX_STAGE_MAPS)


def backbone_maps(
    name: str, weights: str, image: ImageChoice, *, on_wait: WaitCallback | None = None
) -> StageMaps:
    """The dense model's own backbone maps on the picture, each stage as its channel mean (shared)."""

    def make(given: tuple[bv.DenseModel, Image.Image]) -> StageMaps:
        dense, picture = given
        start = time.perf_counter()
        maps = bv.dense_stage_maps(dense, picture)
        seconds = time.perf_counter() - start
        first = next(iter(maps.values()))
        stride = bv.get_spec(dense.spec.backbone).stages[0].stride
        size = (first.shape[1] * stride, first.shape[2] * stride)
        stages = tuple(
            StageMap(layer, tuple(int(n) for n in m.shape), m.mean(axis=0).astype(np.float32))
            for layer, m in maps.items()
        )
        return StageMaps(stages, size, seconds)

    return kept_in_turn(
        _stage_maps(),
        (name, weights, image.sha256),
        on_wait,
        inputs=lambda: _model_and_picture(name, weights, image, on_wait),
        make=make,
    )


# ------------------------------------------------------------------------------------------ comparison

ClassifierChoice = Literal["start", "classifier", "missing"]


def comparison_classifier(spec: bv.DenseSpec) -> ClassifierChoice:
    """Which classifier weights a comparison would use, from what is in the torch cache (as
    :func:`backbone_viz.dense.inside.default_classifier` chooses): the weights the model started from,
    else the app's own pretrained classifier, else none here (``"missing"``: they would be fetched)."""
    if weights_mod.cached_path(spec.start_file) is not None:
        return "start"
    backbone = bv.get_spec(spec.backbone)
    if backbone.weights_file is not None and weights_mod.cached_path(backbone.weights_file) is not None:
        return "classifier"
    return "missing"


def sample_count() -> int:
    """How many sample pictures a comparison pools."""
    return len(samples())


@st.cache_resource(show_spinner=False)
def _comparisons() -> LRU[tuple[str, str, str], bv.BackboneComparison]:
    return LRU(MAX_COMPARISONS)


def comparison(name: str, weights: str) -> bv.BackboneComparison | None:
    """The comparison with the classifier when one was made (by any session) with the weights in the cache
    now, else None; computes nothing."""
    return _comparisons().get((name, weights, comparison_classifier(bv.get_dense_spec(name))))


def make_comparison(name: str, weights: str, *, on_wait: WaitCallback | None = None) -> bv.BackboneComparison:
    """Linear CKA between the dense model's backbone and the classifier's, stage by stage, pooled over the
    sample pictures at :data:`COMPARE_SIZE`, with the untrained classifier as the baseline; made now unless
    ready.

    Raises:
        WeightsError: no classifier weights here and none to fetch (the message names the file).
    """
    spec = bv.get_dense_spec(name)

    def inputs() -> tuple[bv.DenseModel, list[Image.Image]]:
        pictures = [bv.load_image(sample.path.read_bytes()) for sample in samples()]
        return dense_model(name, weights, on_wait=on_wait), pictures

    return kept_in_turn(
        _comparisons(),
        (name, weights, comparison_classifier(spec)),
        on_wait,
        inputs=inputs,
        make=lambda given: bv.compare_backbones(*given, size=COMPARE_SIZE),
    )
