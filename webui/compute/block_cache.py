"""The "Inside a block" page's shared caches: a block opened on a picture, knock-out analyses, and the
block ablation. With :mod:`webui.compute.caches` the only modules of the page that run the model.

As in :mod:`webui.compute.caches`, ``st.cache_resource`` keeps ONE object per key for every session and never
copies it, which is safe because every result is frozen (read-only arrays in ``MappingProxyType``) and the
engine never changes the shared backbone (a knock-out is an edit of a copy of its traced graph). Keys:

* a block opened on a picture: (backbone name, weights, sha256 of the image bytes, block name);
* a knock-out analysis: (backbone name, weights, sha256, the knock-out as a tuple, Grad-CAM target);
* a block ablation: (backbone name, weights, sha256).

The picture's bytes travel unhashed as ``_image_bytes``. Each cache comes twice, by ``spec.bundled``, so
that the bundled backbone's entries are never evicted by a large backbone's. Least recently used out:

* blocks: 24 for the bundled backbone (a Lite0 block is at most ~5 MB of maps) and 8 for the others
  (a VGG-16 block up to ~30 MB);
* knock-out analyses: 8 and 4 (a full analysis: ~4 MB for Lite0, ~55 MB for VGG-16);
* ablations: 16 each (a row per block, a few kB).

The ablation runs one forward pass per removable block and the page shows its progress. Streamlit
replays whatever a cached function draws on every later hit, so the progress bar must not be drawn
inside one: the cache keeps a :class:`~webui.compute.caches.Slot` per key, which the first session to need it
fills once, under the slot's lock, outside any cached function (:func:`block_ablation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import backbone_viz as bv
from backbone_viz.core.knockout import Knockout, KnockoutItem
from backbone_viz.probes.ablation import AblationProgress
from webui.compute.caches import Slot, TwoTier, cached_backbone, cached_picture, in_turn

BUNDLED_BLOCKS = 24
OTHER_BLOCKS = 8
BUNDLED_KNOCKOUTS = 8
OTHER_KNOCKOUTS = 4
ABLATIONS = 16

def _inside() -> Callable[[str, str, str, str, bytes], bv.InsideBlock]:
    def inside(name: str, weights: str, image_sha256: str, block: str, _image_bytes: bytes) -> bv.InsideBlock:
        return bv.inside_block(cached_backbone(name, weights), cached_picture(image_sha256, _image_bytes), block)

    return inside


def _knockout() -> Callable[[str, str, str, tuple[Knockout, ...], int | None, bytes], bv.AnalysisResult]:
    def knockout(
        name: str,
        weights: str,
        image_sha256: str,
        items: tuple[Knockout, ...],
        target: int | None,
        _image_bytes: bytes,
    ) -> bv.AnalysisResult:
        return bv.analyze(
            cached_backbone(name, weights), cached_picture(image_sha256, _image_bytes), target, knockout=items
        )

    return knockout


def _ablation() -> Callable[[str, str, str], Slot[tuple[bv.AblationRow, ...]]]:
    def ablation(name: str, weights: str, image_sha256: str) -> Slot[tuple[bv.AblationRow, ...]]:
        return Slot()

    return ablation


_INSIDE = TwoTier(_inside, bundled=BUNDLED_BLOCKS, other=OTHER_BLOCKS)
_KNOCKOUTS = TwoTier(_knockout, bundled=BUNDLED_KNOCKOUTS, other=OTHER_KNOCKOUTS)
_ABLATIONS = TwoTier(_ablation, bundled=ABLATIONS, other=ABLATIONS)


def cached_inside_block(
    name: str, weights: str, image_sha256: str, image_bytes: bytes, block: str
) -> bv.InsideBlock:
    """The shared :func:`backbone_viz.inside_block` of one block on one picture (runs the model on a miss)."""
    key = ("block", name, weights, image_sha256, block)
    return in_turn(key, None, lambda: _INSIDE(name, weights, image_sha256, block, image_bytes))


def normalise(items: Sequence[KnockoutItem]) -> tuple[Knockout, ...]:
    """A knock-out as a hashable key: block names, ``(layer name, sorted channels)`` (a tuple, not a list)."""
    return tuple(
        item if isinstance(item, str) else (item[0], tuple(sorted({int(c) for c in item[1]})))
        for item in items
    )


def cached_knockout(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    items: Sequence[KnockoutItem],
    target: int | None = None,
) -> bv.AnalysisResult:
    """The shared analysis of one picture after a knock-out, with Grad-CAM for ``target`` (``None``: the
    top class after the knock-out).

    Raises:
        KnockoutError: the knock-out cannot be done (the message says why); such failures are not cached.
    """
    done = normalise(items)
    key = ("knockout", name, weights, image_sha256, done, target)
    return in_turn(key, None, lambda: _KNOCKOUTS(name, weights, image_sha256, done, target, image_bytes))


def cached_ablation(name: str, weights: str, image_sha256: str) -> tuple[bv.AblationRow, ...] | None:
    """The block ablation of a picture if some session already ran it, else ``None`` (runs nothing)."""
    return _ABLATIONS(name, weights, image_sha256).value


def block_ablation(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    progress: AblationProgress | None = None,
) -> tuple[bv.AblationRow, ...]:
    """Removes each removable block in turn (:func:`backbone_viz.block_ablation`), once per picture for
    everyone: a second session asking meanwhile waits for the first one's rows.

    Args:
        progress: ``progress(done, total)`` after each removal; called in this session's own thread,
            outside any cached function, so it may draw (an ``st.progress`` bar).
    """
    backbone, picture = cached_backbone(name, weights), cached_picture(image_sha256, image_bytes)
    return _ABLATIONS(name, weights, image_sha256).fill(lambda: bv.block_ablation(backbone, picture, progress=progress))


def clear() -> None:
    """Empties this page's caches (tests, the benchmark's first visit); backbones stay."""
    for cache in (_INSIDE, _KNOCKOUTS, _ABLATIONS):
        cache.clear()
