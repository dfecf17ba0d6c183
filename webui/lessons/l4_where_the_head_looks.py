"""Lesson 4, where the head looks: Grad-CAM at the first and the last stage."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.explain.facts import SPOT_LEVEL, spots
from webui.lessons.base import Lesson, picture_columns, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets


def _q4(spec: bv.BackboneSpec) -> Question:
    return Question(
        "Grad-CAM can be drawn at every stage. Which stage's map gathers the evidence in a few places, "
        "instead of scattering it over edges and specks?",
        (
            "The first stage: its map is the sharpest",
            "Every stage equally",
            "No stage: Grad-CAM only shows edges",
            f"The last stage (stage {spec.stages[-1].index}): the one the head reads",
        ),
        3,
        "An early map pixel sees only a speck of the picture, so its evidence lies on many small edges.",
    )


def _r4(choices: Choices, result: bv.AnalysisResult) -> None:
    spec, crop = choices.spec, result.input_image
    first, last = spec.stages[0], spec.stages[-1]
    cells = picture_columns(3)
    cells[0].image(widgets.shown(crop, photo=True), caption="your picture", width="stretch")
    count = {}
    for cell, stage in zip(cells[1:], (first, last), strict=True):
        cam = result.gradcam[stage.last.name]
        count[stage.index] = spots(cam)
        cell.image(
            widgets.shown(render.overlay(crop, cam, alpha=0.55, cmap=render.GRADCAM_CMAP), photo=True),
            caption=f"Grad-CAM at stage {stage.index} ({cam.shape[0]} × {cam.shape[1]})",
            width="stretch",
        )
    a, b = count[first.index], count[last.index]
    fewer = "fewer" if b < a else "no fewer" if b == a else "more"
    st.markdown(
        f":material/visibility: For **{result.target.label}**, the bright places (over "
        f"{SPOT_LEVEL:.0%} of the map's maximum) form {_count(a, 'separate spot')} at stage {first.index} "
        f"and {_count(b, 'spot')} at stage {last.index}: {fewer} at the last stage. A stage-{first.index} "
        f"map pixel sees only {first.last.receptive_field} px, a stage-{last.index} one "
        f"{last.last.receptive_field} px."
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _e4(choices: Choices, result: bv.AnalysisResult) -> Explore:
    return Explore(
        "app_pages/gradcam.py",
        f"Explore this: Grad-CAM for {result.target.label} at every stage",
        view(choices, target=result.target.index),
    )


LESSON = Lesson(4, "Where the head looks", _q4, _r4, _e4, gradcam=True)
