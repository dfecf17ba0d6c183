"""The "Inside a block" page's words and sections: what to notice in a block, the knock-out experiments, the
block ablation's chart and its verdict, and the backbone families' cards.

The sentences are made from this picture's numbers by plain functions (no Streamlit), so that what the
page says stays true for every backbone and picture; the sections draw them. The model runs only in
:mod:`webui.compute.block_cache` and :mod:`webui.compute.caches`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import altair as alt
import pandas as pd
import streamlit as st

import backbone_viz as bv
from backbone_viz import render, zoo
from backbone_viz.core.block_kinds import get_kind
from backbone_viz.core.knockout import Knockout, refusal
from webui.compute import block_cache
from webui.shell.state import Choices, persistent, set_backbone
from webui.views import widgets
from webui.views.block_diagram import draw_block, readable_width, style_for

#: Session key of the knock-out experiment shown (see :func:`knockout_section`).
EXPERIMENT = "inside.experiment"
#: How many of the block output's most active channels the learner may switch off.
CHANNEL_CHOICES = 16

#: Width, in pixels, of a family card's diagram, unless its text needs more (a narrower card shrinks it).
CARD_WIDTH = 360

KEPT, CHANGED = "kept the top class", "changed the top class"


# ------------------------------------------------------------------------------------ the block itself


def default_block(spec: bv.BackboneSpec) -> str:
    """The block the page opens first: the first with a shortcut or the first inception module, so that
    a learner sees at once what makes the backbone different (a VGG: its third block)."""
    for block in spec.blocks:
        if block.has_shortcut or get_kind(block.kind).telling:
            return block.name
    return spec.blocks[min(2, len(spec.blocks) - 1)].name


def block_option(block: bv.BlockSpec) -> str:
    """A block as the slider names it: ``"layer2.0 · stage 3"``."""
    return f"{block.label} · stage {block.stage}"


def _convolutions(blocks: Sequence[bv.BlockSpec]) -> str:
    """``"one convolution"``, ``"3 convolutions"`` (plain blocks), else ``"2 blocks"``."""
    word = "convolution" if all(b.kind == "plain" for b in blocks) else "block"
    return f"one {word}" if len(blocks) == 1 else f"{len(blocks)} {word}s"


def place_text(spec: bv.BackboneSpec, block: bv.BlockSpec) -> str:
    """Where the block sits, counting only the blocks the backbone repeats: ``"block 4 of 16"``,
    ``"the stem, before the 16 blocks"``, ``"stem convolution 2 of 3, before the 9 blocks"``,
    ``"the last convolution, after the 16 blocks"``."""
    where = spec.block_place(block.name)
    if where.place == "repeated":
        return f"block {where.index} of {where.repeated}"
    if where.place == "stem":
        head = "the stem" if where.count == 1 else f"stem convolution {where.index} of {where.count}"
        return f"{head}, before the {where.repeated} blocks"
    head = "the last convolution" if where.count == 1 else f"convolution {where.index} of {where.count}"
    return f"{head}, after the {where.repeated} blocks"


def count_sentence(spec: bv.BackboneSpec) -> str:
    """How many blocks the backbone is built from, and what comes before and after them:
    ``"EfficientNet-Lite0 is built from 16 blocks, with one convolution before them (the stem) and one
    convolution after them"``."""
    repeated = spec.repeated_blocks
    start = spec.blocks.index(repeated[0]) if repeated else 0
    before, after = spec.blocks[:start], spec.blocks[start + len(repeated) :]
    extras = []
    if before:
        extras.append(f"{_convolutions(before)} before them (the stem)")
    if after:
        extras.append(f"{_convolutions(after)} after them")
    if repeated and all(b.kind == "plain" for b in repeated):
        extras.insert(0, "each one convolution and its activation")
        return f"{spec.title} is built from {len(repeated)} blocks, " + ", ".join(extras)
    around = f", with {' and '.join(extras)}" if extras else ""
    return f"{spec.title} is built from {len(repeated)} blocks{around}"


