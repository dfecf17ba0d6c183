"""The "Build a head" page, part 2, where is it? A box from Grad-CAM at each stage, drawn on the picture."""

from __future__ import annotations

from PIL import Image, ImageDraw

import backbone_viz as bv

#: The box's colours: a light line inside a dark one, visible on a light and on a dark picture.
LIGHT, DARK = (255, 214, 0), (0, 0, 0)


def boxed(picture: Image.Image, box: bv.CamBox | None) -> Image.Image:
    """A copy of the crop with ``box`` drawn on it (inclusive crop pixels), or the crop alone for None."""
    drawn = picture.convert("RGB")  # a copy: the shared crop is never drawn on
    if box is not None:
        draw = ImageDraw.Draw(drawn)
        x0, y0, x1, y1 = box.box
        draw.rectangle((x0, y0, x1, y1), outline=DARK, width=5)
        draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=LIGHT, width=3)
    return drawn


def box_caption(stage: bv.StageSpec, box: bv.CamBox | None) -> str:
    """One stage's box in words: its size, and how many separate bright regions there were."""
    head = f"**stage {stage.index}** · `{stage.last.label}`"
    if box is None:
        return f"{head}  \nGrad-CAM is zero everywhere here: nothing to box."
    regions = "one bright region" if box.regions == 1 else f"the largest of {box.regions} bright regions"
    return f"{head}  \n{box.width} × {box.height} px ({box.box_share:.0%} of the picture), around {regions}"


def why_it_works(weights: str, label: str) -> str:
    """Why a classifier never shown a box can still point at the object (honest for untrained weights)."""
    common = (
        "The head was only ever told which class a whole picture shows, never where. But its last stage is "
        "still a map: each cell holds the features of one place of the picture, and the head adds up what "
        "every cell says. Grad-CAM reads back which cells raised the score, and the box surrounds the "
        "largest place where it is bright (above 20 % of its peak, as Zhou et al. 2016 did)."
    )
    if weights == "pretrained":
        return f"{common} So the box falls where the evidence for *{label}* is, with no detector trained."
    return (
        f"{common} With untrained weights no channel has learned any object, so the box follows no learned "
        f"object: it surrounds whatever happens to raise the random score of *{label}*."
    )
