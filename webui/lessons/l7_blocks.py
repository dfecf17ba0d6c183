"""Lesson 7, how blocks are built: one block of this backbone, drawn with the picture inside it."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz.core.block_kinds import get_kind
from webui.compute import block_cache
from webui.lessons.base import Lesson, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets
from webui.views.block_diagram import draw_block
from webui.views.block_view import count_sentence, default_block


def _q7(spec: bv.BackboneSpec) -> Question:
    return Question(
        "What does a ResNet block have that a plain VGG block does not?",
        (
            "A shortcut: the block's output is its input plus a correction, F(x) + x",
            "A head of its own",
            "More colours",
            "Nothing: the two blocks are the same",
        ),
        0,
        "The shortcut lets a block learn only a correction, so very deep networks still train.",
    )


def _r7(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    block = next(b for b in spec.blocks if b.name == default_block(spec))
    try:
        inside = block_cache.cached_inside_block(
            choices.backbone, choices.weights, choices.image.sha256, choices.image.data, block.name
        )
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    st.image(widgets.shown(draw_block(block, inside)), width="stretch")
    kind = get_kind(block.kind)
    if block.has_shortcut:
        shortcut = "Its green arrow is the shortcut: the output is the input plus what the block adds."
    else:
        shortcut = kind.no_shortcut
    st.markdown(
        f":material/visibility: {count_sentence(spec)}; this one, {block.label}, is {kind.title}. {shortcut} "
        "The boxes show your picture inside it."
    )


def _e7(choices: Choices, result: bv.Activations) -> Explore:
    block = default_block(choices.spec)
    return Explore(
        "app_pages/inside_block.py",
        "Explore this: the block, knock-outs and the four families in Inside a block",
        view(choices, layer=block),
    )


LESSON = Lesson(7, "How blocks are built", _q7, _r7, _e7)
