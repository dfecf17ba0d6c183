"""Lesson 6, one backbone, many heads: the numbers every head reads."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from webui.lessons.base import Lesson, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets


def _q6(spec: bv.BackboneSpec) -> Question:
    return Question(
        f"You want {spec.title} to tell your own three kinds of leaves apart. What do you train?",
        (
            "The whole backbone again, from random weights",
            "Only the first layer",
            "Nothing: the ImageNet head already knows every leaf",
            "Only a new head that reads the frozen backbone's features",
        ),
        3,
        "The backbone's features are useful for many tasks; a small new head is enough (transfer learning).",
    )


def _r6(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    width = result.pooled.shape[0]
    st.image(widgets.shown(widgets.value_strip(result.pooled)), width="stretch")
    st.caption(f"The {width} numbers every head of {spec.title} reads for your picture (bright = large).")
    levels = bv.feature_pyramid(result)
    maps = ", ".join(f"{level.activation.shape[1]} × {level.activation.shape[2]}" for level in levels)
    st.markdown(
        f":material/visibility: The ImageNet head turns these {width} numbers into "
        f"{len(result.categories)} scores. A new head for 3 classes needs only {3 * width + 3} weights "
        f"({width} per class plus a bias), trained on a few photos. A detector reads {len(levels)} maps of "
        f"the same backbone instead ({maps}), to find small and large objects."
    )


def _heads(choices: Choices, result: bv.Activations) -> Explore:
    return Explore(
        "app_pages/heads.py", "Explore this: the head's sum and a new head of your own", view(choices)
    )


LESSON = Lesson(6, "One backbone, many heads", _q6, _r6, _heads)
