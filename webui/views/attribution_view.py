"""The "Pixel attributions" page's drawing: the methods beside Grad-CAM, the sanity check's strip, and the
sentences computed from their numbers (true for every backbone, both weights, every picture)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.explain.attributions import METHODS, get_method
from backbone_viz.files.shipped import assets_dir
from webui.compute import attribution_cache
from webui.shell.state import Choices
from webui.views import widgets

#: Colormap of the attribution maps: black where a pixel does not count, white where it counts most.
ATTRIBUTION_CMAP = "gray"
#: Maps are scaled to this percentile of their own values: a few pixels would otherwise take the whole
#: scale and leave the rest black.
CLIP_PERCENTILE = 99.0
#: The measured sanity checks of the bundled backbone on every sample picture (``bench/attributions.py
#: --write``), which the page summarises.
MEASURED = assets_dir() / "attributions" / "sanity_lite0.json"

def attribution_image(attribution: bv.Attribution, size: int | None = None) -> Image.Image:
    """The map's strength (how much each pixel counts, whichever way), 0 to its 99th percentile."""
    strength = attribution.strength
    top = float(np.percentile(strength, CLIP_PERCENTILE))
    return render.map_image(strength, size=size, cmap=ATTRIBUTION_CMAP, vmin=0.0, vmax=top or None)




def method_cell(choices: Choices, method: str, target: int) -> bv.Attribution | None:
    """One method's map with its title and sentence; a refused method says why instead."""
    st.markdown(f"**{METHODS[method]}**")
    # A slow method runs the model many times (128 steps, 16 noisy copies): on a backbone other than the
    # bundled one it waits for a click (ResNet-50 on one core: ~40 s for Integrated Gradients).
    if get_method(method).slow and not choices.spec.bundled:
        asked = f"attr.asked.{method}"
        if st.session_state.get(asked) != (choices.backbone, choices.weights):
            st.caption(get_method(method).sentence)
            # A short label: the button sits in a quarter of the page; the tooltip names the wait.
            if not st.button(
                "Compute it",
                key=f"attr.run.{method}",
                help=f"Slow on {choices.spec.title}: it runs the model many times.",
            ):
                return None
            st.session_state[asked] = (choices.backbone, choices.weights)
    try:
        with st.spinner(f"{METHODS[method]}…"):
            attribution = attribution_cache.cached_attribution(
                choices.backbone, choices.weights, choices.image.sha256, choices.image.data, method, target
            )
    except bv.AttributionError as error:
        st.warning(f"{error.message}\n\n{error.hint}")
        return None
    st.image(widgets.shown(attribution_image(attribution)), width="stretch")
    st.caption(get_method(method).sentence)
    if attribution.delta is not None:
        st.caption(
            f"{attribution.options['steps']} steps; the values add up to "
            f"{float(attribution.map.sum()):+.2f}, the score's change from black, off by "
            f"{attribution.relative_delta:.1%}."
        )
    return attribution


def gradcam_cell(result: bv.AnalysisResult) -> None:
    """The last stage's Grad-CAM over the crop, for comparison."""
    layer = result.layers[-1]
    st.markdown("**Grad-CAM** (last stage)")
    cam = result.gradcam[layer.name]
    st.image(widgets.shown(render.overlay(result.input_image, cam, alpha=0.55), photo=True), width="stretch")
    h, w = cam.shape
    st.caption(
        f"Where the last stage's {h} × {w} map holds evidence for the class, enlarged to the picture: "
        "coarse, but it follows what the head reads."
    )


# ----------------------------------------------------------------------------------------- sanity check


def step_caption(step: bv.SanityStep) -> str:
    """``"trained"``, ``"+ head random · ρ = 0.37"``..."""
    if step.label == "trained":
        return "trained · ρ = 1.00"
    rho = "undefined" if np.isnan(step.correlation) else f"{step.correlation:.2f}"
    return f"+ {step.label} random · ρ = {rho}"


