"""The lessons: seven short lessons on the learner's picture and backbone, then a "check yourself" quiz.

Each lesson is data, one module each (``l1_backbone_and_head`` to ``l7_blocks``, built from
:mod:`webui.lessons.base`): a question to answer first (multiple choice, built from the spec so that its answer is
true for every backbone), a reveal that draws this picture's real figure with one sentence made from its
numbers, and an "explore this" link that opens an explorer page at that view (``st.page_link`` with the
URL names of :mod:`webui.shell.links`). The numbers come from :mod:`backbone_viz.explain.facts`; the learner's
progress and the widgets that ask are in :mod:`webui.lessons.progress`.
"""

from __future__ import annotations

from webui.lessons import (
    l1_backbone_and_head,
    l2_first_layer,
    l3_low_to_high,
    l4_where_the_head_looks,
    l5_untrained,
    l6_many_heads,
    l7_blocks,
)
from webui.lessons.base import Lesson
from webui.lessons.quiz import quiz

#: The lessons in their order.
LESSONS: tuple[Lesson, ...] = tuple(
    module.LESSON
    for module in (
        l1_backbone_and_head,
        l2_first_layer,
        l3_low_to_high,
        l4_where_the_head_looks,
        l5_untrained,
        l6_many_heads,
        l7_blocks,
    )
)

__all__ = ["LESSONS", "Lesson", "quiz"]