def pool_note(spec: bv.BackboneSpec) -> str | None:
    """How many of the repeated blocks end in a max pool, where some do but not all (VGG): ``"5 of them end
    in a max pool"``; None otherwise. Read from the blocks' parts, so a drawing of one block is not taken
    for all of them."""
    repeated = spec.repeated_blocks
    pooled = sum(block.part("pool") is not None for block in repeated)
    return f"{pooled} of them end in a max pool" if 0 < pooled < len(repeated) else None


def _share(value: float) -> str:
    return f"{value:.0%}"


def notice(inside: bv.InsideBlock, spec: bv.BackboneSpec) -> list[str]:
    """What to notice in this block on this picture, with the picture's numbers: the shortcut's share of
    the sum where there is one, then what its kind says (:mod:`backbone_viz.core.block_kinds`)."""
    block, summary, sentences = inside.block, inside.summary, []
    shapes = {p.role: p.shape for p in inside.parts}
    if block.has_shortcut:
        short, branch = summary["shortcut_share"], summary["residual_share"]
        projected = block.part("shortcut").name != block.part("input").name
        carrier = (
            "The shortcut (here a 1×1 projection, because the shape changes) carries the input on"
            if projected
            else "The shortcut carries the input straight through"
        )
        if short >= branch:
            sentences.append(
                f"{carrier} and the branch only adds a correction: of the energy of the sum, "
                f"**{_share(short)} comes from the shortcut** and {_share(branch)} from the branch "
                f"(the correction is {summary['relative_change']:.2f}× the size of what it corrects)."
            )
        else:
            sentences.append(
                f"{carrier}, and here the branch adds more than it: of the energy of the sum, "
                f"{_share(short)} comes from the shortcut and **{_share(branch)} from the branch** (the "
                f"correction is {summary['relative_change']:.2f}× the size of what it corrects)."
            )
    sentences += get_kind(block.kind).notice(block, summary, shapes)
    return sentences


# ------------------------------------------------------------------------------------------ knock-outs


@dataclass(frozen=True)
class Experiment:
    """A knock-out the learner asked for, and the picture and block it was asked on."""

    backbone: str
    weights: str
    image_sha256: str
    block: str
    items: tuple[Knockout, ...]

    def matches(self, choices: Choices, block: bv.BlockSpec) -> bool:
        return (self.backbone, self.weights, self.image_sha256, self.block) == (
            choices.backbone,
            choices.weights,
            choices.image.sha256,
            block.name,
        )


def describe(spec: bv.BackboneSpec, items: Sequence[Knockout]) -> str:
    """A knock-out in words: ``"without layer2.0"``, ``"with channels #3, #7 of blocks.3.1 switched off"``."""
    words = []
    for item in items:
        if isinstance(item, str):
            words.append(f"without {spec.blocks[[b.name for b in spec.blocks].index(item)].label}")
        else:
            name, channels = item
            numbers = ", ".join(f"#{c}" for c in channels)
            plural = "s" if len(channels) > 1 else ""
            words.append(f"with channel{plural} {numbers} of {spec.layer(name).label} switched off")
    return " and ".join(words)


def knockout_headline(before: bv.AnalysisResult, after: bv.AnalysisResult) -> str:
    """What the knock-out did to the top class (``after`` explains ``before``'s top class)."""
    top, new = before.predictions[0], after.predictions[0]
    p_after = float(after.probabilities[top.index])
    if new.index == top.index:
        return (
            f"The top class stayed **{top.label}**: its probability went from {top.probability:.1%} to "
            f"{p_after:.1%}."
        )
    return (
        f"The top class changed from **{top.label}** ({top.probability:.1%}) to **{new.label}** "
        f"({new.probability:.1%}); {top.label} now gets {p_after:.1%}."
    )


def _set_experiment(choices: Choices, block: bv.BlockSpec, items: tuple) -> None:
    st.session_state[EXPERIMENT] = Experiment(
        choices.backbone, choices.weights, choices.image.sha256, block.name, block_cache.normalise(items)
    )