def sanity_strip(check: bv.SanityCheck) -> None:
    """The maps from trained to fully random, each with its rank correlation under it."""
    for start in range(0, len(check.steps), 4):
        row = check.steps[start : start + 4]
        for cell, step in zip(st.columns(4), row, strict=False):
            cell.image(widgets.shown(attribution_image(step.attribution)), caption=step_caption(step))


def sanity_sentences(check: bv.SanityCheck) -> str:
    """What this check shows, from its own numbers (the weights it started from decide the wording)."""
    title = METHODS[check.method]
    head, last = check.steps[1], check.steps[-1]
    text = (
        f"With a random head, {title}'s map keeps a rank correlation of **{head.correlation:.2f}** with "
        f"the first map; with every weight random, **{last.correlation:.2f}**. "
    )
    if check.weights == "untrained":
        return text + (
            "These weights were random from the start, so nothing learned was destroyed: the check only "
            "shows how much the map depends on which random numbers the layers hold. Switch to "
            "*pretrained* to run the real check."
        )
    return text + (
        "A correlation near 1 means the map hardly changed although those layers forgot what they had "
        "learned: that part of the map cannot come from them, it comes from the picture itself (its edges "
        "and contrasts). Near 0, the map depends on the weights, as an explanation should."
    )


def sanity_section(choices: Choices, target: int) -> None:
    """ "Can we trust this map?": the method, the button (or the kept result), the strip and sentences."""
    method = widgets.choice("Method to check", dict(METHODS), key="attr.sanity_method", horizontal=True)
    key = (choices.backbone, choices.weights, choices.image.sha256, method, target)
    check = attribution_cache.cached_sanity(*key)
    if check is None:
        start = st.empty()  # the button, then the progress bar in its place
        if not start.button(
            "Run the sanity check", key="attr.sanity", icon=":material/play_arrow:", type="primary"
        ):
            return
        bar = start.progress(0.0, text="Computing the trained network's map…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Map {done} of {total}: randomizing from the head down…")

        try:
            check = attribution_cache.sanity_check(*key[:3], choices.image.data, method, target, progress)
        except bv.AttributionError as error:
            start.warning(f"{error.message}\n\n{error.hint}")
            return
        start.empty()
    sanity_strip(check)
    st.markdown(sanity_sentences(check))


@cache
def measured() -> dict | None:
    """The stored sanity checks of the bundled backbone on the sample pictures, or None when missing."""
    if not MEASURED.exists():
        return None
    return json.loads(MEASURED.read_text())


def measured_table(data: Mapping) -> pd.DataFrame:
    """Per method: the median correlation over the pictures after each step."""
    steps: Sequence[str] = data["steps"][1:]
    rows = []
    for method, title in METHODS.items():
        values = [data["pictures"][p][method] for p in data["pictures"]]
        row = {"method": title}
        row.update(
            {f"+ {label}": statistics.median(v[i + 1] for v in values) for i, label in enumerate(steps)}
        )
        rows.append(row)
    return pd.DataFrame(rows).sort_values(f"+ {steps[0]}", ascending=False, ignore_index=True)


def measured_sentence(data: Mapping, table: pd.DataFrame) -> str:
    """Which methods stayed alike and which changed on the bundled backbone, from the stored numbers."""
    head = table.columns[1]
    first, last = table.iloc[0], table.iloc[-1]
    title = bv.get_spec(data["backbone"]).title
    return (
        f"Measured on {title} ({data['weights']}) with the {len(data['pictures'])} sample pictures: "
        f"when the head went random, **{first['method']}** kept the most of its map (median ρ = "
        f"{first[head]:.2f}) and **{last['method']}** the least ({last[head]:.2f}). With every weight "
        f"random, the medians range from {table.iloc[:, -1].min():.2f} to {table.iloc[:, -1].max():.2f}."
    )
