"""The dense heads a learner builds on the frozen backbone: the registry the "Build a head" page reads.

A dense head answers *where* (a label per pixel, a box), not just *what*. Each is a section of the page:
its module in :mod:`webui.views` draws it (``show(choices, base)``, under its title), and one
:class:`DenseHead` here names it; a new dense head is its section module and one line in
:data:`DENSE_HEADS`, whose order is the page's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import backbone_viz as bv
from webui.shell.state import Choices
from webui.views import cam_boxes, detect_section, segment_section


@dataclass(frozen=True)
class DenseHead:
    """One dense head of the page.

    Attributes:
        key: its short name (``"segment"``).
        title: its section's title (``"Paint to segment"``).
        line: what a learner does with it, one sentence of the page's introduction (Markdown).
        show: draws the section for the chosen picture, given its analysis (top class's Grad-CAM included).
    """

    key: str
    title: str
    line: str
    show: Callable[[Choices, bv.AnalysisResult], None]


DENSE_HEADS: tuple[DenseHead, ...] = (
    DenseHead(
        "segment",
        "Paint to segment",
        "**Paint** a stroke or two of each label: a segmenter learns from those pixels alone which mix of "
        "features means which label, and colours every pixel.",
        segment_section.show,
    ),
    DenseHead(
        "box",
        "Where is it? A box from Grad-CAM",
        "A **box** around the object comes from Grad-CAM, from a classifier that never saw a box.",
        cam_boxes.show,
    ),
    DenseHead(
        "detect",
        "A detector from a few boxes",
        "**Box** one kind of thing: a small detector trains on your box in a second or two and looks for "
        "the thing on pictures it never saw.",
        detect_section.show,
    ),
)