def _clear_experiment() -> None:
    st.session_state.pop(EXPERIMENT, None)


def knockout_section(choices: Choices, result: bv.AnalysisResult, block: bv.BlockSpec) -> None:
    """ "Remove this block" (or why not) and "Switch off channels", then the new top-5 and the last
    stage's Grad-CAM beside the originals."""
    spec = choices.spec
    activation = result.activations[block.name]
    top = [int(c) for c in render.top_channels(activation, CHANNEL_CHOICES)]
    means = activation.reshape(activation.shape[0], -1).mean(axis=1)
    remove, switch = st.columns(2, gap="large")
    with remove, st.container(border=True):
        st.markdown("**Remove this block**")
        reason = refusal(spec, block)
        if reason is None:
            what = (
                "its output becomes its shortcut alone"
                if block.has_shortcut
                else "its output becomes its input (it keeps the shape, so nothing else needs to change)"
            )
            st.markdown(f"Take {block.label} out of the backbone: {what}.")
            st.button(
                "Remove this block",
                key="inside.remove",
                icon=":material/remove_circle:",
                on_click=_set_experiment,
                args=(choices, block, (block.name,)),
                type="primary",
            )
        else:
            st.markdown(f"{block.label} cannot be removed: {reason}")
            st.caption("Switch off some of its channels instead, or pick a block with a shortcut.")
    with switch, st.container(border=True):
        st.markdown(f"**Switch off channels** of {block.label}'s output (the most active first)")
        key = f"inside.channels.{spec.name}.{block.name}"
        # Another picture has other most active channels: keep only the learner's picks that still apply.
        st.session_state[key] = [c for c in st.session_state.get(key, top[:3]) if c in top]
        chosen = st.multiselect(
            "Channels to switch off",
            top,
            format_func=lambda c: f"#{c} (mean {means[c]:.3g})",
            **persistent(key, top[:3]),
        )
        chosen = [c for c in chosen if c in top]
        st.button(
            "Switch off these channels",
            key="inside.switch",
            icon=":material/visibility_off:",
            on_click=_set_experiment,
            args=(choices, block, ((block.name, chosen),)),
            disabled=not chosen,
        )

    experiment = st.session_state.get(EXPERIMENT)
    if (
        not isinstance(experiment, Experiment)
        or not experiment.matches(choices, block)
        or not experiment.items
    ):
        st.caption("Pick an experiment above: the new top-5 and Grad-CAM appear here, beside the originals.")
        return
    try:
        with st.spinner("Running the picture through the changed backbone…"):
            after = block_cache.cached_knockout(
                choices.backbone,
                choices.weights,
                choices.image.sha256,
                choices.image.data,
                experiment.items,
                target=result.predictions[0].index,
            )
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    what = describe(spec, experiment.items)
    st.markdown(f"**{what[0].upper() + what[1:]}.** {knockout_headline(result, after)}")
    last = spec.stages[-1].last
    crop = result.input_image
    original, changed = st.columns(2, gap="large")
    for column, title, res in ((original, "Original", result), (changed, what[0].upper() + what[1:], after)):
        with column:
            st.markdown(f"**{title}**")
            left, right = st.columns([3, 2], vertical_alignment="center")
            with left:
                widgets.class_bars(res.predictions)
            with right:
                st.image(
                    widgets.shown(render.overlay(crop, res.gradcam[last.name], alpha=0.55), photo=True),
                    caption=f"Grad-CAM of {res.target.label}, {last.label} (last stage)",
                    width="stretch",
                )
    st.button("Put everything back", key="inside.reset", icon=":material/undo:", on_click=_clear_experiment)


# ------------------------------------------------------------------------------------- block ablation


