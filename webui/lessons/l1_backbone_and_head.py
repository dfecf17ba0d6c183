"""Lesson 1, backbone and head: where the backbone ends and the head begins, on this picture."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from webui.lessons.base import Lesson, maps_row, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices


def _q1(spec: bv.BackboneSpec) -> Question:
    return Question(
        f"Where does {spec.title}'s backbone end and its head begin?",
        (
            "After the first layer: everything after it is the head",
            f"After the last stage (stage {spec.stages[-1].index}): the head reads its maps and gives one "
            "score per class",
            "The head comes first: it looks at the picture and tells the backbone what to find",
            "There is no line: backbone and head are two names for the whole network",
        ),
        1,
        "The backbone turns pixels into maps, stage by stage; the head only reads the last stage.",
    )


def _r1(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    maps_row(choices, result)
    last = spec.stages[-1]
    c, h, w = result.activations[last.last.name].shape
    top = result.predictions[0]
    st.markdown(
        f":material/visibility: The backbone is everything up to stage {last.index}: it gives {c} maps of "
        f"{h} × {w}. The head reads {result.pooled.shape[0]} numbers made from them and gives "
        f"{len(result.categories)} scores; here its top class is **{top.label}** at {top.probability:.0%}."
    )


def _home(choices: Choices, result: bv.Activations) -> Explore:
    return Explore("app_pages/home.py", "Explore this: the stages on Home", view(choices))


LESSON = Lesson(1, "Backbone and head", _q1, _r1, _home)
