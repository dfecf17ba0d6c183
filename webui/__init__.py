"""The web app's shared UI: what every page calls first, and the analysis a page draws.

Pages start with::

    import webui
    choices = webui.page_setup()
    result = webui.analysis_or_stop(choices)      # activations and Grad-CAM
    # or, for a page that shows no Grad-CAM (half the model's work on a new picture):
    result = webui.activations_or_stop(choices)

and then only draw. Its sub-packages, one job each:

* ``compute``: the ONE gateway to the model. The caches every session shares (``caches``, and those of
  ``block_cache``, ``attribution_cache``, ``featurevis_cache``), the fair queue (``turns``), the warm
  start, a learner's own head (``heads_state``) and the figures drawn from results. Every model run of
  the app takes a turn of the queue through ``compute.caches.in_turn``; pages never touch the model, and
  ``tests/app/conftest.py`` fails any run made outside a turn.
* ``shell``: the sidebar and the session's choices (``sidebar``, ``state``), links that reopen a view
  (``links``), projector mode, the page registry (``pages``), the weights' download (``weights_ui``),
  and how a replica starts (``launch``).
* ``views``: what the pages draw beyond a few widgets (block diagrams and their words, attribution and
  feature-visualization views, the heads page's three tabs, small drawing helpers in ``widgets``).
* ``lessons``: the lessons' questions and reveals, and a learner's progress through them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TypeVar

import numpy as np
import streamlit as st
import torch
from streamlit.delta_generator import DeltaGenerator

import backbone_viz as bv
from backbone_viz.core.device import DEVICE_ENV
from webui.compute import cam_cache, dense_cache, detect_cache, faithfulness_cache
from webui.compute.caches import cached_activations, cached_analysis
from webui.compute.segment_cache import cached_applied, cached_segmentation
from webui.compute.turns import WaitCallback
from webui.shell import links, projector
from webui.shell.links import PRESENT
from webui.shell.sidebar import render_sidebar, sidebar_for_this_run
from webui.shell.state import IMAGE_ERROR, Choices, ImageChoice, persistent
from webui.shell.weights_ui import load

__all__ = [
    "Choices",
    "activations",
    "activations_or_stop",
    "analysis",
    "analysis_or_stop",
    "cam_maps",
    "configure_torch",
    "dense_comparison",
    "dense_inside",
    "dense_looked",
    "dense_model",
    "dense_findings",
    "detections",
    "detector",
    "occlusion_map",
    "ranking",
    "roads",
    "full_analysis",
    "page_setup",
    "render_sidebar",
    "score_cam_map",
    "segmentation",
    "sidebar_for_this_run",
]


T = TypeVar("T")

#: What untrained weights change, as measured once on the cat sample: random filters still
#: pass the picture (a stage-1 channel of every untrained backbone follows the picture's brightness with a
#: correlation above 0.85 on the cat), but the head's answer means nothing, however sure it looks
#: (untrained ResNet-50 calls the cat a photocopier at 44 %).
UNTRAINED_NOTE = (
    "**Untrained weights: random numbers instead of learned ones.** Random filters still pass the picture "
    "through, so the early stages still show its edges and colours. What is missing is what training adds: "
    "no channel has learned to find an object, so the top-5 is a guess, however sure it looks. Switch back "
    "to *pretrained* in the sidebar to compare, or see both side by side in lesson 5 (Lessons)."
)
#: The same note in one line, for a projected screen whose first view belongs to the figure.
UNTRAINED_NOTE_SHORT = (
    "**Untrained weights: random numbers instead of learned ones.** No channel has learned to find an "
    "object, so the top-5 is a guess."
)


@cache
def configure_torch() -> None:
    """Sets torch's thread count and the device for this process, once (a second call does nothing).

    Every session analyses in its own thread; torch's default (one intra-op thread per core, for each
    analysis) oversubscribes the CPU when a whole class works at once. One thread per analysis lost
    nothing for a lone session and used less CPU for the same work at N=16 (bench/engine_load.py,
    bench/load.py). BACKBONE_VIZ_TORCH_THREADS overrides it (e.g. a single-user machine with many cores).
    The device comes from the app's own arguments (:func:`device_argument`), else the environment.

    Called where the app starts (``app.py``) and again by :func:`page_setup`, because AppTest and a page
    run on its own never run ``app.py``. Not at import: importing ``webui`` (a test, a benchmark, a
    notebook) must not change the importer's torch settings.
    """
    torch.set_num_threads(int(os.environ.get("BACKBONE_VIZ_TORCH_THREADS", "1")))
    device = device_argument(sys.argv[1:])
    if device is not None:
        os.environ[DEVICE_ENV] = device


def device_argument(args: list[str]) -> str | None:
    """The device given to the app as ``streamlit run app.py -- --device cuda`` (or ``--device=cuda``),
    or None; it then counts as :data:`~backbone_viz.core.device.DEVICE_ENV` for every backbone this process
    loads (``serve --device`` passes that variable to its replicas)."""
    for i, arg in enumerate(args):
        if arg == "--device" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--device="):
            return arg.split("=", 1)[1]
    return None


def page_setup() -> Choices:
    """What every page calls first: the sidebar (drawn once per run) and the notes every page needs.

    Returns:
        The session's choices of backbone, weights and picture.
    """
    configure_torch()
    choices = render_sidebar()
    params = links.write_url()
    projector.inject()
    with st.sidebar:
        st.toggle(
            "Projector mode",
            help="For class: a larger font, the sidebar folded away, each page's main figure first. "
            "The link below opens in projector mode too while it is on.",
            **persistent(PRESENT, False),
        )
        shared = links.share_control(params, upload=choices.image.kind != "sample")
    links.copy_button(shared)
    problem = st.session_state.get(IMAGE_ERROR)
    if problem is not None:
        name, message, hint = problem
        st.error(
            f"**{name} could not be used.** {message}\n\n{hint}\n\n"
            f"Still showing the previous picture: {choices.image.caption}."
        )
    if choices.weights == "untrained":
        st.warning(UNTRAINED_NOTE_SHORT if projector.on() else UNTRAINED_NOTE, icon=":material/casino:")
    return choices


def analysis(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int | None = None,
    *,
    key: str = "load",
    offer_bundled: bool = True,
    use_untrained: Callable[[], None] | None = None,
) -> bv.AnalysisResult | None:
    """The analysis of ``image`` by a backbone (activations and Grad-CAM), or ``None``.

    Loads the backbone first (see :func:`webui.shell.weights_ui.load`); shows an ``st.error`` and returns
    ``None`` when the backbone or the image cannot be used.

    Args:
        target: class index for Grad-CAM, or ``None`` for the top prediction.
        key: prefix of the weights buttons' keys (several backbones may fail on one page).
        offer_bundled: offer a button that switches the sidebar to the bundled backbone.
        use_untrained: what the "untrained" button does when the weights fail (see ``weights_ui``).
    """
    if load(name, weights, key=key, offer_bundled=offer_bundled, use_untrained=use_untrained) is None:
        return None
    return _in_queue(
        name,
        lambda on_wait: cached_analysis(name, weights, image.sha256, image.data, target, on_wait=on_wait),
    )


def activations(
    name: str, weights: str, image: ImageChoice, *, key: str = "load", offer_bundled: bool = True
) -> bv.Activations | None:
    """What ``image`` does to a backbone's layers, with its top-5 and no Grad-CAM, or ``None``.

    As :func:`analysis`, for a page that shows no Grad-CAM: a new picture then costs one forward pass
    without a gradient, about half an analysis (``bench/analysis.py``).
    """
    if load(name, weights, key=key, offer_bundled=offer_bundled) is None:
        return None
    return _in_queue(
        name, lambda on_wait: cached_activations(name, weights, image.sha256, image.data, on_wait=on_wait)
    )


def full_analysis(choices: Choices) -> Callable[[], bv.AnalysisResult]:
    """Gives the chosen picture's analysis with the top class's Grad-CAM when called, for a download made
    only when clicked (its Grad-CAM runs the model then, in its turn, unless a page made it already)."""
    name, weights, image = choices.backbone, choices.weights, choices.image
    return lambda: cached_analysis(name, weights, image.sha256, image.data)


def segmentation(
    choices: Choices, strokes: np.ndarray, labels: Sequence[str], *, levels: Sequence[int] | None = None
) -> bv.Segmentation:
    """The chosen picture segmented by a head fitted on painted ``strokes`` (cached for every session: a
    rerun with the same strokes fits nothing); the place in the queue is shown meanwhile.

    Args:
        strokes: (crop, crop) int label map in the crop's coordinates, -1 where unpainted.
        labels: the label names, in stroke-index order.
        levels: the stage indices the head reads; None for every stage.

    Raises:
        SegmentError: strokes a segmenter cannot be fitted on; the page shows its message and hint.
    """
    image = choices.image
    return _queued(
        "Fitting a segmenter on your strokes…",
        lambda on_wait: cached_segmentation(
            choices.backbone,
            choices.weights,
            image.sha256,
            image.data,
            strokes,
            labels,
            levels=levels,
            on_wait=on_wait,
        ),
    )


def applied_segmentation(
    choices: Choices, strokes: np.ndarray, labels: Sequence[str], other: ImageChoice
) -> bv.Segmentation:
    """The picture ``other`` segmented by the head fitted on ``strokes`` over the chosen picture (cached for
    every session); the place in the queue is shown meanwhile.

    Raises:
        SegmentError: strokes a segmenter cannot be fitted on.
    """
    image = choices.image
    return _queued(
        f"Applying your segmenter to {other.caption}…",
        lambda on_wait: cached_applied(
            choices.backbone,
            choices.weights,
            image.sha256,
            image.data,
            strokes,
            labels,
            other.sha256,
            other.data,
            on_wait=on_wait,
        ),
    )


def detector(choices: Choices, boxes: detect_cache.Boxes) -> bv.Detector:
    """The detector trained on ``boxes`` drawn on the chosen picture (and their copies pasted onto the other
    sample photos): trained now with a progress bar, unless any session trained it already.

    Args:
        boxes: ``(x0, y0, x1, y1)`` inclusive pixels of the backbone's crop, in the order drawn.

    Raises:
        DetectError: boxes a detector cannot learn from; the page shows its message and hint.
    """
    name, weights, image = choices.backbone, choices.weights, choices.image
    ready = detect_cache.detector(name, weights, image, boxes)
    if ready is not None:
        return ready
    return _with_progress(
        "Training your detector… step",
        lambda progress, on_wait: detect_cache.train_detector(name, weights, image, boxes, progress, on_wait),
    )


def detections(
    choices: Choices, boxes: detect_cache.Boxes, trained: bv.Detector, where: str, threshold: float
) -> bv.Detections:
    """What the detector of ``boxes`` finds on the picture ``where`` names (``detect_cache.NEW``: the boxed
    thing on a photo it never saw; ``detect_cache.YOURS``; or a sample's name), cached for every session."""
    return _queued(
        "Looking for it…",
        lambda on_wait: detect_cache.cached_detections(
            choices.backbone,
            choices.weights,
            choices.image,
            boxes,
            trained,
            where,
            threshold,
            on_wait=on_wait,
        ),
    )


def cam_maps(choices: Choices, target: int, methods: Sequence[str]) -> bv.CamFamily:
    """The CAM ``methods`` for class ``target`` at every stage of the chosen picture, from one pass (cached
    for every session); the place in the queue is shown meanwhile."""
    return _queued(
        "Making the other class activation maps…",
        lambda on_wait: cam_cache.cached_cam_family(
            choices.backbone, choices.weights, choices.image, target, methods, on_wait=on_wait
        ),
    )


def score_cam_map(choices: Choices, target: int, layer: str, channels: int | None) -> bv.ScoreCam:
    """Score-CAM of class ``target`` at ``layer`` from ``channels`` channels (None: all): made now with a
    progress bar, unless any session made it already."""
    name, weights, image = choices.backbone, choices.weights, choices.image
    ready = cam_cache.score_cam(name, weights, image, target, layer, channels)
    if ready is not None:
        return ready
    return _with_progress(
        "Score-CAM: masking the picture with each channel… picture",
        lambda progress, on_wait: cam_cache.make_score_cam(
            name, weights, image, target, layer, channels, progress, on_wait
        ),
    )


def occlusion_map(choices: Choices, target: int, patch: int, stride: int) -> bv.Occlusion:
    """Occlusion of class ``target`` with a ``patch`` px grey square every ``stride`` px: made now with a
    progress bar, unless any session made it already.

    Raises:
        PerturbationError: a patch or stride that does not fit the crop.
    """
    name, weights, image = choices.backbone, choices.weights, choices.image
    return _with_progress(
        "Covering the picture, one place at a time… picture",
        lambda progress, on_wait: faithfulness_cache.make_occlusion(
            name, weights, image, target, patch, stride, progress, on_wait
        ),
    )


def ranking(
    choices: Choices,
    target: int,
    maps: Mapping[str, np.ndarray],
    occluded: tuple[int, int] | None,
    *,
    step: int | None = None,
) -> bv.Ranking:
    """The deletion and insertion curves of ``maps`` and the two baselines, ranked (made now with a progress
    bar unless any session made them already).

    Args:
        occluded: the occlusion's (patch, stride) when its map is among ``maps``.
        step: pixels changed per step; None for the engine's default.
    """
    name, weights, image = choices.backbone, choices.weights, choices.image
    ready = faithfulness_cache.ranking(name, weights, image, target, maps, occluded, step)
    if ready is not None:
        return ready
    return _with_progress(
        "Deleting and inserting pixels… picture",
        lambda progress, on_wait: faithfulness_cache.make_ranking(
            name, weights, image, target, maps, occluded, progress, on_wait, step
        ),
    )


def roads(
    choices: Choices, target: int, maps: Mapping[str, np.ndarray], occluded: tuple[int, int] | None
) -> Mapping[str, bv.Road]:
    """ROAD of ``maps`` and the random map (made now with a progress bar unless ready)."""
    name, weights, image = choices.backbone, choices.weights, choices.image
    return _with_progress(
        "Removing pixels and filling them from their neighbours… picture",
        lambda progress, on_wait: faithfulness_cache.make_roads(
            name, weights, image, target, maps, occluded, progress, on_wait
        ),
    )


def dense_model(choices: Choices, spec: bv.DenseSpec) -> bv.DenseModel:
    """The detector or segmenter ``spec`` with the sidebar's weights, held once per process (its trained
    weights already in the torch cache); the place in the queue shown meanwhile.

    Raises:
        WeightsError: pretrained weights that are not on this computer.
    """
    return _queued(
        f"Loading {spec.full_title} ({choices.weights})…",
        lambda on_wait: dense_cache.dense_model(spec.name, choices.weights, on_wait=on_wait),
    )


def dense_findings(choices: Choices, spec: bv.DenseSpec) -> bv.DenseResult:
    """What ``spec`` finds on the chosen picture, every object from ``dense_cache.SCORE_FLOOR`` up (cached
    for every session)."""
    return _queued(
        f"{spec.full_title} is looking at the picture…",
        lambda on_wait: dense_cache.found_objects(spec.name, choices.weights, choices.image, on_wait=on_wait),
    )


def dense_inside(choices: Choices, spec: bv.DenseSpec) -> dense_cache.StageMaps:
    """The stage maps of the backbone inside ``spec`` on the chosen picture (cached for every session)."""
    return _queued(
        f"Reading {spec.title}'s backbone…",
        lambda on_wait: dense_cache.backbone_maps(spec.name, choices.weights, choices.image, on_wait=on_wait),
    )


def dense_looked(choices: Choices, spec: bv.DenseSpec, source: str) -> bv.LookedMaps:
    """Where ``spec`` looked on the chosen picture, from the maps ``source`` names (cached for every
    session)."""
    return _queued(
        f"Finding where {spec.title} looked…",
        lambda on_wait: dense_cache.looked_maps(
            spec.name, choices.weights, choices.image, source, on_wait=on_wait
        ),
    )


def dense_comparison(choices: Choices, spec: bv.DenseSpec) -> bv.BackboneComparison:
    """``spec``'s backbone compared with the classifier's over the sample pictures: made now (tens of
    seconds) unless any session made it already.

    Raises:
        WeightsError: no classifier weights here and none to fetch.
    """
    return _queued(
        f"Comparing the backbones on {dense_cache.sample_count()} pictures…",
        lambda on_wait: dense_cache.make_comparison(spec.name, choices.weights, on_wait=on_wait),
    )


def _with_progress(label: str, make: Callable[[Callable[[int, int], None], WaitCallback], T]) -> T:
    """``make(progress, on_wait)`` under a progress bar counting ``label`` ``done of total``, with the place in
    the queue shown meanwhile; its errors reach the caller."""
    bar, place = st.progress(0.0, text=label), st.empty()

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label} {done} of {total}")

    try:
        return make(progress, _place_shower(place))
    finally:
        bar.empty()
        place.empty()