def ablation_table(rows: Sequence[bv.AblationRow], before: bv.AnalysisResult) -> pd.DataFrame:
    """One row per removed block: its label, the probability of the original top class, the new top-1."""
    top = before.predictions[0]
    return pd.DataFrame(
        {
            "block": [r.block.label for r in rows],
            "probability": [r.target_probability for r in rows],
            "top-1 after": [r.top1.label for r in rows],
            "its probability": [r.top1.probability for r in rows],
            "result": [KEPT if r.top1.index == top.index else CHANGED for r in rows],
        }
    )


def ablation_chart(rows: Sequence[bv.AblationRow], before: bv.AnalysisResult) -> alt.LayerChart:
    """Bars over the blocks, in forward order: the original top class's probability without each one; a
    line at its probability with every block; colour: whether the top class stayed."""
    top = before.predictions[0]
    table = ablation_table(rows, before)
    bars = (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=alt.X(
                "block:N", sort=None, title="block removed (first → last)", axis=alt.Axis(labelAngle=-45)
            ),
            y=alt.Y(
                "probability:Q",
                title=f"p({top.label})",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(
                    domain=[0, max(1e-6, float(max(table["probability"].max(), top.probability)))]
                ),
            ),
            color=alt.Color(
                "result:N",
                scale=alt.Scale(domain=[KEPT, CHANGED], range=["#4c72b0", "#dd8452"]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=[
                "block",
                alt.Tooltip("probability:Q", format=".1%", title=f"p({top.label})"),
                "top-1 after",
                alt.Tooltip("its probability:Q", format=".1%"),
            ],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"y": [top.probability]}))
        .mark_rule(color="#111111", strokeDash=[6, 4])
        .encode(y="y:Q")
    )
    return alt.layer(bars, rule).properties(height=380)


def removable_sentence(spec: bv.BackboneSpec, removable: Sequence[bv.BlockSpec]) -> str:
    """How many blocks can be removed, counting the repeated blocks apart from the convolutions around
    them: ``"9 of the 16 blocks can be removed; ..."``."""
    repeated = set(spec.repeated_blocks)
    inside = [b for b in removable if b in repeated]
    outside = [b.label for b in removable if b not in repeated]
    text = f"{len(inside)} of the {len(repeated)} blocks can be removed"
    if outside:
        many = "one" if len(outside) == 1 else str(len(outside))
        text += f", and {many} of the convolutions before or after them ({', '.join(outside)})"
    return text + "; the others cannot (see “Remove this block” above)."


def ablation_sentences(
    rows: Sequence[bv.AblationRow], before: bv.AnalysisResult, spec: bv.BackboneSpec, weights: str
) -> list[str]:
    """What the ablation shows, computed from its rows (true for every backbone and picture)."""
    if not rows:
        return [
            f"No block of {spec.title} can be removed: none has a shortcut, and each changes the shape of "
            "the map it passes on."
        ]
    top = before.predictions[0]
    p0 = top.probability
    n = len(rows)
    top5 = {p.index for p in before.predictions}
    out = [removable_sentence(spec, [r.block for r in rows])]
    changed = [r for r in rows if r.top1.index != top.index]
    if not changed:
        out.append(f"Removing any one of them left **{top.label}** on top.")
    else:
        by_class: dict[int, list[str]] = {}
        for r in changed:
            by_class.setdefault(r.top1.index, []).append(r.block.label)
        names = before.categories
        moves = "; ".join(
            f"to **{names[i]}** ({float(before.probabilities[i]):.1%} before) without {', '.join(blocks)}"
            for i, blocks in by_class.items()
        )
        out.append(
            f"{n - len(changed)} of the {n} removals left **{top.label}** on top; {len(changed)} changed "
            f"it: {moves}."
        )
        if all(r.top1.index in top5 for r in changed):
            out.append("Every new top class was already in the top-5 with every block in place.")
    low = min(rows, key=lambda r: r.target_probability)
    high = max(r.target_probability for r in rows)
    out.append(
        f"The probability of {top.label}, {p0:.1%} with every block, stayed between "
        f"{low.target_probability:.1%} and {high:.1%}; it fell most without {low.block.label}."
    )
    broken = [r for r in rows if r.top1.index not in top5 or r.target_probability < p0 / 2]
    if weights == "untrained":
        out.append("With untrained weights the top class is a guess, so this shows little: try pretrained.")
    elif not broken:
        shortcut = all(r.block.has_shortcut for r in rows)
        out.append(
            "**No single removal broke the backbone**"
            + (
                ": as Veit et al. (2016) found for residual networks, each shortcut passes the features on, "
                "and the other blocks still do their work."
                if shortcut
                else "."
            )
        )
    else:
        out.append(
            f"**{len(broken)} removal{'s' if len(broken) > 1 else ''} broke what the backbone sees** (a new "
            f"top class from outside the top-5, or {top.label} at less than half its probability): "
            f"without {', '.join(r.block.label for r in broken)}."
        )
    return out


