"""Class mode, page side: the store every session shares, the class's questions, and what a teacher's or a
student's session keeps.

The storage (:mod:`webui.classroom`) knows nothing of Streamlit; this module binds it to the app:

* one :class:`~webui.classroom.store.ClassStore` per database per process (``st.cache_resource``), on
  ``$BACKBONE_VIZ_DATABASE_URL``, else Streamlit's secrets ``[connections.classes] url``, else the SQLite file
  of :func:`~webui.classroom.store.default_database_path` (``$BACKBONE_VIZ_CLASSES_FILE`` names another one,
  which is how each test gets its own). The store is made only when a class is opened or joined, so a visit
  to another page never creates a database file.
* one :class:`~webui.classroom.limits.RateLimiter` per process, shared by every store of the process, so that
  a seat's answers are limited however many sessions send them.
* the class's questions: the lessons' questions in order (slot ``i`` is lesson ``i + 1``), then the "check
  yourself" quiz. A question's text depends on the backbone only (``Lesson.question(spec)``), so pinning
  the class's backbone gives every device the same text; the quiz's also reads two sizes off an analysis
  (the last stage's map width and the pooled feature count), which the crop fixes whatever the picture.
* the teacher's control (join code, teacher key, pinned choices) lives in the teacher's session only; a
  student's seat lives in the session and in the URL (``?code=...&seat=...``), because Streamlit drops a
  disconnected session after 120 s and a phone that slept longer comes back as a new session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

import backbone_viz as bv
from webui.classroom.errors import ClassError, StorageError
from webui.classroom.limits import RateLimiter
from webui.classroom.store import DATABASE_URL_ENV, ClassInfo, ClassStore, default_database_path
from webui.lessons import LESSONS, quiz
from webui.lessons.progress import Question
from webui.shell.state import Choices, ImageChoice, sample_choice, samples

#: Session key of the teacher's :class:`Control` (the only place the teacher key is kept).
CONTROL = "classroom.control"
#: Session key of a student's :class:`SeatRef`.
SEAT = "classroom.seat"
#: Session key of the times (``time.monotonic``) of this session's wrong codes.
WRONG = "classroom.wrong_codes"
#: Wrong codes a session may type within :data:`WRONG_WINDOW_S` before it must pause.
WRONG_CODES_MAX = 5
WRONG_WINDOW_S = 600.0
#: How long the pause lasts after the last wrong code: a person retyping a code barely notices, a script
#: guessing codes gets at most 5 tries a half-minute per session.
PAUSE_S = 30.0
#: A class lives for a school day's double lesson; the store deletes it afterwards.
CLASS_TTL_S = 3 * 3600.0
#: Answers per seat: about one a second with a burst of 5 (changing one's mind a few times is fine; a
#: script sending 1000 is refused before any query).
ANSWER_RATE, ANSWER_BURST = 1.0, 5


@dataclass(frozen=True)
class Control:
    """What the teacher's session holds for the class it controls.

    Attributes:
        code: the join code.
        key: the teacher key (never drawn in projector mode, never kept in the URL).
        choices: the pinned backbone, weights and picture (the picture's bytes, for the reveal's figures),
            or None when the teacher took control by link in a session that does not have the picture.
    """

    code: str
    key: str
    choices: Choices | None


@dataclass(frozen=True)
class SeatRef:
    """A student's seat: the class's code, the seat's token (22 URL-safe characters) and the nickname the
    student gave (None: none)."""

    code: str
    token: str
    nickname: str | None = None


# ------------------------------------------------------------------------------------------ storage


@st.cache_resource(show_spinner=False)
def answer_limiter() -> RateLimiter:
    """The per-seat answer limit, one per process (every store of the process shares it)."""
    return RateLimiter(rate=ANSWER_RATE, burst=ANSWER_BURST)


@st.cache_resource(show_spinner=False)
def _store_at(url: str) -> ClassStore:
    # A StorageError is raised, not cached: the next run tries again.
    return ClassStore.from_url(url, limiter=answer_limiter())


def database_url() -> str:
    """Where the classes live: the environment's URL, else the secrets' ``[connections.classes] url``, else
    the default SQLite file."""
    if url := os.environ.get(DATABASE_URL_ENV, "").strip():
        return url
    try:
        url = str(st.secrets.get("connections", {}).get("classes", {}).get("url", "")).strip()
    except FileNotFoundError:  # no secrets file at all: the usual case
        url = ""
    return url or f"sqlite:///{default_database_path()}"


def store() -> ClassStore:
    """The class store of this process (made on first use).

    Raises:
        StorageError: the database cannot be reached or made.
    """
    return _store_at(database_url())


def show_refusal(error: ClassError | StorageError) -> None:
    """A refusal as the person in front of the screen reads it: a :class:`ClassError` as a warning with its
    hint, a :class:`StorageError` as an error for whoever runs the app."""
    if isinstance(error, ClassError):
        st.warning(f"**{error.message}** {error.hint}", icon=":material/info:")
    else:
        st.error(
            f"**Class mode cannot reach its database.** {error.message}\n\n{error.hint}",
            icon=":material/database:",
        )


# ------------------------------------------------------------------------------------------ questions


def lesson_slots() -> int:
    """How many slots the lessons take (the quiz's slots follow)."""
    return len(LESSONS)


def question_at(
    slot: int, spec: bv.BackboneSpec, activations: Callable[[], bv.Activations | None]
) -> Question | None:
    """The class's question in ``slot``: lesson ``slot + 1``'s, then the quiz's; None past the last one or
    when the quiz's analysis failed (its error is shown by whoever made it).

    Args:
        activations: gives the pinned analysis; called only for a quiz slot.
    """
    if slot < 0:
        return None
    if slot < len(LESSONS):
        return LESSONS[slot].question(spec)
    result = activations()
    if result is None:
        return None
    questions = quiz(spec, result)
    index = slot - len(LESSONS)
    return questions[index] if index < len(questions) else None


def slot_title(slot: int) -> str:
    """What the teacher's list and the projector call a slot: "Lesson 3 · …" or "Check yourself, question 2"."""
    if slot < len(LESSONS):
        lesson = LESSONS[slot]
        return f"Lesson {lesson.number} · {lesson.title}"
    return f"Check yourself, question {slot - len(LESSONS) + 1}"


def pinned_picture(image: ImageChoice) -> str:
    """The picture as the class stores it: a sample's name, else the SHA-256 of the bytes."""
    return image.name if image.kind == "sample" else image.sha256


def picture_for(info: ClassInfo, current: ImageChoice | None = None) -> ImageChoice | None:
    """The class's picture: its sample, or ``current`` when that is the teacher's own picture it pinned;
    None when this session does not have it."""
    if any(sample.name == info.picture for sample in samples()):
        return sample_choice(info.picture)
    if current is not None and current.sha256 == info.picture:
        return current
    return None


def shape_picture(info: ClassInfo) -> ImageChoice:
    """A picture whose analysis gives the quiz's sizes for the class: its own sample, else the first one (the
    sizes the quiz reads, map width and feature count, are fixed by the crop, not by what is pictured), so a
    student's device never needs the teacher's own picture."""
    return picture_for(info) or sample_choice(samples()[0].name)


# ------------------------------------------------------------------------------------------ wrong codes


def paused_for() -> float:
    """Seconds this session must still wait before trying another code (0 when it may)."""
    now = time.monotonic()
    recent = [t for t in st.session_state.get(WRONG, []) if now - t < WRONG_WINDOW_S]
    st.session_state[WRONG] = recent
    if len(recent) < WRONG_CODES_MAX:
        return 0.0
    return max(0.0, PAUSE_S - (now - recent[-1]))


def count_wrong_code() -> None:
    st.session_state[WRONG] = [*st.session_state.get(WRONG, []), time.monotonic()]


# ------------------------------------------------------------------------------------------ teacher link


def take_teacher_link() -> tuple[str, str] | None:
    """The ``(code, key)`` of a teacher's link (``?code=...&teacher=...``), removed from the address bar at
    once so that a projected URL never shows the key. Call before anything else on the page."""
    params = st.query_params
    if "teacher" not in params:
        return None
    code, key = params.get("code", ""), params.get("teacher", "")
    del params["teacher"]
    if "code" in params:
        del params["code"]
    return code, key
