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


def pyramid_table(levels: Sequence[bv.PyramidLevel], picture_side: int) -> None:
    """One row per map: stride, shape, stage and level, what one cell can see, what it is good for."""

    def sees(receptive_field: int) -> str:
        side = f"{receptive_field} × {receptive_field} px"
        return f"the whole picture ({side})" if receptive_field >= picture_side else side

    rows = "\n".join(
        f"| **{level.name}** | {level.stride} | {widgets.shape_text(level.shape)} | stage {level.layer.stage} · "
        f"{level.layer.level} | {sees(level.layer.receptive_field)} | {use} |"
        for level, use in zip(levels, PYRAMID_USES, strict=False)
    )
    st.markdown(
        "| map | stride | channels × height × width | stage · level | one cell can see | good for |\n"
        "|---|---|---|---|---|---|\n" + rows
    )
