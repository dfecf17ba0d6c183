"""Lessons: short lessons on your picture and backbone, each a question first, then the real figure,
then a link into the explorer at that view; a "check yourself" quiz at the end."""

import streamlit as st

import webui
from webui.lessons import LESSONS, quiz
from webui.lessons import progress as progress
from webui.lessons.progress import QUIZ
from webui.shell import projector
from webui.views import widgets

choices = webui.page_setup()
spec = choices.spec

st.title("Lessons: how a backbone sees")
widgets.explain(
    f"{len(LESSONS)} short lessons on **your picture** and **{spec.title}**. Each asks a question first: answer it, "
    "then see the real figure and what to notice, and follow the link to explore it yourself. Change the "
    "picture or the backbone in the sidebar at any time: the figures and numbers follow."
)

number = progress.current_lesson()
done = sum(progress.answer_of(i) is not None for i in range(len(LESSONS)))
titles = {lesson.number: f"{lesson.number} · {lesson.title}" for lesson in LESSONS} | {QUIZ: "Check yourself"}
st.session_state["_w_lesson.nav"] = number
st.segmented_control(
    f"Lesson ({done} of {len(LESSONS)} answered)",
    list(titles),
    format_func=lambda n: str(n) if n != QUIZ else "Quiz",
    key="_w_lesson.nav",
    on_change=lambda: progress.go(st.session_state["_w_lesson.nav"] or number),
)
# Grad-CAM only for the lesson that shows it: the others need half the model's work on a new picture.
wants_gradcam = number != QUIZ and LESSONS[number - 1].gradcam
result = webui.analysis_or_stop(choices) if wants_gradcam else webui.activations_or_stop(choices)

if number != QUIZ:
    lesson = LESSONS[number - 1]
    question = lesson.question(spec)
    # In projector mode an answered lesson shows its figure first, below one folded line that holds the
    # title and the question, so that it fits the first screen; the verdict follows it.
    answered = projector.on() and progress.answer_of(number - 1) is not None
    if answered:
        with st.expander(f"**{titles[number]}** · the question: {question.text}"):
            choice = progress.ask(question, number - 1)
        lesson.reveal(choices, result)
        if choice is not None:
            progress.verdict(question, choice)
        progress.explore_link(lesson.explore(choices, result))
    else:
        st.subheader(titles[number])
        choice = progress.ask(question, number - 1)
        if choice is None:
            st.caption("Answer first: the figure and what to notice appear once you have chosen.")
        else:
            progress.verdict(question, choice)
            lesson.reveal(choices, result)
            progress.explore_link(lesson.explore(choices, result))
else:
    st.subheader("Check yourself")
    questions = quiz(spec, result)
    given = []
    for i, question in enumerate(questions):
        choice = progress.ask(question, len(LESSONS) + i)
        given.append(choice)
        if choice is not None:
            progress.verdict(question, choice)
    if all(choice is not None for choice in given):
        right = sum(choice == q.answer for choice, q in zip(given, questions, strict=True))
        st.markdown(f"**You got {right} of {len(questions)} right.**")

back, ahead = st.columns(2)
if number > 1:
    back.button("← Previous", on_click=progress.go, args=(number - 1,), key="lesson.back")
if number < QUIZ:
    ahead.button(
        "Next →" if number < QUIZ - 1 else "Check yourself →",
        on_click=progress.go,
        args=(number + 1,),
        key="lesson.next",
        type="primary",
    )
