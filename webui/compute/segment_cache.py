"""Paint to segment through the gateway: a segmenter fitted on a learner's strokes, shared by every session.

A fit depends only on the backbone, its weights, the picture, the strokes, the label names and the
stages read, so it is cached for every session under those (the picture and the strokes by their
sha256; their bytes travel unhashed). A rerun with nothing changed, or another learner who paints the
very same strokes, fits nothing: it takes no turn of the queue either (``in_turn`` with a key).

A segmentation is small (a (224, 224) mask and (K, 224, 224) probabilities: under 1 MB), but the page
fits five per set of strokes (all stages and four comparisons), so each tier keeps a few dozen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

import backbone_viz as bv
from webui.compute.caches import TwoTier, cached_backbone, cached_picture, in_turn
from webui.compute.turns import WaitCallback

BUNDLED_SEGMENTATIONS = 40
OTHER_SEGMENTATIONS = 20

Levels = tuple[int, ...] | None


def strokes_sha256(strokes: np.ndarray) -> str:
    """The sha256 of a label map's shape and values (as int16), the key its segmentation is cached under."""
    array = np.ascontiguousarray(strokes, dtype=np.int16)
    return hashlib.sha256(f"{array.shape}".encode() + array.tobytes()).hexdigest()


def _frozen(strokes: np.ndarray) -> tuple[np.ndarray, str]:
    """A read-only int64 copy of ``strokes`` (cached results may keep it) and its sha256."""
    frozen = np.array(strokes, dtype=np.int64)
    frozen.flags.writeable = False
    return frozen, strokes_sha256(frozen)


def _segmentation() -> Callable[..., bv.Segmentation]:
    def segmentation(
        name: str,
        weights: str,
        image_sha256: str,
        strokes_sha: str,
        labels: tuple[str, ...],
        levels: Levels,
        _image_bytes: bytes,
        _strokes: np.ndarray,
    ) -> bv.Segmentation:
        return bv.fit_segmenter(
            cached_backbone(name, weights),
            cached_picture(image_sha256, _image_bytes),
            _strokes,
            labels,
            levels=None if levels is None else list(levels),
        )

    return segmentation


_SEGMENTATIONS = TwoTier(_segmentation, bundled=BUNDLED_SEGMENTATIONS, other=OTHER_SEGMENTATIONS)


def cached_segmentation(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    strokes: np.ndarray,
    labels: Sequence[str],
    *,
    levels: Sequence[int] | None = None,
    on_wait: WaitCallback | None = None,
) -> bv.Segmentation:
    """The picture segmented by a head fitted on ``strokes`` (see :func:`backbone_viz.fit_segmenter`).

    Args:
        strokes: (crop, crop) int label map in the backbone's crop coordinates, -1 where unpainted.
        labels: the label names, in stroke-index order.
        levels: the stage indices whose features the head reads; None for every stage.
        on_wait: told the place in the queue while the fit waits for its turn.

    Raises:
        SegmentError: strokes the engine cannot fit on (nothing painted, one label only...); not cached.
    """
    frozen, sha = _frozen(strokes)
    chosen = None if levels is None else tuple(int(i) for i in levels)
    names = tuple(labels)
    key = ("segment", name, weights, image_sha256, sha, names, chosen)
    return in_turn(
        key,
        on_wait,
        lambda: _SEGMENTATIONS(name, weights, image_sha256, sha, names, chosen, image_bytes, frozen),
    )


def _applied() -> Callable[..., bv.Segmentation]:
    def applied(
        name: str,
        weights: str,
        image_sha256: str,
        strokes_sha: str,
        labels: tuple[str, ...],
        other_sha256: str,
        _fit: Callable[[], bv.Segmentation],
        _other_bytes: bytes,
    ) -> bv.Segmentation:
        return bv.apply_segmenter(
            cached_backbone(name, weights), _fit().head, cached_picture(other_sha256, _other_bytes)
        )

    return applied


_APPLIED = TwoTier(_applied, bundled=BUNDLED_SEGMENTATIONS, other=OTHER_SEGMENTATIONS)


def cached_applied(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    strokes: np.ndarray,
    labels: Sequence[str],
    other_sha256: str,
    other_bytes: bytes,
    *,
    on_wait: WaitCallback | None = None,
) -> bv.Segmentation:
    """Another picture segmented by the head fitted on ``strokes`` over every stage (see
    :func:`backbone_viz.apply_segmenter`): the fit is :func:`cached_segmentation`'s, shared.

    Raises:
        SegmentError: strokes the engine cannot fit on; not cached.
    """
    frozen, sha = _frozen(strokes)
    names = tuple(labels)

    def fit() -> bv.Segmentation:
        return _SEGMENTATIONS(name, weights, image_sha256, sha, names, None, image_bytes, frozen)

    return in_turn(
        ("applied", name, weights, image_sha256, sha, names, other_sha256),
        on_wait,
        lambda: _APPLIED(name, weights, image_sha256, sha, names, other_sha256, fit, other_bytes),
    )
