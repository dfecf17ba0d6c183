"""Lesson 2, what the first layer sees: the channel whose map follows the picture's edges."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.explain.facts import edge_channel, edges
from webui.lessons.base import Lesson, picture_columns, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets


def _q2(spec: bv.BackboneSpec) -> Question:
    return Question(
        f"What does one channel of {spec.title}'s first layer light up for?",
        (
            "Simple patterns at each place: an edge, a colour, a bright or dark patch",
            "Whole objects, such as a cat's face",
            "The name of the class",
            "The same value everywhere: the picture's average brightness",
        ),
        0,
        f"A first-layer map pixel sees only {spec.layers[0].receptive_field} × "
        f"{spec.layers[0].receptive_field} px of the picture: enough for an edge or a colour, not an object.",
    )


def _r2(choices: Choices, result: bv.Activations) -> None:
    layer = choices.spec.layers[0]
    channel, r, median = edge_channel(result, layer)
    maps = result.activations[layer.name]
    crop = result.input_image
    cells = picture_columns(3)
    cells[0].image(widgets.shown(crop, photo=True), caption="your picture", width="stretch")
    edge_map = edges(crop, (maps.shape[2], maps.shape[1]))
    cells[1].image(
        widgets.shown(render.map_image(edge_map, size=crop.width, cmap="gray")),
        caption="its edges (where brightness changes)",
        width="stretch",
    )
    cells[2].image(
        widgets.shown(render.map_image(maps[channel], size=crop.width)),
        caption=f"channel #{channel} of {layer.label}",
        width="stretch",
    )
    st.markdown(
        f":material/visibility: How it was picked: of the {maps.shape[0]} channels of {layer.label}, channel "
        f"**#{channel}** has the map that matches the picture's edge map best (correlation {r:.2f}; the "
        f"median channel: {median:.2f}). Each of its pixels sees {layer.receptive_field} × "
        f"{layer.receptive_field} px."
    )


def _e2(choices: Choices, result: bv.Activations) -> Explore:
    layer = choices.spec.layers[0]
    channel = edge_channel(result, layer)[0]
    return Explore(
        "app_pages/feature_buildup.py",
        f"Explore this: channel #{channel} of {layer.label} in Feature build-up",
        view(choices, layer=layer.name, channel=channel),
    )


LESSON = Lesson(2, "What the first layer sees", _q2, _r2, _e2)
