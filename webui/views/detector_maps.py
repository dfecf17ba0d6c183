"""The heads page, tab 3, heads for detection and segmentation: the maps a detector's neck reads
(C3, C4, C5) from this backbone, and what each is good for."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

import backbone_viz as bv
from backbone_viz import render
from webui.compute import heads_state
from webui.shell.state import Choices
from webui.views import widgets

#: What each map of the pyramid is good for, C3 to C5.
PYRAMID_USES = (
    "small objects: a bird far away, a face in a crowd",
    "middle-sized objects",
    "large objects: a cat filling the picture",
)


def pyramid_maps(choices: Choices, result: bv.AnalysisResult, levels: Sequence[bv.PyramidLevel]) -> None:
    """The picture beside the maps at strides 8, 16 and 32, with a PNG of the row."""
    crop = result.input_image
    cells = st.columns(4)
    cells[0].image(widgets.shown(crop, photo=True), width="stretch")
    cells[0].caption(f"**your picture**  \n3 × {crop.height} × {crop.width}")
    maps, labels = [], []
    for cell, level in zip(cells[1:], levels, strict=False):
        image = render.map_image(render.representative(result, level.layer), size=crop.width)
        c, h, w = level.shape
        cell.image(widgets.shown(image), width="stretch")
        cell.caption(
            f"**{level.name}** · stride {level.stride}  \n{c} × {h} × {w} from `{level.layer.label}`  \n"
            f"one cell = {level.stride} × {level.stride} px of the picture"
        )
        maps.append(image)
        labels.append(f"{level.name} · stride {level.stride}\n{c} × {h} × {w}")
    if len(levels) < 3:
        cells[len(levels) + 1].caption(
            f"**no stride-32 map listed for {choices.spec.title}**: its listed layers end at stride 16 (the "
            "stride-32 map only exists after its last max pool)."
        )
    widgets.download_png(
        lambda: render.image_row(
            [crop, *maps], labels=[f"your picture\n3 × {crop.height} × {crop.width}", *labels]
        ),
        f"{heads_state.file_stem(choices)}-pyramid.png",
        key="heads.dl.pyramid",
        label="Maps (PNG)",
    )


def what_to_notice(levels: Sequence[bv.PyramidLevel]) -> str:
    """The tab's note: which heads read which stages, and what the maps shown here are."""
    count = {1: "the one map", 2: "the two maps", 3: "the three maps"}.get(
        len(levels), f"the {len(levels)} maps"
    )
    return (
        "A **detector** draws a box around every object; a **segmenter** colours every pixel by its class. "
        "Both start from a classification backbone like this one. A detector such as RetinaNet reads "
        "several stages, not just the last; a segmenter such as DeepLab reads the last stage, kept finer by "
        f"dilated convolutions. Above are {count} a detector takes from this backbone for your picture: "
        "notice how the fine map keeps small details in place and the coarse map has few, large cells."
    )


def cell_sees(receptive_field: int, stride: int, picture_side: int) -> str:
    """What one cell of a map can see, true for the cells it names.

    The receptive field is a square centred on the cell; a cell near the border has part of it outside
    the picture. The cell nearest the centre sits at most ``stride / 2`` px off the picture's centre (so
    a square of ``picture_side + stride`` px covers the picture from there); a cell in a corner can sit on
    the edge itself (so only a square of ``2 * picture_side`` px covers the picture from every cell).

    Args:
        receptive_field: side of the square in px.
        stride: picture px per map cell.
        picture_side: side of the square crop the backbone saw.
    """
    side = f"{receptive_field} × {receptive_field} px"
    if receptive_field >= 2 * picture_side:
        return f"the whole {picture_side} px picture, from every cell ({side})"
    if receptive_field >= picture_side + stride:
        return f"a cell near the centre: the whole {picture_side} px picture ({side}, wider than the picture)"
    return f"{side} around the cell"


def pyramid_table(levels: Sequence[bv.PyramidLevel], picture_side: int) -> None:
    """One row per map: stride, shape, stage and level, what one cell can see, what it is good for."""
    rows = "\n".join(
        f"| **{level.name}** | {level.stride} | {widgets.shape_text(level.shape)} | stage {level.layer.stage} · "
        f"{level.layer.level} | {cell_sees(level.layer.receptive_field, level.stride, picture_side)} | {use} |"
        for level, use in zip(levels, PYRAMID_USES, strict=False)
    )
    st.markdown(
        "| map | stride | channels × height × width | stage · level | one cell can see | good for |\n"
        "|---|---|---|---|---|---|\n" + rows
    )
    st.caption(
        "What a cell can see is its receptive field: a square centred on the cell. Near the border part of "
        "the square lies outside the picture, so a cell there sees less of it."
    )
