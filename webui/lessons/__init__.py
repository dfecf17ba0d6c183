"""The lessons: seven short lessons on the learner's picture and backbone, then a "check yourself" quiz.

Each lesson is data: a question to answer first (multiple choice, built from the spec so that its answer is
true for every backbone), a reveal that draws this picture's real figure with one sentence made from its
numbers, and an "explore this" link that opens an explorer page at that view (``st.page_link`` with the
URL names of :mod:`webui.shell.links`). The numbers come from :mod:`backbone_viz.explain.facts`; the learner's
progress and the widgets that ask are in :mod:`webui.lessons.progress`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.core.block_kinds import get_kind
from backbone_viz.explain.facts import SPOT_LEVEL, brightness_match, edge_channel, edges, spots
from webui import activations
from webui.compute import block_cache, figures
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices
from webui.views import widgets
from webui.views.block_diagram import draw_block
from webui.views.block_view import default_block

#: A correlation with the picture's brightness this high counts as "the stage still passes the picture".
PASSES = 0.5


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


# ------------------------------------------------------------------------------------- the lessons


def _maps_row(choices: Choices, result: bv.Activations) -> None:
    """The picture and one map per stage, the row Home shows (the same figures)."""
    stages = choices.spec.stages
    cells = st.columns(len(stages) + 1)
    crop = figures.figure(choices.image, result, ("crop",), lambda: result.input_image, photo=True)
    cells[0].image(crop, caption="your picture", width="stretch")
    for cell, stage in zip(cells[1:], stages, strict=True):
        map_ = figures.layer_map(choices.image, result, stage.last)
        cell.image(map_, caption=widgets.stage_label(result, stage), width="stretch")


def _view(choices: Choices, **params: object) -> dict[str, str]:
    """The URL names of this picture and backbone plus ``params``."""
    view = {"backbone": choices.backbone, "weights": choices.weights}
    if choices.image.kind == "sample":
        view["picture"] = choices.image.name
    return view | {k: str(v) for k, v in params.items()}


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
    _maps_row(choices, result)
    last = spec.stages[-1]
    c, h, w = result.activations[last.last.name].shape
    top = result.predictions[0]
    st.markdown(
        f":material/visibility: The backbone is everything up to stage {last.index}: it gives {c} maps of "
        f"{h} × {w}. The head reads {result.pooled.shape[0]} numbers made from them and gives "
        f"{len(result.categories)} scores; here its top class is **{top.label}** at {top.probability:.0%}."
    )


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
    cells = st.columns(3)
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
        _view(choices, layer=layer.name, channel=channel),
    )


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
    _maps_row(choices, result)
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
        _view(choices, layer=layer.name),
    )


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
    cells = st.columns(3)
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
        _view(choices, target=result.target.index),
    )


def _q5(spec: bv.BackboneSpec) -> Question:
    return Question(
        f"Give {spec.title} random (untrained) weights. What still works?",
        (
            "Nothing: every map is noise",
            "The top-5 still names the picture, only less sure",
            "The early stages still show the picture's edges and colours, but the top-5 is a guess",
            "Only the last stage still works",
        ),
        2,
        "Random filters still pass the picture through; recognising objects is what training adds.",
    )


def _r5(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    other = "untrained" if choices.weights == "pretrained" else "pretrained"
    pair = {choices.weights: result}
    pair[other] = activations(choices.backbone, other, choices.image, key="lesson5")
    if pair[other] is None:
        st.caption(f"Without {spec.title}'s pretrained weights, only the untrained side can be shown.")
        return
    first, last = spec.stages[0].last, spec.stages[-1].last
    header = st.columns([1, 2, 2, 3])
    header[1].markdown(f"**stage {spec.stages[0].index}** · {first.label}")
    header[2].markdown(f"**stage {spec.stages[-1].index}** · {last.label}")
    header[3].markdown("**the head's top-3**")
    match = {}
    for weights in ("pretrained", "untrained"):
        res = pair[weights]
        match[weights] = brightness_match(res, first)[1]
        row = st.columns([1, 2, 2, 3], vertical_alignment="center")
        row[0].markdown(f"**{weights}**")
        for cell, layer in zip(row[1:3], (first, last), strict=True):
            cell.image(figures.layer_map(choices.image, res, layer), width="stretch")
        row[3].markdown("  \n".join(f"{p.probability:.0%} {p.label}" for p in res.predictions[:3]))
    trained, random = pair["pretrained"].predictions[0], pair["untrained"].predictions[0]
    passes = (
        "random filters still pass edges and colours"
        if match["untrained"] >= PASSES
        else "here even the untrained first stage keeps little of the picture"
    )
    st.markdown(
        f":material/visibility: At stage {spec.stages[0].index}, the channel of {first.label} that follows "
        f"the picture's brightness best does so with a correlation of {match['pretrained']:.2f} pretrained "
        f"and {match['untrained']:.2f} untrained: {passes}. The heads "
        f"disagree: pretrained says **{trained.label}** ({trained.probability:.0%}), untrained says "
        f"**{random.label}** ({random.probability:.0%}), a guess however sure it looks."
    )


def _e5(choices: Choices, result: bv.Activations) -> Explore:
    layer = choices.spec.stages[0].last
    return Explore(
        "app_pages/feature_buildup.py",
        f"Explore this: {layer.label} with untrained weights in Feature build-up",
        _view(choices, weights="untrained", layer=layer.name),
    )


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
        f":material/visibility: {spec.title} is built from {len(spec.blocks)} blocks; this one, "
        f"{block.label}, is {kind.title}. {shortcut} The boxes show your picture inside it."
    )


def _e7(choices: Choices, result: bv.Activations) -> Explore:
    block = default_block(choices.spec)
    return Explore(
        "app_pages/inside_block.py",
        "Explore this: the block, knock-outs and the four families in Inside a block",
        _view(choices, layer=block),
    )


def _home(choices: Choices, result: bv.Activations) -> Explore:
    return Explore("app_pages/home.py", "Explore this: the stages on Home", _view(choices))


def _heads(choices: Choices, result: bv.Activations) -> Explore:
    return Explore(
        "app_pages/heads.py", "Explore this: the head's sum and a new head of your own", _view(choices)
    )


LESSONS: tuple[Lesson, ...] = (
    Lesson(1, "Backbone and head", _q1, _r1, _home),
    Lesson(2, "What the first layer sees", _q2, _r2, _e2),
    Lesson(3, "Low to high", _q3, _r3, _e3),
    Lesson(4, "Where the head looks", _q4, _r4, _e4, gradcam=True),
    Lesson(5, "The untrained sanity check", _q5, _r5, _e5),
    Lesson(6, "One backbone, many heads", _q6, _r6, _heads),
    Lesson(7, "How blocks are built", _q7, _r7, _e7),
)


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
