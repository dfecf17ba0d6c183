"""The "check yourself" quiz after the lessons: its answers come from the spec and this analysis."""

from __future__ import annotations

import backbone_viz as bv
from webui.lessons.progress import Question


def quiz(spec: bv.BackboneSpec, result: bv.Activations) -> tuple[Question, ...]:
    """The "check yourself" questions, with answers from the spec and this analysis."""
    last = spec.stages[-1]
    h = result.activations[last.last.name].shape[1]
    width = result.pooled.shape[0]
    strides = (last.stride // 2, last.stride, last.stride * 2, 1)
    return (
        Question(
            f"{spec.title}'s stage {last.index} turns the {spec.preprocessing.crop} px picture into maps "
            f"{h} px wide. How many picture pixels does one map pixel step over (its stride)?",
            tuple(f"{s} px" for s in strides),
            1,
            f"{spec.preprocessing.crop} / {h} = {last.stride}.",
        ),
        Question(
            "Which stage's Grad-CAM is usually shown, and why?",
            (
                "The first: it is the sharpest",
                "The last: it is coarse, but it is what the head reads",
                "Any stage: they all agree",
                "None: Grad-CAM is only for detectors",
            ),
            1,
            "The head reads the last stage, so its evidence is about the class.",
        ),
        Question(
            "With untrained weights, the first stage's maps…",
            (
                "are pure noise",
                "are black",
                "still show the picture's edges and colours",
                "name the object",
            ),
            2,
            "Random filters still pass the picture through; meaning is what training adds.",
        ),
        Question(
            f"A new head for 5 classes reads {spec.title}'s {width} numbers. How many weights does it have, "
            "biases included?",
            (f"{width + 5}", f"{5 * width + 5}", f"{1000 * width}", "5"),
            1,
            f"{width} weights per class plus one bias: 5 × {width} + 5 = {5 * width + 5}.",
        ),
    )
