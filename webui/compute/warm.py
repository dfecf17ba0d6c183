"""Warm start: the bundled backbone loaded and the sample gallery analysed before the first visitor.

Without it the first visitor after a server start waits for the imports, the model load and the
analysis (6 to 9 s measured). :func:`run` fills the shared caches of :mod:`webui.compute.caches` (the same ones
every session reads), then moves everything the process holds so far into Python's permanent
generation (``gc.freeze``): Streamlit runs a full garbage collection after every script run
(``runner.postScriptGC``), and with torch, timm and a backbone loaded that walked ~550,000 objects,
about half a second of CPU per page view on this machine; frozen objects are never walked again.

``python -m backbone_viz serve`` runs :func:`run` before the server answers its health check (through
:mod:`webui.shell.launch`); a plain ``streamlit run app.py`` calls :func:`start` from ``app.py``, which runs it
once per process in the background.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

import backbone_viz as bv
from webui.compute.caches import cached_activations, cached_backbone, cached_gradcam
from webui.compute.featurevis_cache import gallery_maps
from webui.shell.state import sample_choice, samples

WARM_START_ENV = "BACKBONE_VIZ_WARM_START"
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()


def run() -> float:
    """Loads the bundled backbone (pretrained), analyses every sample picture (activations and the top
    class's Grad-CAM: the whole class opens these pages on the samples) and keeps the gallery's maps
    of every layer (the channel card's top patches), loads the untrained version too (the card's
    "pretrained beside untrained", ~20 MB), then freezes the heap.

    Returns:
        The seconds it took.
    """
    start = time.perf_counter()
    try:
        spec = next(s for s in bv.list_backbones() if s.bundled)
        cached_backbone(spec.name, "pretrained")
        for sample in samples():
            picture = sample_choice(sample.name)
            cached_activations(spec.name, "pretrained", picture.sha256, picture.data)
            cached_gradcam(spec.name, "pretrained", picture.sha256, picture.data)
        gallery_maps(spec.name, "pretrained", spec.layers[0].name)  # every layer, for the channel card
        cached_backbone(spec.name, "untrained")  # Feature build-up shows it beside the pretrained one
    except bv.BackboneVizError as error:  # a missing bundle: the pages explain it to the visitor
        _log.warning("warm start incomplete: %s", error)
    gc.collect()
    gc.freeze()
    _done.set()
    return time.perf_counter() - start


def start() -> None:
    """Runs :func:`run` once per process, in a background thread (later calls return at once).

    ``BACKBONE_VIZ_WARM_START=0`` turns it off: the tests, which count model runs and time first
    analyses, set it, so that no analysis runs behind their back.
    """
    global _thread
    if os.environ.get(WARM_START_ENV, "1") == "0":
        return
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=run, name="backbone-viz-warm-start", daemon=True)
            _thread.start()


def is_done() -> bool:
    """Whether the warm start has finished in this process."""
    return _done.is_set()
