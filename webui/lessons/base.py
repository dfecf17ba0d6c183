"""What every lesson is made of: a :class:`Lesson` (a question, a reveal, an "explore this" link), and the
figures and links several lessons share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

import backbone_viz as bv
from webui.compute import figures
from webui.lessons.progress import Explore, Question
from webui.shell import projector
from webui.shell.state import Choices
from webui.views import widgets


@dataclass(frozen=True)
class Lesson:
    """One lesson. ``reveal`` and ``explore`` get an :class:`~backbone_viz.AnalysisResult` when
    ``gradcam`` is set, else the picture's :class:`~backbone_viz.Activations` alone (no Grad-CAM pass)."""

    number: int
    title: str
    question: Callable[[bv.BackboneSpec], Question]
    reveal: Callable[[Choices, bv.Activations], None]
    explore: Callable[[Choices, bv.Activations], Explore]
    gradcam: bool = False


def picture_columns(count: int) -> list:
    """``count`` columns for a row of pictures. In projector mode a spare column keeps 3 pictures to
    about 300 px, so that an answered lesson's row lies in the first screen of a 1280 × 720 projector."""
    if not projector.on() or count > 4:
        return st.columns(count)
    return st.columns([1.0] * count + [0.3 * count])[:count]


def maps_row(choices: Choices, result: bv.Activations) -> None:
    """The picture and one map per stage, the row Home shows (the same figures)."""
    stages = choices.spec.stages
    cells = st.columns(len(stages) + 1)
    crop = figures.figure(choices.image, result, ("crop",), lambda: result.input_image, photo=True)
    cells[0].image(crop, caption="your picture", width="stretch")
    for cell, stage in zip(cells[1:], stages, strict=True):
        map_ = figures.layer_map(choices.image, result, stage.last)
        cell.image(map_, caption=widgets.stage_label(result, stage), width="stretch")


def view(choices: Choices, **params: object) -> dict[str, str]:
    """The URL names of this picture and backbone plus ``params``."""
    names = {"backbone": choices.backbone, "weights": choices.weights}
    if choices.image.kind == "sample":
        names["picture"] = choices.image.name
    return names | {k: str(v) for k, v in params.items()}
