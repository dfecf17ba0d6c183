"""Lesson 9, which map is right: a map is tested by taking away the pixels it ranks first.

The question asks how to test a map without knowing the answer; its right answer is the deletion test
itself, true for every backbone. The reveal runs it on the learner's picture: the pixels Grad-CAM ranks
first (at the last stage) go black a sixteenth of the picture at a time, and so do those of a random map
that explains nothing; the sentence says, from the numbers, whether Grad-CAM beat chance here. With
untrained weights it often does not, which is the lesson too.

The curves are those of :func:`backbone_viz.rank_maps` (the random map and the Sobel edges as baselines), at
a coarser step than the "Which map is right?" page (16 steps, not 64) so that the reveal takes seconds
on the large backbones too.
"""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
import webui
from backbone_viz.explain.faithfulness import RANDOM
from webui.lessons.base import Lesson, picture_columns, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets

#: Steps of each curve: the crop's pixels are taken away a sixteenth at a time.
STEPS = 16
#: The step whose pictures are shown: a quarter of the pixels gone.
SHOWN = 4


def _q9(spec: bv.BackboneSpec) -> Question:
    return Question(
        f"Grad-CAM marks the pixels that made {spec.title} choose its class. How can you test whether the "
        "map is right, without knowing the right answer?",
        (
            "Check that the bright places look like the object",
            "Run Grad-CAM a second time: a right map comes out the same",
            "Take away the pixels it marks first: if the class's probability falls faster than when "
            "pixels go in a random order, the map found what the network uses",
            "Compare it with the first stage's map",
        ),
        2,
        "A map is faithful when the pixels it ranks first are the ones the network needs: taking them away "
        "first makes the probability fall fastest (the deletion test, Petsiuk et al. 2018). Looking right is "
        "not the test: the network may use something else.",
    )


def _r9(choices: Choices, result: bv.Activations) -> None:
    assert isinstance(result, bv.AnalysisResult)  # the lesson asks for Grad-CAM
    layer = choices.spec.stages[-1].last
    step = -(-result.input_image.width * result.input_image.height // STEPS)
    ranking = webui.ranking(
        choices, result.target.index, {"gradcam": result.gradcam[layer.name]}, None, step=step
    )
    ours, chance = ranking.curves["gradcam"].deletion, ranking.curves[RANDOM].deletion
    label = result.target.label
    st.markdown(
        f"**A quarter of the pixels gone, in two orders**: *{label}* had {ours.scores[0]:.1%} on the whole "
        "picture"
    )
    cells = picture_columns(3)
    cells[0].image(widgets.shown(ours.picture(SHOWN), photo=True), width="stretch")
    cells[0].caption(f"Grad-CAM's order: *{label}* {ours.scores[SHOWN]:.1%}")
    cells[1].image(widgets.shown(chance.picture(SHOWN), photo=True), width="stretch")
    cells[1].caption(f"A random order: *{label}* {chance.scores[SHOWN]:.1%}")
    cells[2].line_chart(
        {"Grad-CAM's order": ours.scores, "a random order": chance.scores},
        height=220,
        x_label="sixteenths gone",
    )
    st.markdown(f":material/visibility: {verdict(ours.auc, chance.auc, choices.weights)}")
    st.caption(
        "A map can pass this test and fail the sanity check of Pixel attributions (a map that does not change "
        "when the network's weights are randomised), or the other way round: the two ask different questions."
    )


def verdict(ours: float, chance: float, weights: str) -> str:
    """One sentence from the two deletion areas (lower: the probability fell faster)."""
    areas = f"(the area under each curve: Grad-CAM {ours:.3f}, random {chance:.3f}; lower is faster)"
    if ours < chance * 0.9:
        return f"Taking away Grad-CAM's pixels first made the probability fall faster than chance {areas}: on this picture the map points at what the network uses."
    if ours <= chance:
        return f"Grad-CAM's order did only a little better than chance {areas}: on this picture the map is barely more than a guess."
    text = (
        f"Grad-CAM's order did no better than chance {areas}. Either the map misses what the network uses, "
        "or the test itself misleads: black holes scattered at random can break a picture faster than one "
        "region going black, above all when the object fills the picture. The page *Which map is right?* "
        "adds ROAD, which fills the holes from their neighbours."
    )
    if weights == "untrained":
        text += " With untrained weights there is little to point at: no channel has learned the class."
    return text


def _e9(choices: Choices, result: bv.Activations) -> Explore:
    return Explore(
        "app_pages/faithfulness.py", "Explore this: measure every map, with occlusion and ROAD", view(choices)
    )


LESSON = Lesson(9, "Which map is right?", _q9, _r9, _e9, gradcam=True)
