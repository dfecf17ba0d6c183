"""A learner's way through the lessons: the lesson on show, the answers given, and the widgets that ask
and answer.

Progress lives in the session (``links.LESSON``: the lesson on show; ``links.ANSWERS``: one letter per
question, ``-`` for not yet answered) and so in the URL: a shared link brings a learner's answers back.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from webui.shell.links import ANSWERS, LESSON, LESSON_COUNT

LETTERS = "abcd"
QUIZ = LESSON_COUNT + 1  # the lesson number of the quiz


@dataclass(frozen=True)
class Question:
    """A multiple-choice question: its text, the choices, the right one's index, and why it is right."""

    text: str
    choices: tuple[str, ...]
    answer: int
    why: str


@dataclass(frozen=True)
class Explore:
    """An "explore this" link: the page, its label and the URL names of the view it opens."""

    page: str
    label: str
    params: dict[str, str]


def answers() -> str:
    """The session's answers, one letter per question (lessons, then the quiz), ``-`` when unanswered."""
    return st.session_state.get(ANSWERS, "")


def answer_of(slot: int) -> int | None:
    """The choice given for question ``slot`` (0-based: lessons 0 to 6, then the quiz), or ``None``."""
    text = answers()
    letter = text[slot] if slot < len(text) else "-"
    return LETTERS.index(letter) if letter in LETTERS else None


def record(slot: int, choice: int | None) -> None:
    """Stores the choice for question ``slot`` in the compact answers string."""
    text = list(answers().ljust(slot + 1, "-"))
    text[slot] = "-" if choice is None else LETTERS[choice]
    st.session_state[ANSWERS] = "".join(text).rstrip("-") or "-"


def current_lesson() -> int:
    return int(st.session_state.get(LESSON, 1))


def go(number: int) -> None:
    """Shows lesson ``number`` (``QUIZ`` for the quiz). Usable as on_click."""
    st.session_state[LESSON] = max(1, min(QUIZ, number))


def ask(question: Question, slot: int) -> int | None:
    """Draws the question as a radio with no choice made yet; returns the learner's choice (kept in the
    answers string, so a link brings it back)."""
    key = f"_w_lesson.q{slot}"
    st.session_state[key] = answer_of(slot)
    return st.radio(
        question.text,
        range(len(question.choices)),
        format_func=lambda i: f"{LETTERS[i]}) {question.choices[i]}",
        key=key,
        on_change=lambda: record(slot, st.session_state[key]),
    )


def verdict(question: Question, choice: int) -> None:
    """Right or not, and why."""
    right = LETTERS[question.answer]
    if choice == question.answer:
        st.success(f"**Right.** {question.why}", icon=":material/check_circle:")
    else:
        st.warning(
            f"**Not quite: the answer is {right}) {question.choices[question.answer]}.** {question.why}",
            icon=":material/lightbulb:",
        )


def explore_link(explore: Explore) -> None:
    st.page_link(
        explore.page, label=explore.label, icon=":material/travel_explore:", query_params=explore.params
    )
