"""Home's "Where to go next": every page of the app but Home, in the navigation's order, with one line
on what it shows (a test checks the list against ``app.py``)."""

from __future__ import annotations

#: ``(page file, label, icon)`` for every page after Home.
NEXT: tuple[tuple[str, str, str], ...] = (
    ("app_pages/lessons.py", "Lessons: seven short lessons and a quiz, on your picture", ":material/school:"),
    (
        "app_pages/feature_buildup.py",
        "Feature build-up: browse every layer and its channels",
        ":material/stacks:",
    ),
    ("app_pages/inside_block.py", "Inside a block: how backbones build their blocks", ":material/account_tree:"),
    ("app_pages/atlas.py", "Feature atlas: pictures made to excite one channel", ":material/grid_view:"),
    ("app_pages/gradcam.py", "Grad-CAM: which parts of the picture made the head decide", ":material/target:"),
    (
        "app_pages/attributions.py",
        "Pixel attributions: which pixels count, and can we trust it",
        ":material/grain:",
    ),
    ("app_pages/compare.py", "Compare backbones: the same picture through 2 or 3 networks", ":material/compare:"),
    ("app_pages/heads.py", "Backbone → heads: one backbone, many heads", ":material/call_split:"),
)