def ablation_section(choices: Choices, result: bv.AnalysisResult) -> None:
    """ "Remove each block in turn": runs :func:`backbone_viz.block_ablation` with a progress bar (once per
    picture for everyone), then the chart and what it shows."""
    spec = choices.spec
    key = (choices.backbone, choices.weights, choices.image.sha256)
    rows = block_cache.cached_ablation(*key)
    start = st.empty()  # the button, then the progress bar in its place
    if rows is None and start.button(
        "Remove each block in turn", key="inside.ablation", icon=":material/play_arrow:", type="primary"
    ):
        bar = start.progress(0.0, text="Removing the first block…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Removed {done} of {total} blocks, one at a time…")

        rows = block_cache.block_ablation(*key, choices.image.data, progress=progress)
        start.empty()
    if rows is None:
        return
    if rows:
        st.altair_chart(ablation_chart(rows, result), width="stretch")
        st.caption(
            f"Each bar: the probability of {result.predictions[0].label} with that one block removed. "
            "Dashed line: with every block in place. Orange: that removal changed the top class."
        )
    st.markdown(" ".join(ablation_sentences(rows, result, spec, choices.weights)))


# ----------------------------------------------------------------------------------- backbone families


@cache
def card_diagram(backbone: str, block: str) -> tuple[bytes, int]:
    """A family's typical block drawn from its spec (no picture), as PNG bytes, and the width to show it
    at: at most :data:`CARD_WIDTH`, but never so narrow that its text is under 12 px on screen (made once
    per process)."""
    spec = bv.get_spec(backbone)
    typical = next(b for b in spec.blocks if b.name == block)
    image = draw_block(typical)
    width = max(min(image.width, CARD_WIDTH), readable_width(image, style_for(typical, maps=False)))
    return render.encode(image), width


def member_line(spec: bv.BackboneSpec) -> str:
    """A family card's line for one backbone: ``"**VGG-16**: 13 blocks (5 of them end in a max pool),
    138.4 M parameters"``."""
    pools = pool_note(spec)
    blocks = f"{len(spec.repeated_blocks)} blocks" + (f" ({pools})" if pools else "")
    return f"**{spec.title}**: {blocks}, {spec.params_millions:.1f} M parameters"


def family_cards(choices: Choices) -> None:
    """A card per backbone family, two to a row: its block, year, depth, parameters and its one idea."""
    families = zoo.families()
    for start in range(0, len(families), 2):
        for column, family in zip(st.columns(2), families[start : start + 2], strict=False):
            first = bv.get_spec(family.members[0])
            with column, st.container(border=True):
                st.markdown(f"#### {family.title} · {family.year}")
                picture, width = card_diagram(first.name, family.block)
                st.image(picture, width=width)
                st.markdown(f"**Its idea:** {family.idea}")
                st.markdown("  \n".join(member_line(bv.get_spec(name)) for name in family.members))
                st.caption(family.paper)
                if choices.backbone not in family.members:
                    st.button(
                        f"Open {first.title}",
                        key=f"inside.family.{family.title}",
                        on_click=set_backbone,
                        args=(first.name, choices.weights),
                        help="Switches the sidebar's backbone (same weights) and opens its blocks here.",
                    )
