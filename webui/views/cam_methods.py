"""The Grad-CAM page's other methods: the CAM family side by side at every stage, and Score-CAM on demand.

Every method's row is drawn from the registry of :mod:`backbone_viz.explain.cams` (its title, its one
sentence and its paper), so a new method there is a new choice here with no change to this module.
"""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
import webui
from backbone_viz import render
from webui.compute import cam_cache
from webui.shell.state import Choices
from webui.views import widgets

#: The methods a learner sees first beside Grad-CAM: one that sharpens it, one that keeps the gradient's
#: sign per place, one that needs no class at all.
FIRST_SHOWN = ("gradcampp", "layercam", "eigencam")
#: Score-CAM's channel choices; the last stage of these backbones has 320 to 2048 channels.
SCORE_CAM_CHANNELS = (16, 32, 64, 128, 256)


def show_family(choices: Choices, result: bv.AnalysisResult, opacity: float) -> None:
    """The chosen CAM methods for the class ``result`` explains, one row per method, one picture per stage."""
    spec = choices.spec
    methods = {method.name: method for method in bv.list_cams()}
    others = [name for name in methods if name != "gradcam"]
    chosen = st.multiselect(
        "Methods to compare with Grad-CAM",
        others,
        default=[name for name in FIRST_SHOWN if name in others],
        format_func=lambda name: methods[name].title,
        key="cam.methods",
    )
    if not chosen:
        st.caption("Choose a method above to see its map beside Grad-CAM's.")
        return
    family = webui.cam_maps(choices, result.target.index, ["gradcam", *chosen])
    crop = result.input_image
    for cell, stage in zip(st.columns(len(spec.stages)), spec.stages, strict=True):
        cell.markdown(f"**stage {stage.index}** {widgets.level_badge(stage.level)}")
    for name in ["gradcam", *chosen]:
        method = methods[name]
        st.markdown(f"**{method.title}** ({method.paper}): {method.sentence}")
        cells = st.columns(len(spec.stages))
        for cell, stage in zip(cells, spec.stages, strict=True):
            cam_map = family.maps[name][stage.last.name]
            cell.image(
                widgets.shown(
                    render.overlay(crop, cam_map, alpha=opacity, cmap=render.GRADCAM_CMAP), photo=True
                ),
                width="stretch",
            )
            if float(cam_map.max()) <= 0.0:
                cell.caption(f"stage {stage.index}: zero everywhere")
    st.caption(
        f"All {len(chosen) + 1} rows come from one forward pass and one gradient "
        f"({family.total_ms:.0f} ms). EigenCAM reads no gradient: its map is the same whatever class you choose."
    )


def show_score_cam(choices: Choices, result: bv.AnalysisResult, opacity: float) -> None:
    """Score-CAM at the last stage, run only when asked, its cost said first, beside Grad-CAM's map."""
    spec = choices.spec
    layer = spec.stages[-1].last
    st.markdown(
        "**Score-CAM** (Wang et al., 2020) uses no gradient at all: it masks the picture with each channel's "
        "map in turn and asks the model how sure it still is. That is one forward pass per channel, so it "
        "is slow: choose how many of the most active channels it tries."
    )
    channels = st.select_slider(
        f"Channels of `{layer.label}` to try (it has {layer.channels})",
        [k for k in SCORE_CAM_CHANNELS if k < layer.channels] + [layer.channels],
        value=min(32, layer.channels),
        key=f"cam.score_k.{spec.name}",
    )
    top = None if channels == layer.channels else int(channels)
    ready = cam_cache.score_cam(
        choices.backbone, choices.weights, choices.image, result.target.index, layer.name, top
    )
    if ready is None:
        cost = cam_cache.score_cam_cost(choices.backbone, choices.weights, layer.name, top)
        ask = st.empty()
        with ask.container():
            st.caption(f"{cost.forward_passes} forward passes, about {_seconds(cost.seconds)} on this server.")
            run = st.button("Run Score-CAM", key="cam.score_run", icon=":material/play_arrow:")
        if not run:
            return
        ask.empty()
        ready = webui.score_cam_map(choices, result.target.index, layer.name, top)
    left, right, note = st.columns([1, 1, 2])
    crop = result.input_image
    left.image(
        widgets.shown(render.overlay(crop, ready.map, alpha=opacity, cmap=render.GRADCAM_CMAP), photo=True),
        width="stretch",
    )
    left.caption(f"Score-CAM, {len(ready.channels)} channels")
    right.image(
        widgets.shown(
            render.overlay(crop, result.gradcam[layer.name], alpha=opacity, cmap=render.GRADCAM_CMAP),
            photo=True,
        ),
        width="stretch",
    )
    right.caption("Grad-CAM, the same stage")
    note.markdown(
        f"Made from {ready.forward_passes} forward passes in {_seconds(ready.seconds)}, against one forward pass "
        "and one gradient for every map above. Where both are bright, the gradient and the masking agree "
        "on what the class needs."
    )


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
