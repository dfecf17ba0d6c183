"""The refusals of class mode: what a student or a teacher is told, and what the app can branch on."""

from __future__ import annotations

from typing import Literal

from backbone_viz.errors import BackboneVizError

#: Why a request was refused, for code that must tell refusals apart without reading sentences.
Reason = Literal[
    "bad_code",  # not a class code at all (empty, too long, symbols outside the alphabet)
    "no_class",  # a well-formed code that no open class has
    "ended",  # the class has expired
    "not_teacher",  # a teacher key that does not control this class
    "no_seat",  # a seat token that has not joined this class
    "full",  # the class has as many seats as it may
    "bad_nickname",  # a nickname too long or with control characters
    "moved_on",  # an answer to a question that is not the class's current one
    "revealed",  # an answer after the teacher revealed the answer
    "bad_choice",  # a choice that is not one of the question's
    "too_many",  # answers faster than the rate limit allows
]


class ClassError(BackboneVizError):
    """A request of class mode that is refused: a wrong or ended code, a forged teacher link, an answer after
    the reveal, a choice out of range, too many answers.

    Shown like every other :class:`~backbone_viz.errors.BackboneVizError`: ``message`` says what happened in
    a sentence a student understands and ``hint`` what to do. ``reason`` names the case for code.

    Args:
        reason: which refusal this is (one of :data:`Reason`).
        message: what went wrong, in one plain sentence.
        hint: what to do about it, in one plain sentence.
    """

    def __init__(self, reason: Reason, message: str, hint: str = "") -> None:
        self.reason = reason
        super().__init__(message, hint)


class StorageError(BackboneVizError):
    """The class database cannot be used: unreachable, busy beyond the wait, unwritable, or made by a newer
    backbone-viz. For the person who runs the app rather than a student."""
