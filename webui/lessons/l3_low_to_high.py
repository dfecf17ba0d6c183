"""Lesson 3, low to high: how far one map pixel sees, stage by stage."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from webui.lessons.base import Lesson, maps_row, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets


def _q3(spec: bv.BackboneSpec) -> Question:
    first, last = spec.stages[0], spec.stages[-1]
    return Question(
        f"From stage {first.index} to stage {last.index} of {spec.title}, what happens to the maps?",
        (
            "They grow larger and fewer",
            "They stay the same; only the colours change",
            "They get smaller and more numerous, and each map pixel sees a larger part of the picture",
            "They turn into class names",
        ),
        2,
        "Each stage steps over more pixels (its stride) and stacks more filters, so it sees larger things.",
    )


def _r3(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    maps_row(choices, result)
    st.dataframe(
        [
            {
                "stage": stage.index,
                "level": f"{stage.level} · {widgets.LEVEL_WORDS[stage.level]}",
                "map size": " × ".join(str(n) for n in result.activations[stage.last.name].shape[1:]),
                "channels": stage.channels,
                "stride (px)": stage.stride,
                "receptive field (px)": stage.last.receptive_field,
            }
            for stage in spec.stages
        ],
        hide_index=True,
    )
    st.markdown(f":material/visibility: {widgets.stages_sentence(spec).capitalize()}.")
    first, last = spec.stages[0].last, spec.stages[-1].last
    st.markdown(
        f":material/crop_free: At stage 1 a map pixel sees only {first.receptive_field} × "
        f"{first.receptive_field} px. {widgets.receptive_field_note(last, spec.preprocessing.crop)}"
    )


def _e3(choices: Choices, result: bv.Activations) -> Explore:
    layer = choices.spec.stages[-1].last
    return Explore(
        "app_pages/feature_buildup.py",
        f"Explore this: the last layer, {layer.label}, and its receptive field in Feature build-up",
        view(choices, layer=layer.name),
    )


LESSON = Lesson(3, "Low to high", _q3, _r3, _e3)
