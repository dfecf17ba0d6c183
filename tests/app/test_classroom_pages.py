"""Class mode's pages through AppTest: a teacher (Class mode) and students (Join a class) as separate sessions
of one process, which share the class store as the real app's sessions do. Each test gets its own SQLite file
(``BACKBONE_VIZ_CLASSES_FILE``), so no two tests share a class.

The bundled EfficientNet-Lite0 on the cat, no network.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from tests.app.helpers import texts
from tests.conftest import sample
from webui.classroom.errors import ClassError
from webui.classroom.store import DATABASE_FILE_ENV, DATABASE_URL_ENV, ClassStore
from webui.lessons import LESSONS, quiz
from webui.lessons.progress import LETTERS
from webui.views import classroom_state as cs
from webui.views import classroom_views as views

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TIMEOUT = 120
SPEC = bv.get_spec("efficientnet_lite0")
_STORE_AT = cs._store_at  # the cached function itself, even while a test replaces it
KINDS = ("markdown", "caption", "subheader", "success", "warning", "info", "error", "text", "code", "title")


@pytest.fixture(autouse=True)
def class_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's own class database."""
    path = tmp_path / "classes.sqlite3"
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv(DATABASE_FILE_ENV, str(path))
    yield path
    _STORE_AT.clear()  # the next test's file gets its own store


@pytest.fixture(autouse=True, scope="module")
def quiet() -> Iterator[None]:
    """The tests read the class store outside a script run, as a second device would; Streamlit's caches
    then warn once per call that no run is going on."""
    logger = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _store() -> ClassStore:
    return cs.store()


def _rows(path: Path) -> dict[str, int]:
    import sqlite3

    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        return {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("classes", "seats", "answers")
        }


def _teacher(*, present: bool = False, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"picture": "cat", **({"present": "1"} if present else {}), **(query or {})})
    at.switch_page("app_pages/classroom.py")
    return at.run()


