"""The caches every session shares: loaded backbones and analyses (``st.cache_resource``).

``st.cache_resource`` keeps ONE object per key for every session and thread and never copies it. That is
safe here because what is cached is never written to: a backbone is only run (statelessly, see
:mod:`backbone_viz.analysis`), and an analysis holds read-only arrays in ``MappingProxyType``.

Each cache comes twice, one for the bundled backbone (``spec.bundled``) and one for the others, so that
the backbone every first-time visitor needs, and its analyses, are never evicted by a large backbone:

* backbones: 2 bundled (pretrained and untrained, ~20 MB each) and 2 others (two VGG-19s are ~1.2 GB),
  least recently used out;
* analyses: keyed by (backbone name, weights, sha256 of the image bytes, target class); the bytes travel
  as the unhashed ``_image_bytes``. 16 for the bundled backbone (~4 MB each) and 8 for the others (up
  to ~55 MB each for VGG-16).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import streamlit as st

import backbone_viz as bv

BUNDLED_BACKBONES = 2
OTHER_BACKBONES = 2
BUNDLED_ANALYSES = 16
OTHER_ANALYSES = 8

F = TypeVar("F", bound=Callable[..., object])


def _shared(function: F, kind: str, max_entries: int) -> F:
    """``function`` behind its own ``st.cache_resource`` of ``max_entries``.

    Streamlit names a cache after the function's module, qualified name and source, not after the
    function object, so the functions made by one factory below would otherwise share ONE cache and its
    first ``max_entries`` (streamlit#11157). Each gets a name of its own.
    """
    function.__qualname__ = f"{function.__name__}.{kind}"
    return st.cache_resource(max_entries=max_entries, show_spinner=False)(function)


@dataclass(frozen=True)
class _Caches:
    """The caches of one kind of backbone (bundled or not)."""

    backbone: Callable[[str, str], bv.Backbone]
    analysis: Callable[[str, str, str, int | None, bytes], bv.AnalysisResult]


def _caches(kind: str, *, backbones: int, analyses: int) -> _Caches:
    def backbone(name: str, weights: str) -> bv.Backbone:
        return bv.load_backbone(name, weights)

    def analysis(
        name: str, weights: str, image_sha256: str, target: int | None, _image_bytes: bytes
    ) -> bv.AnalysisResult:
        return bv.analyze(cached_backbone(name, weights), bv.load_image(_image_bytes), target)

    return _Caches(_shared(backbone, kind, backbones), _shared(analysis, kind, analyses))


#: The caches by ``spec.bundled``.
_CACHES = {
    True: _caches("bundled", backbones=BUNDLED_BACKBONES, analyses=BUNDLED_ANALYSES),
    False: _caches("other", backbones=OTHER_BACKBONES, analyses=OTHER_ANALYSES),
}


def _for(name: str) -> _Caches:
    return _CACHES[bv.get_spec(name).bundled]


def cached_backbone(name: str, weights: str) -> bv.Backbone:
    """The shared backbone (loads it on first use; raises ``WeightsError`` like ``load_backbone``)."""
    return _for(name).backbone(name, weights)


def cached_analysis(
    name: str, weights: str, image_sha256: str, image_bytes: bytes, target: int | None = None
) -> bv.AnalysisResult:
    """The shared analysis of one image (runs the model only on a cache miss)."""
    return _for(name).analysis(name, weights, image_sha256, target, image_bytes)


def clear_backbones() -> None:
    """Forgets every loaded backbone (a test's fake weights must not outlive it)."""
    for caches in _CACHES.values():
        caches.backbone.clear()


def clear_analyses() -> None:
    """Empties the analysis caches (the benchmark's "first analysis"); backbones stay loaded."""
    for caches in _CACHES.values():
        caches.analysis.clear()
