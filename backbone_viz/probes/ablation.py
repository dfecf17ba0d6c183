"""Remove each block in turn: which removals change what the backbone sees in a picture.

The experiment of Veit, Wilber and Belongie ("Residual networks behave like ensembles of relatively
shallow networks", NeurIPS 2016): removing one residual block barely hurts a ResNet, while removing a
layer of a plain network breaks it. Each removal is one no-grad forward pass through an edited copy of
the traced graph that stops at the logits; the shared model is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.blocks import BlockSpec
from backbone_viz.core.graph import LOGITS
from backbone_viz.core.knockout import bypass, bypassable
from backbone_viz.core.runs import runs_model
from backbone_viz.explain.analysis import Prediction

#: ``progress(done, total)``, called after each removal.
AblationProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class AblationRow:
    """What the backbone's head says about the picture once one block is removed.

    Attributes:
        block: the removed block.
        top1: the top class after the removal, with its probability.
        target_probability: the probability, after the removal, of the class that was top-1 before.
    """

    block: BlockSpec
    top1: Prediction
    target_probability: float


@runs_model
def block_ablation(
    backbone: Backbone, image: Image.Image, *, progress: AblationProgress | None = None
) -> tuple[AblationRow, ...]:
    """Removes each removable block in turn and asks the head about the picture each time.

    Args:
        backbone: a loaded backbone; it is not modified.
        image: an RGB PIL image.
        progress: called as ``progress(done, total)`` after each removal.

    Returns:
        One :class:`AblationRow` per block that can be removed (blocks with a shortcut, plain layers
        that keep their input's shape), in forward order.
    """
    x = backbone.preprocess(image)
    categories = backbone.categories
    blocks = bypassable(backbone.spec)
    with torch.no_grad():
        probs = torch.softmax(backbone.extract(x, [LOGITS])[LOGITS][0].float(), dim=0)
        target = int(probs.argmax())
        rows = []
        for done, block in enumerate(blocks, start=1):
            edit = bypass(backbone.spec, block)
            logits = backbone.graph.extractor(backbone._unalias([LOGITS]), [edit], keep=False)(x)
            p = torch.softmax(next(iter(logits.values()))[0].float(), dim=0)
            top = int(p.argmax())
            rows.append(AblationRow(block, Prediction(top, categories[top], float(p[top])), float(p[target])))
            if progress is not None:
                progress(done, len(blocks))
    return tuple(rows)
