"""Lesson 6, one backbone, many heads: the numbers the classifier head reads, and the maps a detector reads."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from webui.lessons.base import Lesson, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import head_reads, widgets


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


def _listed(items: list[str]) -> str:
    """``["3", "4", "5"]`` -> ``"3, 4 and 5"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _r6(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    width = result.pooled.shape[0]
    largest = head_reads.largest_table(result.pooled)
    if spec.head_splits:
        st.markdown(
            f"**The {len(largest)} largest of the {width} numbers {spec.title}'s classifier head reads for "
            "your picture**: channel # and its average over the picture"
        )
    else:
        st.markdown(
            f"**The {len(largest)} largest of the {width} numbers the last layer of {spec.title}'s "
            "classifier head reads for your picture**: number # and its value"
        )
    head_reads.show_bars(largest)
    if spec.head_splits:
        reads = (
            f"The classifier head reads {width} numbers: each channel of the last stage's map, averaged "
            f"over the whole picture. The ImageNet head turns them into {len(result.categories)} scores."
        )
    else:
        reads = (
            f"{spec.title}'s classifier head reads the last stage's maps through three fully connected "
            f"layers; its last layer turns these {width} numbers into {len(result.categories)} scores."
        )
    levels = bv.feature_pyramid(result)
    stages = _listed([str(s) for s in sorted({level.layer.stage for level in levels})])
    maps = ", ".join(widgets.shape_text(level.shape) for level in levels)
    st.markdown(
        f":material/visibility: {reads} A new head for 3 classes that reads the same {width} numbers needs "
        f"only {3 * width + 3} weights ({width} per class plus a bias), trained on a few photos. A detector "
        "or a segmenter must know where things are, so its head reads maps, not averages: a detector such "
        f"as RetinaNet takes {len(levels)} maps of stages {stages} ({maps}) to find small and large "
        "objects; a segmenter such as DeepLab takes the last stage's map, kept finer by dilation."
    )


def _heads(choices: Choices, result: bv.Activations) -> Explore:
    return Explore(
        "app_pages/heads.py", "Explore this: the head's sum and a new head of your own", view(choices)
    )


LESSON = Lesson(6, "One backbone, many heads", _q6, _r6, _heads)
