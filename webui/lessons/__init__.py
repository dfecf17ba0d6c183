"""The lessons: short lessons on the learner's picture and backbone, then a "check yourself" quiz.

Each lesson is data, one module each (``l1_backbone_and_head`` to ``l9_which_map``, built from
:mod:`webui.lessons.base`): a question to answer first (multiple choice, built from the spec so that its answer is
true for every backbone), a reveal that draws this picture's real figure with one sentence made from its
numbers, and an "explore this" link that opens an explorer page at that view (``st.page_link`` with the
URL names of :mod:`webui.shell.links`). The numbers come from :mod:`backbone_viz.explain.facts`; the learner's
progress and the widgets that ask are in :mod:`webui.lessons.progress`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from webui.lessons.base import Lesson
from webui.lessons.quiz import quiz

#: The lessons in their order, one per module named ``l<number>_<what>`` (a new lesson is its module).
LESSONS: tuple[Lesson, ...] = tuple(
    importlib.import_module(f"{__name__}.{name}").LESSON
    for name in sorted(
        (m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"l\d+_\w+", m.name)),
        key=lambda name: int(name[1:].split("_")[0]),
    )
)
if [lesson.number for lesson in LESSONS] != list(range(1, len(LESSONS) + 1)):
    raise ValueError(f"lessons must be numbered 1, 2, ... in their modules' order: {[m.number for m in LESSONS]}")

__all__ = ["LESSONS", "Lesson", "quiz"]
