"""The "Pixel attributions" page's shared caches: one method's map of a picture, and the sanity check.
With :mod:`webui.compute.caches` the only modules of the page that run the model.

As in :mod:`webui.compute.caches`, ``st.cache_resource`` keeps ONE object per key for every session and never
copies it, which is safe because every result is frozen (read-only arrays) and the engine never changes
the shared backbone (the sanity check randomizes a private copy). Keys:

* an attribution: (backbone name, weights, sha256 of the image bytes, method, class index);
* a sanity check: (backbone name, weights, sha256, method, class index).

The picture's bytes travel unhashed as ``_image_bytes``. A model run on a miss takes its turn in the
shared queue (:mod:`webui.compute.turns`). Each cache comes twice, by ``spec.bundled``, so that the bundled
backbone's entries are never evicted by a large backbone's. Least recently used out:

* attributions: 40 for the bundled backbone (five methods for eight pictures; each ~1 MB: the
  (3, 224, 224) channels and two (224, 224) maps in float32) and 10 for the others;
* sanity checks: 16 each (seven to eight steps of ~1 MB).

The sanity check shows its progress. Streamlit replays whatever a cached function draws on every later
hit, so the progress bar must not be drawn inside one: the cache keeps a :class:`~webui.compute.caches.Slot` per key,
which the first session to need it fills once, under the slot's lock, outside any cached function (as
:mod:`webui.compute.block_cache` does for the block ablation).
"""

from __future__ import annotations

from collections.abc import Callable

import backbone_viz as bv
from backbone_viz.explain.sanity import SanityProgress
from webui.compute.caches import Slot, TwoTier, cached_backbone, cached_picture, in_turn

BUNDLED_ATTRIBUTIONS = 40
OTHER_ATTRIBUTIONS = 10
SANITY_CHECKS = 16

def _attribution() -> Callable[[str, str, str, str, int, bytes], bv.Attribution]:
    def attribution(
        name: str, weights: str, image_sha256: str, method: str, target: int, _image_bytes: bytes
    ) -> bv.Attribution:
        return bv.attribute(
            cached_backbone(name, weights), cached_picture(image_sha256, _image_bytes), method, target
        )

    return attribution


def _sanity() -> Callable[[str, str, str, str, int], Slot[bv.SanityCheck]]:
    def sanity(name: str, weights: str, image_sha256: str, method: str, target: int) -> Slot[bv.SanityCheck]:
        return Slot()

    return sanity


_ATTRIBUTIONS = TwoTier(_attribution, bundled=BUNDLED_ATTRIBUTIONS, other=OTHER_ATTRIBUTIONS)
_SANITY = TwoTier(_sanity, bundled=SANITY_CHECKS, other=SANITY_CHECKS)


def cached_attribution(
    name: str, weights: str, image_sha256: str, image_bytes: bytes, method: str, target: int
) -> bv.Attribution:
    """The shared :func:`backbone_viz.attribute` of one class with one method (default options).

    Raises:
        AttributionError: the method cannot be done right on this backbone; such failures are not cached.
    """
    key = ("attribution", name, weights, image_sha256, method, target)
    return in_turn(
        key, None, lambda: _ATTRIBUTIONS(name, weights, image_sha256, method, target, image_bytes)
    )


def cached_sanity(
    name: str, weights: str, image_sha256: str, method: str, target: int
) -> bv.SanityCheck | None:
    """The sanity check of a method on a picture if some session already ran it, else ``None``."""
    return _SANITY(name, weights, image_sha256, method, target).value


def sanity_check(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    method: str,
    target: int,
    progress: SanityProgress | None = None,
) -> bv.SanityCheck:
    """Runs :func:`backbone_viz.sanity_check` once per picture, method and class for everyone: a second
    session asking meanwhile waits for the first one's result.

    Args:
        progress: ``progress(done, total)`` after each step; called in this session's own thread, outside
            any cached function, so it may draw (an ``st.progress`` bar).
    """
    backbone, picture = cached_backbone(name, weights), cached_picture(image_sha256, image_bytes)
    slot = _SANITY(name, weights, image_sha256, method, target)
    return slot.fill(lambda: bv.sanity_check(backbone, picture, method, target, progress=progress))


def clear() -> None:
    """Empties this page's caches (tests, the benchmark's first visit); backbones stay."""
    _ATTRIBUTIONS.clear()
    _SANITY.clear()
