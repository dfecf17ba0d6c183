"""The "Pixel attributions" page's shared caches: one method's map of a picture, and the sanity check.
With :mod:`webui.caches` the only modules of the page that run the model.

As in :mod:`webui.caches`, ``st.cache_resource`` keeps ONE object per key for every session and never
copies it, which is safe because every result is frozen (read-only arrays) and the engine never changes
the shared backbone (the sanity check randomizes a private copy). Keys:

* an attribution: (backbone name, weights, sha256 of the image bytes, method, class index);
* a sanity check: (backbone name, weights, sha256, method, class index).

The picture's bytes travel unhashed as ``_image_bytes``. A model run on a miss takes its turn in the
shared queue (:mod:`webui.turns`). Each cache comes twice, by ``spec.bundled``, so that the bundled
backbone's entries are never evicted by a large backbone's. Least recently used out:

* attributions: 40 for the bundled backbone (five methods for eight pictures; each ~1 MB: the
  (3, 224, 224) channels and two (224, 224) maps in float32) and 10 for the others;
* sanity checks: 16 each (seven to eight steps of ~1 MB).

The sanity check shows its progress. Streamlit replays whatever a cached function draws on every later
hit, so the progress bar must not be drawn inside one: the cache keeps a :class:`SanitySlot` per key,
which the first session to need it fills once, under the slot's lock, outside any cached function (as
:mod:`webui.block_cache` does for the block ablation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import backbone_viz as bv
from backbone_viz.sanity import SanityProgress

from .caches import cached_backbone, cached_picture, in_turn, shared

BUNDLED_ATTRIBUTIONS = 40
OTHER_ATTRIBUTIONS = 10
SANITY_CHECKS = 16

class SanitySlot:
    """Where one sanity check is kept: empty until a session runs it, then read-only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.check: bv.SanityCheck | None = None


@dataclass(frozen=True)
class _Caches:
    attribution: Callable[[str, str, str, str, int, bytes], bv.Attribution]
    sanity: Callable[[str, str, str, str, int], SanitySlot] = field(repr=False)


def _caches(kind: str, *, attributions: int) -> _Caches:
    def attribution(
        name: str, weights: str, image_sha256: str, method: str, target: int, _image_bytes: bytes
    ) -> bv.Attribution:
        return bv.attribute(
            cached_backbone(name, weights), cached_picture(image_sha256, _image_bytes), method, target
        )

    def sanity(name: str, weights: str, image_sha256: str, method: str, target: int) -> SanitySlot:
        return SanitySlot()

    return _Caches(shared(attribution, kind, attributions), shared(sanity, kind, SANITY_CHECKS))


_CACHES = {
    True: _caches("bundled", attributions=BUNDLED_ATTRIBUTIONS),
    False: _caches("other", attributions=OTHER_ATTRIBUTIONS),
}


def _for(name: str) -> _Caches:
    return _CACHES[bv.get_spec(name).bundled]


def cached_attribution(
    name: str, weights: str, image_sha256: str, image_bytes: bytes, method: str, target: int
) -> bv.Attribution:
    """The shared :func:`backbone_viz.attribute` of one class with one method (default options).

    Raises:
        AttributionError: the method cannot be done right on this backbone; such failures are not cached.
    """
    key = ("attribution", name, weights, image_sha256, method, target)
    return in_turn(
        key, None, lambda: _for(name).attribution(name, weights, image_sha256, method, target, image_bytes)
    )


def cached_sanity(
    name: str, weights: str, image_sha256: str, method: str, target: int
) -> bv.SanityCheck | None:
    """The sanity check of a method on a picture if some session already ran it, else ``None``."""
    return _for(name).sanity(name, weights, image_sha256, method, target).check


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
    slot = _for(name).sanity(name, weights, image_sha256, method, target)
    with slot.lock:
        if slot.check is None:
            backbone = cached_backbone(name, weights)
            picture = cached_picture(image_sha256, image_bytes)
            # A certain miss (the slot is empty): always a turn, whatever ran lately under this key.
            slot.check = in_turn(
                None, None, lambda: bv.sanity_check(backbone, picture, method, target, progress=progress)
            )
        return slot.check


def clear() -> None:
    """Empties this page's caches (tests, the benchmark's first visit); backbones stay."""
    for caches in _CACHES.values():
        caches.attribution.clear()
        caches.sanity.clear()
