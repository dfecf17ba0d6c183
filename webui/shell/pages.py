"""The app's pages: one registry that the navigation, Home's "Where to go next" and the tests read.

A new page is its file in ``app_pages/`` (a layout) and one :class:`Page` here; its place in this tuple
is its place in the navigation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Page:
    """One page of the app.

    Attributes:
        file: the page's file, relative to ``app.py`` (``"app_pages/gradcam.py"``).
        title: its name in the navigation.
        icon: its Material icon.
        next_line: what Home's "Where to go next" says of it; None for Home itself.
    """

    file: str
    title: str
    icon: str
    next_line: str | None

    @property
    def stem(self) -> str:
        """The file's stem (``"gradcam"``), the name links and the URL use."""
        return Path(self.file).stem


PAGES: tuple[Page, ...] = (
    Page("app_pages/home.py", "Home", ":material/home:", None),
    Page(
        "app_pages/lessons.py",
        "Lessons",
        ":material/school:",
        "Lessons: short lessons and a quiz, on your picture",
    ),
    Page(
        "app_pages/feature_buildup.py",
        "Feature build-up",
        ":material/stacks:",
        "Feature build-up: browse every layer and its channels",
    ),
    Page(
        "app_pages/inside_block.py",
        "Inside a block",
        ":material/account_tree:",
        "Inside a block: how backbones build their blocks",
    ),
    Page(
        "app_pages/atlas.py",
        "Feature atlas",
        ":material/grid_view:",
        "Feature atlas: pictures made to excite one channel",
    ),
    Page(
        "app_pages/gradcam.py",
        "Grad-CAM",
        ":material/target:",
        "Grad-CAM: which parts of the picture made the head decide, by six methods",
    ),
    Page(
        "app_pages/faithfulness.py",
        "Which map is right?",
        ":material/straighten:",
        "Which map is right? Take away the pixels a map ranks first and measure",
    ),
    Page(
        "app_pages/attributions.py",
        "Pixel attributions",
        ":material/grain:",
        "Pixel attributions: which pixels count, and can we trust it",
    ),
    Page(
        "app_pages/compare.py",
        "Compare backbones",
        ":material/compare:",
        "Compare backbones: the same picture through 2 or 3 networks",
    ),
    Page(
        "app_pages/heads.py",
        "Backbone → heads",
        ":material/call_split:",
        "Backbone → heads: one backbone, many heads",
    ),
    Page(
        "app_pages/detectors.py",
        "Real detectors",
        ":material/center_focus_strong:",
        "Real detectors: torchvision's detectors and segmenters built on these backbones",
    ),
    Page(
        "app_pages/build_head.py",
        "Build a head",
        ":material/brush:",
        "Build a head: paint to segment, a box from Grad-CAM, a detector from one box",
    ),
    Page(
        "app_pages/classroom.py",
        "Class mode",
        ":material/co_present:",
        "Class mode: your class answers on their phones, the projector shows the answers",
    ),
    Page(
        "app_pages/join.py",
        "Join a class",
        ":material/how_to_reg:",
        "Join a class: answer your teacher's question on your phone",
    ),
)


def next_pages() -> tuple[Page, ...]:
    """Every page Home points to, in the navigation's order."""
    return tuple(p for p in PAGES if p.next_line is not None)