def _place_shower(place: DeltaGenerator) -> WaitCallback:
    """Shows the place in the queue in ``place`` while a computation waits for its turn."""

    def show_place(ahead: int) -> None:
        place.info(
            f"**The server is busy with other pictures.** {_ahead_text(ahead)} Yours is analysed as soon "
            "as it is its turn; the page updates by itself.",
            icon=":material/hourglass_top:",
        )

    return show_place


def _queued(spinner: str, compute: Callable[[WaitCallback], T]) -> T:
    """``compute(on_wait)`` under a spinner saying ``spinner``, with the place in the queue shown meanwhile;
    its errors reach the caller."""
    place = st.empty()
    try:
        with st.spinner(spinner):
            return compute(_place_shower(place))
    finally:
        place.empty()


def _in_queue(name: str, compute: Callable[[WaitCallback], T]) -> T | None:
    """``compute(on_wait)`` with the place in the queue shown meanwhile, or ``None`` (explained)."""
    try:
        return _queued(f"Looking at the picture with {bv.get_spec(name).title}…", compute)
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return None


def _ahead_text(ahead: int) -> str:
    if ahead == 0:
        return "Yours is next."
    return f"{ahead} {'picture is' if ahead == 1 else 'pictures are'} ahead of yours."


def analysis_or_stop(choices: Choices, target: int | None = None) -> bv.AnalysisResult:
    """The analysis of the chosen picture by the chosen backbone; on failure the page explains and stops.

    Args:
        choices: from :func:`page_setup`.
        target: class index for Grad-CAM, or ``None`` for the top prediction.
    """
    result = analysis(choices.backbone, choices.weights, choices.image, target)
    if result is None:
        st.stop()
    return result


def activations_or_stop(choices: Choices) -> bv.Activations:
    """What the chosen picture does to the chosen backbone, without Grad-CAM (:func:`activations`); on
    failure the page explains and stops."""
    result = activations(choices.backbone, choices.weights, choices.image)
    if result is None:
        st.stop()
    return result