def _student(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.switch_page("app_pages/join.py")
    return at.run()


def _open(present: bool = False) -> tuple[AppTest, cs.Control]:
    at = _teacher(present=present)
    assert not at.exception
    at.button(key="classroom.open").click().run()
    assert not at.exception
    return at, at.session_state[cs.CONTROL]


def _join(code: str, *, nickname: str | None = None) -> AppTest:
    at = _student({"code": code})
    assert at.text_input(key="_w_classroom.code").value == code  # the QR code's link fills it in
    if nickname is not None:
        at.checkbox(key="_w_classroom.named").check().run()
        at.text_input(key="_w_classroom.nickname").input(nickname).run()
    at.button(key="classroom.join").click().run()
    assert not at.exception
    return at


def _answer_radio(at: AppTest, code: str, slot: int):
    return at.radio(key=f"_w_classroom.answer.{code}.{slot}")


def _all_text(at: AppTest) -> str:
    """Every element's protobuf of the last run, as text: whatever the page sends to the browser."""
    parts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def _progress(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


# ------------------------------------------------------------------------------------------ teacher


def test_teacher_opens_asks_reveals_moves_on_and_closes(class_file: Path) -> None:
    at = _teacher()
    assert not at.exception
    # Before opening: what the class will be pinned to, from the sidebar, and nothing written.
    before = texts(at, ("markdown",))
    assert SPEC.title in before and "A tabby cat" in before and f"the {len(LESSONS)} lessons'" in before
    assert _rows(class_file) == {}

    at.button(key="classroom.open").click().run()
    assert not at.exception
    control: cs.Control = at.session_state[cs.CONTROL]
    info = _store().teacher(control.code, control.key)
    assert (info.backbone, info.weights, info.picture, info.question, info.revealed) == (
        "efficientnet_lite0", "pretrained", "cat", 0, False,
    )  # fmt: skip
    shown = texts(at, KINDS)
    first = LESSONS[0].question(SPEC)
    assert first.text in shown and "**0** joined · **0** answered" in shown
    assert len(_progress(at)) == len(first.choices)
    # The list of questions: every lesson, then the quiz.
    options = at.selectbox(key="_w_classroom.slot").options
    n_quiz = len(quiz(SPEC, _activations()))
    assert len(options) == len(LESSONS) + n_quiz and options[-1] == f"Check yourself, question {n_quiz}"

    # Two students answer; the counts follow.
    a, b = _join(control.code), _join(control.code)
    _answer_radio(a, control.code, 0).set_value(first.answer).run()
    _answer_radio(b, control.code, 0).set_value((first.answer + 1) % len(first.choices)).run()
    at.run()
    shown = texts(at, KINDS)
    assert "**2** joined · **2** answered" in shown
    bars = _progress(at)
    assert bars[first.answer].endswith("1 (50%)") and "right" not in "".join(bars)

    # Reveal: the lesson's figure, the right one marked, Reveal disabled.
    at.button(key="classroom.reveal").click().run()
    assert not at.exception
    assert _store().teacher(control.code, control.key).revealed
    bars = _progress(at)
    assert bars[first.answer] == f"**✓ {LETTERS[first.answer]}) · 1 (50%) · right**"
    assert f"The answer: {LETTERS[first.answer]}) {first.choices[first.answer]}" in texts(at, KINDS)
    assert at.image, "the lesson's figure"
    assert at.button(key="classroom.reveal").disabled

    # Next question, then another picked from the list.
    at.button(key="classroom.next").click().run()
    assert not at.exception
    assert _store().teacher(control.code, control.key).question == 1
    assert LESSONS[1].question(SPEC).text in texts(at, KINDS)
    at.selectbox(key="_w_classroom.slot").select(len(LESSONS)).run()  # the quiz's first question
    assert not at.exception
    assert _store().teacher(control.code, control.key).question == len(LESSONS)
    assert quiz(SPEC, _activations())[0].text in texts(at, KINDS)

    # Close: asked twice, then every row is gone.
    at.button(key="classroom.close").click().run()
    assert _rows(class_file)["classes"] == 1
    at.button(key="classroom.close_yes").click().run()
    assert not at.exception
    assert _rows(class_file) == {"classes": 0, "seats": 0, "answers": 0}
    assert cs.CONTROL not in at.session_state
    assert any("is closed" in s.value for s in at.success)
    # A student still on the page is told, and can leave.
    a.run()
    assert any("No class has the code" in w.value for w in a.warning)


@functools.cache
def _activations() -> bv.Activations:
    """The cat's activations by the bundled backbone, made by the test itself (not the app)."""
    return bv.layer_activations(bv.load_backbone("efficientnet_lite0"), sample("cat"))


def test_projector_view_never_shows_the_teacher_key() -> None:
    at, control = _open(present=True)
    a = _join(control.code)
    _answer_radio(a, control.code, 0).set_value(0).run()
    for step in (None, "classroom.reveal", "classroom.next"):
        if step is not None:
            at.button(key=step).click().run()
        assert not at.exception
        assert control.key not in _all_text(at)
        assert control.key not in str(at.query_params)
        assert control.code in _all_text(at)  # the join code is projected
    # Outside projector mode the teacher's link is offered (folded), with the key.
    at.session_state["present"] = False
    at.run()
    assert any(control.key in c.value for c in at.code)


def test_teacher_link_is_read_once_and_dropped_from_the_address() -> None:
    _, control = _open()
    other = _teacher(query={"code": control.code, "teacher": control.key})
    assert not other.exception
    assert "teacher" not in other.query_params and "code" not in other.query_params
    assert not other.toast  # the link's names are class mode's, not "a part of this link not used"
    assert other.session_state[cs.CONTROL].code == control.code
    other.button(key="classroom.next").click().run()
    assert _store().info(control.code).question == 1


@pytest.mark.parametrize(
    "forged",
    ["random", "empty", "the code", "another class's key", "sql"],
)
def test_a_forged_teacher_link_controls_nothing(forged: str) -> None:
    _, control = _open()
    _, other_key = _store().open_class("efficientnet_lite0", "pretrained", "cat")
    key = {
        "random": "A" * 22,
        "empty": "",
        "the code": control.code,
        "another class's key": other_key,
        "sql": "x' OR '1'='1",
    }[forged]
    at = _teacher(query={"code": control.code, "teacher": key})
    assert not at.exception
    assert cs.CONTROL not in at.session_state
    assert any("does not control this class" in w.value for w in at.warning)
    assert at.button(key="classroom.open")  # only the offer to open a class of one's own
    assert "teacher" not in at.query_params
    assert _store().info(control.code).question == 0


# ------------------------------------------------------------------------------------------ student


def test_student_joins_answers_changes_and_is_refused_after_the_reveal() -> None:
    teacher, control = _open()
    question = LESSONS[0].question(SPEC)
    at = _join(control.code)
    seat: cs.SeatRef = at.session_state[cs.SEAT]
    assert at.query_params["seat"] == seat.token and at.query_params["code"] == control.code
    assert question.text == _answer_radio(at, control.code, 0).label
    assert _answer_radio(at, control.code, 0).value is None

    _answer_radio(at, control.code, 0).set_value(2).run()
    assert _store().my_answer(control.code, seat.token, 0) == 2
    assert any("Your answer is in: c)" in s.value for s in at.success)
    _answer_radio(at, control.code, 0).set_value(question.answer).run()  # changed: still one row
    assert _store().my_answer(control.code, seat.token, 0) == question.answer
    assert _store().counts(control.code, 0).answered == 1
    assert "every 10 seconds" in texts(at, ("caption",))  # waits slowly, only after answering

    teacher.button(key="classroom.reveal").click().run()
    at.run()
    radio = _answer_radio(at, control.code, 0)
    assert radio.disabled and radio.value == question.answer
    assert any(f"Right: {LETTERS[question.answer]})" in s.value for s in at.success)
    # An answer after the reveal is refused: the answer kept is the one before.
    refused = views.send_answer(_store(), seat, 0, 0, len(question.choices))
    assert isinstance(refused, ClassError) and refused.reason == "revealed"
    assert _store().my_answer(control.code, seat.token, 0) == question.answer

    # The next question reaches the student with the button.
    teacher.button(key="classroom.next").click().run()
    at.button(key="classroom.check").click().run()
    assert _answer_radio(at, control.code, 1).label == LESSONS[1].question(SPEC).text


def test_an_answer_sent_from_a_page_drawn_before_the_reveal_is_refused_and_said() -> None:
    teacher, control = _open()
    at = _join(control.code)  # drawn before the reveal: the choices are open
    teacher.button(key="classroom.reveal").click().run()
    _answer_radio(at, control.code, 0).set_value(1).run()
    assert not at.exception
    assert any("answers to this question are closed" in w.value for w in at.warning)
    assert _store().counts(control.code, 0).answered == 0
    assert _answer_radio(at, control.code, 0).disabled


def test_a_student_who_comes_back_with_the_seat_in_the_url_keeps_the_answer() -> None:
    _, control = _open()
    at = _join(control.code, nickname="Ada")
    _answer_radio(at, control.code, 0).set_value(3).run()
    url = dict(at.query_params)
    # A new session (the phone slept past Streamlit's 120 s) with the same address.
    back = _student({"code": url["code"][0] if isinstance(url["code"], list) else url["code"],
                     "seat": at.session_state[cs.SEAT].token})  # fmt: skip
    assert not back.exception
    assert back.session_state[cs.SEAT].token == at.session_state[cs.SEAT].token
    assert _answer_radio(back, control.code, 0).value == 3
    assert _store().counts(control.code, 0).joined == 1
    assert any(t.value == "Your nickname: Ada" for t in back.text)
    assert not back.toast  # code and seat are the join page's own names, not unused parts of a link


def test_a_nickname_is_off_by_default_and_shown_as_text() -> None:
    teacher, control = _open()
    at = _student({"code": control.code})
    assert at.checkbox(key="_w_classroom.named").value is False
    assert not at.text_input or all(t.key != "_w_classroom.nickname" for t in at.text_input)
    _join(control.code, nickname="<b>Bob</b> **x**")
    teacher.run()
    names = [t.value for t in teacher.text]
    assert "Joined: <b>Bob</b> **x**" in names  # st.text: drawn as it was typed, neither HTML nor Markdown
    assert "<b>Bob</b>" not in texts(teacher, ("markdown",))


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "code",
    ["", "K7P2Q", "A" * 1_000_000, "КЛАСС1", "😀😀😀😀😀😀", "'; DROP TABLE seats;--", "ZZZZZZ"],
    ids=["empty", "short", "1MB", "cyrillic", "emoji", "sql", "no-such-class"],
)
def test_a_bad_code_gets_a_sentence_and_writes_nothing(class_file: Path, code: str) -> None:
    _, control = _open()
    if code == "ZZZZZZ" and control.code == code:
        pytest.skip("drew the very code")
    before = _rows(class_file)
    at = _student()
    at.text_input(key="_w_classroom.code").set_value(code).run()
    at.button(key="classroom.join").click().run()
    assert not at.exception
    warned = " ".join(w.value for w in at.warning)
    assert "not a class code" in warned or "No class has the code" in warned
    assert cs.SEAT not in at.session_state and "seat" not in at.query_params
    assert _rows(class_file) == before


def test_a_bad_code_in_the_address_is_not_used() -> None:
    at = _student({"code": "A" * 5000})
    assert not at.exception
    assert at.text_input(key="_w_classroom.code").value == ""  # not prefilled with an absurd code
    at = _student({"code": "ZZZZZZ", "seat": "B" * 22})
    assert not at.exception
    assert any("No class has the code" in w.value for w in at.warning)
    assert cs.SEAT not in at.session_state


def test_wrong_codes_make_the_session_pause(class_file: Path) -> None:
    _, control = _open()
    at = _student()
    for _ in range(cs.WRONG_CODES_MAX):
        at.text_input(key="_w_classroom.code").set_value(
            "ZZZZZ2" if control.code != "ZZZZZ2" else "ZZZZZ3"
        ).run()
        at.button(key="classroom.join").click().run()
    seats = _rows(class_file)["seats"]
    # Now even the right code waits, and nothing is written.
    at.text_input(key="_w_classroom.code").set_value(control.code).run()
    at.button(key="classroom.join").click().run()
    assert any("Too many wrong codes" in w.value for w in at.warning)
    assert cs.SEAT not in at.session_state and _rows(class_file)["seats"] == seats
    # After the pause the right code works.
    at.session_state[cs.WRONG] = [t - cs.PAUSE_S for t in at.session_state[cs.WRONG]]
    at.button(key="classroom.join").click().run()
    assert cs.SEAT in at.session_state


def test_answers_are_limited_per_seat_and_choices_out_of_range_refused() -> None:
    _, control = _open()
    at = _join(control.code)
    seat: cs.SeatRef = at.session_state[cs.SEAT]
    refusals = [views.send_answer(_store(), seat, 0, 1, 4) for _ in range(50)]
    assert refusals[0] is None and all(
        isinstance(r, ClassError) and r.reason == "too_many" for r in refusals[-40:]
    )
    with pytest.raises(ClassError) as refused:
        _store().answer(control.code, seat.token, 0, 1, 4)
    assert refused.value.reason == "too_many"
    assert _store().counts(control.code, 0).answered == 1  # one row however many were sent
    # The page shows the limit's sentence.
    _answer_radio(at, control.code, 0).set_value(2).run()
    assert any("Too many answers" in w.value for w in at.warning)
    assert _answer_radio(at, control.code, 0).value == 1  # the kept answer, not the refused one
    # Out of range.
    for choice in (4, -1, 99):
        with pytest.raises(ClassError) as out:
            ClassStore.answer(_store(), control.code, seat.token, 0, choice, 4)
        assert out.value.reason == "bad_choice"


def test_a_storage_failure_is_an_error_a_teacher_understands(monkeypatch: pytest.MonkeyPatch) -> None:
    from webui.classroom.errors import StorageError

    def broken(url: str) -> ClassStore:
        raise StorageError("The class database cannot be used right now.", "Check the database.")

    monkeypatch.setattr(cs, "_store_at", broken)
    at = _teacher()
    at.button(key="classroom.open").click().run()
    assert not at.exception
    assert any("cannot reach its database" in e.value for e in at.error)
    at = _student()
    at.text_input(key="_w_classroom.code").set_value("K7P2QX").run()
    at.button(key="classroom.join").click().run()
    assert not at.exception
    assert any("cannot reach its database" in e.value for e in at.error)


def test_the_database_url_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://u@127.0.0.1:1/x")
    assert cs.database_url() == "postgresql://u@127.0.0.1:1/x"
    monkeypatch.delenv(DATABASE_URL_ENV)
    assert cs.database_url().startswith("sqlite:///") and cs.database_url().endswith("classes.sqlite3")
