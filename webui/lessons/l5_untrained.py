"""Lesson 5, the untrained sanity check: what random weights still pass on, and what they do not."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz.explain.facts import brightness_match
from webui import activations
from webui.compute import figures
from webui.lessons.base import Lesson, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices

#: A correlation with the picture's brightness this high counts as "the stage still passes the picture".
PASSES = 0.5


def _q5(spec: bv.BackboneSpec) -> Question:
    return Question(
        f"Give {spec.title} random (untrained) weights. What still works?",
        (
            "Nothing: every map is noise",
            "The top-5 still names the picture, only less sure",
            "The early stages still show the picture's edges and colours, but the top-5 is a guess",
            "Only the last stage still works",
        ),
        2,
        "Random filters still pass the picture through; recognising objects is what training adds.",
    )


def _r5(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    other = "untrained" if choices.weights == "pretrained" else "pretrained"
    pair = {choices.weights: result}
    pair[other] = activations(choices.backbone, other, choices.image, key="lesson5")
    if pair[other] is None:
        st.caption(f"Without {spec.title}'s pretrained weights, only the untrained side can be shown.")
        return
    first, last = spec.stages[0].last, spec.stages[-1].last
    header = st.columns([1, 2, 2, 3])
    header[1].markdown(f"**stage {spec.stages[0].index}** · {first.label}")
    header[2].markdown(f"**stage {spec.stages[-1].index}** · {last.label}")
    header[3].markdown("**the head's top-3**")
    match = {}
    for weights in ("pretrained", "untrained"):
        res = pair[weights]
        match[weights] = brightness_match(res, first)[1]
        row = st.columns([1, 2, 2, 3], vertical_alignment="center")
        row[0].markdown(f"**{weights}**")
        for cell, layer in zip(row[1:3], (first, last), strict=True):
            cell.image(figures.layer_map(choices.image, res, layer), width="stretch")
        row[3].markdown("  \n".join(f"{p.probability:.0%} {p.label}" for p in res.predictions[:3]))
    trained, random = pair["pretrained"].predictions[0], pair["untrained"].predictions[0]
    passes = (
        "random filters still pass edges and colours"
        if match["untrained"] >= PASSES
        else "here even the untrained first stage keeps little of the picture"
    )
    st.markdown(
        f":material/visibility: At stage {spec.stages[0].index}, the channel of {first.label} that follows "
        f"the picture's brightness best does so with a correlation of {match['pretrained']:.2f} pretrained "
        f"and {match['untrained']:.2f} untrained: {passes}. The heads "
        f"disagree: pretrained says **{trained.label}** ({trained.probability:.0%}), untrained says "
        f"**{random.label}** ({random.probability:.0%}), a guess however sure it looks."
    )


def _e5(choices: Choices, result: bv.Activations) -> Explore:
    layer = choices.spec.stages[0].last
    return Explore(
        "app_pages/feature_buildup.py",
        f"Explore this: {layer.label} with untrained weights in Feature build-up",
        view(choices, weights="untrained", layer=layer.name),
    )


LESSON = Lesson(5, "The untrained sanity check", _q5, _r5, _e5)
