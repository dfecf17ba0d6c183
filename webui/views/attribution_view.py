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
from backbone_viz.explain.sanity import HEAD_LIMIT, RANDOM_LIMIT, Verdict, check_verdict, verdict
from backbone_viz.files.shipped import assets_dir
from webui.compute import attribution_cache
from webui.shell import links, projector
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


def per_row() -> int:
    """Maps in a row: all seven cells in one row on a projector (~160 px each at 1280 px, so that the
    whole figure is on the first screen), four beside the sidebar."""
    return 7 if projector.on() else 4


def method_cell(choices: Choices, method: str, target: int) -> bv.Attribution | None:
    """One method's map under its title; a refused method says why instead. What the map means is in
    :func:`legend`, under the row, so that narrow columns stay the height of a picture."""
    st.markdown(f"**{METHODS[method]}**")
    # A slow method runs the model many times (128 steps, 16 noisy copies): on a backbone other than the
    # bundled one it waits for a click (ResNet-50 on one core: ~40 s for Integrated Gradients).
    if get_method(method).slow and not choices.spec.bundled:
        asked = f"attr.asked.{method}"
        if st.session_state.get(asked) != (choices.backbone, choices.weights):
            # Short words: the button sits in a narrow column (a seventh of a projector's row); what the
            # method does is in the legend, the tooltip names the wait.
            st.caption(f"Slow on {choices.spec.title}")
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
    return attribution


def gradcam_cell(result: bv.AnalysisResult) -> None:
    """The last stage's Grad-CAM over the crop, for comparison."""
    layer = result.layers[-1]
    st.markdown("**Grad-CAM** (last stage)")
    cam = result.gradcam[layer.name]
    st.image(widgets.shown(render.overlay(result.input_image, cam, alpha=0.55), photo=True), width="stretch")


def gradcam_sentence(result: bv.AnalysisResult) -> str:
    """What the Grad-CAM cell shows, with the last stage's map size."""
    h, w = result.gradcam[result.layers[-1].name].shape
    return (
        f"Where the last stage's {h} × {w} map holds evidence for the class, enlarged to the picture: "
        "coarse, but it follows what the head reads."
    )


def delta_sentence(attribution: bv.Attribution) -> str:
    """Integrated Gradients' own check: its values add up to the score's change from black."""
    return (
        f"{attribution.options['steps']} steps; the values add up to "
        f"{float(attribution.map.sum()):+.2f}, the score's change from black, off by "
        f"{attribution.relative_delta:.1%}."
    )


def legend(result: bv.AnalysisResult, made: Mapping[str, bv.Attribution | None]) -> None:
    """One line per map of the figure, in its order: what it shows (and Integrated Gradients' sum)."""
    lines = [f"- **Grad-CAM** (last stage): {gradcam_sentence(result)}"]
    for method, title in METHODS.items():
        line = f"- **{title}**: {get_method(method).sentence}"
        attribution = made.get(method)
        if attribution is not None and attribution.delta is not None:
            line += f" {delta_sentence(attribution)}"
        lines.append(line)
    st.markdown("\n".join(lines))


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


def rule_sentence() -> str:
    """The sanity check's rule, with the engine's limits."""
    return (
        f"The rule: a map **fails** when it keeps ρ ≥ {HEAD_LIMIT:.2f} once the head is random (the head "
        f"is what picks the class, so the map ignores it), or ρ ≥ {RANDOM_LIMIT:.2f} once every weight is "
        "random (nothing learned is left, so what still matches comes from the picture). Otherwise it "
        "**passes**: its map changes when what the network learned is destroyed."
    )


def verdict_line(title: str, result: Verdict, *, median: bool = False) -> str:
    """``**Saliency (gradient): passes** — ...`` in plain words, with the numbers that decided it."""
    rho = "median ρ" if median else "ρ"
    if result.passes:
        return (
            f"**{title}: passes** — its map changes when the trained weights are scrambled ({rho} = "
            f"{_rho(result.head)} with a random head, {_rho(result.random)} with every weight random)."
        )
    if result.reason == "head":
        return (
            f"**{title}: fails** — its map barely changes when the head, which picks the class, is "
            f"scrambled ({rho} = {_rho(result.head)}): it does not show what picks the class, only what the "
            "earlier layers pass on (the picture's edges and contrasts)."
        )
    return (
        f"**{title}: fails** — with every weight random its map still matches the trained one ({rho} = "
        f"{_rho(result.random)}): much of it comes from the picture itself, not from what the network "
        "learned."
    )


def _rho(value: float) -> str:
    return "undefined" if np.isnan(value) else f"{value:.2f}"


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
            "shows how much the map depends on which random numbers the layers hold, and gives no "
            "verdict. Switch to *pretrained* to run the real check."
        )
    return (
        text + "A correlation near 1 means the map hardly changed although those layers forgot what they had "
        "learned: that part of the map cannot come from them, it comes from the picture itself (its edges "
        "and contrasts). Near 0, the map depends on the weights, as an explanation should.\n\n"
        + "On your picture: "
        + verdict_line(title, check_verdict(check))
        + "\n\n"
        + rule_sentence()
    )


def sanity_section(choices: Choices, target: int) -> None:
    """ "Can we trust this map?": the method, the button (or the kept result), the strip and sentences."""
    st.caption(
        "This test asks whether a map depends on what the network learned. Another asks whether it points at "
        "the pixels the network uses: take them away first and watch the probability fall. A map can pass "
        "one and fail the other."
    )
    st.page_link(
        "app_pages/faithfulness.py",
        label="The other test: which map is right?",
        icon=":material/straighten:",
        query_params=links.view_params("faithfulness"),
    )
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


def measured_verdicts(data: Mapping) -> dict[str, Verdict]:
    """Per method: :func:`~backbone_viz.explain.sanity.verdict` of its median correlations over the
    stored pictures, with a random head and with every weight random."""
    verdicts = {}
    for method in METHODS:
        values = [data["pictures"][p][method] for p in data["pictures"]]
        head = statistics.median(v[1] for v in values)
        random = statistics.median(v[-1] for v in values)
        verdicts[method] = verdict(head, random)
    return verdicts


def measured_table(data: Mapping) -> pd.DataFrame:
    """Per method, in :data:`METHODS` order: its verdict, then the median correlation over the pictures
    after each step."""
    steps: Sequence[str] = data["steps"][1:]
    verdicts = measured_verdicts(data)
    rows = []
    for method, title in METHODS.items():
        values = [data["pictures"][p][method] for p in data["pictures"]]
        row: dict[str, str | float] = {
            "method": title,
            "sanity check": "passes" if verdicts[method].passes else "fails",
        }
        row.update(
            {f"+ {label}": statistics.median(v[i + 1] for v in values) for i, label in enumerate(steps)}
        )
        rows.append(row)
    return pd.DataFrame(rows)


def measured_summary(data: Mapping) -> str:
    """Where the stored numbers come from, then one verdict per method, in plain words."""
    title = bv.get_spec(data["backbone"]).title
    lines = [
        f"Measured on {title} ({data['weights']}) with the {len(data['pictures'])} sample pictures "
        "(medians over the pictures):"
    ]
    for method, result in measured_verdicts(data).items():
        lines.append(f"- {verdict_line(METHODS[method], result, median=True)}")
    return "\n".join(lines)
