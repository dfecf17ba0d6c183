"""What class mode's two pages draw: the teacher's controls and projector view, and a student's join form and
question.

Only the projector polls: :func:`live_counts` is a fragment that reruns every :data:`PROJECTOR_POLL_S`
seconds (one session per class, 66 to 80 ms of server CPU a rerun, measured). A student's page reruns only
when the student acts, plus a slow check (:data:`STUDENT_POLL_S`) while the student waits for the reveal
or the next question: 30 students checking every second saturated the 2-core server, every 5 s it kept up
at half a core, so 10 s costs about a quarter of a core, and a "Check for the next question" button is
always there for the impatient.

Every control and answer goes through a callback that keeps the refusal in the session; the next run shows
it (:func:`show_notice`) above the page's content, because a callback cannot draw where the page wants.
Nicknames are drawn with ``st.text`` (plain text): no HTML, and no Markdown either (a nickname like
``![x](http://...)`` would otherwise load a picture from anywhere).
"""

from __future__ import annotations

import html
import math
from urllib.parse import urlsplit, urlunsplit

import streamlit as st

import backbone_viz as bv
import webui
from webui.classroom import qr
from webui.classroom.errors import ClassError, StorageError
from webui.classroom.store import ClassInfo, ClassStore, Counts, normalize_code
from webui.lessons import LESSONS
from webui.lessons.progress import LETTERS, Question
from webui.shell import projector
from webui.shell.state import Choices
from webui.views import classroom_state as cs

#: Seconds between the projector's reads of the class's answers (the issue asks for 1 to 2).
PROJECTOR_POLL_S = 1.5
#: Seconds between a waiting student's checks (see the module docstring).
STUDENT_POLL_S = 10.0
#: Session key of a refusal a callback met, shown on the next run.
NOTICE = "classroom.notice"
#: Session key of a sentence for the teacher after a control that worked (a closed class).
DONE = "classroom.done"
#: Session key: the teacher clicked "Close the class" once and is asked to confirm.
CLOSING = "classroom.closing"
#: Most nicknames the projector lists (a lecture hall's would fill the screen).
NICKNAMES_SHOWN = 30


def show_notice() -> None:
    """The refusal or the confirmation a callback left for this run."""
    notice = st.session_state.pop(NOTICE, None)
    if notice is not None:
        cs.show_refusal(notice)
    done = st.session_state.pop(DONE, None)
    if done is not None:
        st.success(done, icon=":material/check_circle:")


def _keep(error: ClassError | StorageError) -> None:
    st.session_state[NOTICE] = error


def choice_text(question: Question, choice: int) -> str:
    return f"{LETTERS[choice]}) {question.choices[choice]}"


# ------------------------------------------------------------------------------------------ teacher


def open_class(choices: Choices) -> None:
    """Opens a class pinned to ``choices`` and keeps its control in this session. Usable as on_click."""
    try:
        code, key = cs.store().open_class(
            choices.backbone, choices.weights, cs.pinned_picture(choices.image), ttl=cs.CLASS_TTL_S
        )
    except (ClassError, StorageError) as error:
        _keep(error)
        return
    st.session_state[cs.CONTROL] = cs.Control(code, key, choices)
    st.session_state.pop(CLOSING, None)


def take_control(link: tuple[str, str], current: Choices) -> None:
    """Takes control of a class with a teacher's link ``(code, key)``, if the key controls it; a forged or
    old link controls nothing and says so."""
    code, key = link
    try:
        info = cs.store().teacher(code, key)
    except (ClassError, StorageError) as error:
        cs.show_refusal(error)
        return
    picture = cs.picture_for(info, current.image)
    pinned = None if picture is None else Choices(info.backbone, info.weights, picture)
    st.session_state[cs.CONTROL] = cs.Control(info.code, key, pinned)


def teacher_info(control: cs.Control) -> ClassInfo | None:
    """The class this session controls, or None (it has ended or was closed: the control is dropped)."""
    try:
        return cs.store().teacher(control.code, control.key)
    except ClassError as error:
        st.session_state.pop(cs.CONTROL, None)
        cs.show_refusal(error)
        return None
    except StorageError as error:
        cs.show_refusal(error)
        st.stop()
        raise  # unreachable: st.stop() raises


def _control(action: str, *args: object) -> None:
    control: cs.Control | None = st.session_state.get(cs.CONTROL)
    if control is None:
        return
    try:
        getattr(cs.store(), action)(control.code, control.key, *args)
    except (ClassError, StorageError) as error:
        _keep(error)


def _close() -> None:
    control: cs.Control | None = st.session_state.get(cs.CONTROL)
    st.session_state.pop(CLOSING, None)
    if control is None:
        return
    try:
        cs.store().close(control.code, control.key)
    except (ClassError, StorageError) as error:
        _keep(error)
        return
    st.session_state.pop(cs.CONTROL, None)
    st.session_state[DONE] = f"The class {control.code} is closed: its seats and answers are deleted."


def controls(info: ClassInfo, slots: int) -> None:
    """The teacher's row: which question, Reveal, Next question, Close the class (asked twice)."""
    key = "_w_classroom.slot"
    st.session_state[key] = min(info.question, slots - 1)
    pick, reveal, ahead, close = st.columns([3, 1.2, 1.2, 1.2], vertical_alignment="bottom")
    pick.selectbox(
        "Question",
        range(slots),
        format_func=cs.slot_title,
        key=key,
        on_change=lambda: _control("set_question", st.session_state[key]),
    )
    reveal.button(
        "Reveal",
        icon=":material/visibility:",
        type="primary",
        disabled=info.revealed,
        on_click=_control,
        args=("reveal",),
        key="classroom.reveal",
        width="stretch",
    )
    ahead.button(
        "Next question",
        icon=":material/arrow_forward:",
        disabled=info.question + 1 >= slots,
        on_click=_control,
        args=("next_question",),
        key="classroom.next",
        width="stretch",
    )
    if not st.session_state.get(CLOSING):
        close.button(
            "Close the class",
            icon=":material/close:",
            on_click=lambda: st.session_state.__setitem__(CLOSING, True),
            key="classroom.close",
            width="stretch",
        )
    else:
        st.warning(
            "**Close the class?** Every seat and answer is deleted and the code stops working.",
            icon=":material/warning:",
        )
        yes, no, _ = st.columns([1.5, 1, 3])
        yes.button("Close and delete", type="primary", on_click=_close, key="classroom.close_yes")
        no.button(
            "Keep it open", on_click=lambda: st.session_state.pop(CLOSING, None), key="classroom.close_no"
        )


def join_address() -> str | None:
    """The join page's full address, from the address this browser opened (None when unknown, as in a
    test without a browser). The same host and port as the teacher's page: students must reach it."""
    url = st.context.url
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0] + "/join", "", ""))


def code_card(code: str, *, qr_width: int = 210) -> None:
    """The join code in large letters, the address to type, and a QR code of the join link."""
    # The code holds only the store's alphabet (normalize_code), escaped all the same.
    st.html(
        f'<div style="font-size:3.2rem;font-weight:700;letter-spacing:0.18em;line-height:1.1">'
        f"{html.escape(normalize_code(code))}</div>"
    )
    address = join_address()
    if address is None:
        st.markdown("Open **Join a class** in this app's menu and type the code.")
        return
    link = qr.join_url(address, code)
    st.markdown(f"Scan, or open **{address.split('://', 1)[1]}**")
    st.image(qr.join_qr_png(link), width=qr_width)


def teacher_link(control: cs.Control) -> None:
    """The teacher's link (to keep control after a reload, or from a phone), folded; the page draws it only
    outside projector mode, so that the projector never shows it."""
    with st.expander("Keep control from another device or after a reload", icon=":material/key:"):
        st.markdown(
            "Open this link on your own device to control this class there. **Anyone with it controls the "
            "class:** do not project it or share it."
        )
        base = st.context.url or ""
        base = urlunsplit((*urlsplit(base)[:3], "", "")) if base else ""
        st.code(f"{base}?code={control.code}&teacher={control.key}", language=None, wrap_lines=True)


def nicknames(code: str) -> None:
    """The nicknames students gave, as plain text."""
    try:
        names = cs.store().nicknames(code)
    except (ClassError, StorageError):
        return  # the live counts below say what is wrong
    if names:
        more = len(names) - NICKNAMES_SHOWN
        shown = ", ".join(names[:NICKNAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")
        st.text(f"Joined: {shown}")


def tally(question: Question, counts: Counts, *, revealed: bool, short: bool) -> None:
    """One bar per choice, filled by the share of the answers it got; after the reveal the right one is
    marked. ``short``: letters only (a narrow column beside the figure), else each choice's text."""
    total = max(counts.answered, 1)
    for choice, count in enumerate(counts.tally):
        label = LETTERS[choice] + ")" if short else choice_text(question, choice)
        share = f"{count} ({count / total:.0%})" if counts.answered else "0"
        right = revealed and choice == question.answer
        text = f"**✓ {label} · {share} · right**" if right else f"{label} · {share}"
        st.progress(count / total, text=text)


@st.fragment(run_every=PROJECTOR_POLL_S)
def live_counts(code: str, slot: int, question: Question, revealed: bool, short: bool) -> None:
    """How many joined and answered, and the answers per choice, read again every :data:`PROJECTOR_POLL_S`
    seconds; when another device moved the class on or revealed, the whole page is drawn again."""
    try:
        counts = cs.store().counts(code, slot, n_choices=len(question.choices))
    except ClassError:
        st.rerun()  # closed or ended meanwhile: the page says so
    except StorageError as error:
        cs.show_refusal(error)
        return
    if not counts.current or counts.revealed != revealed:
        st.rerun()
    st.markdown(
        f"**{counts.joined}** joined · **{counts.answered}** answered"
        + ("" if counts.joined == 0 or revealed else f" · {counts.joined - counts.answered} still thinking")
    )
    tally(question, counts, revealed=revealed, short=short)


def reveal_figure(
    info: ClassInfo, control: cs.Control, question: Question, activations: bv.Activations | None
) -> None:
    """The lesson's real figure for the class's backbone and picture (through the gateway, as on the
    lessons page), or, for a quiz question, why the answer is right."""
    st.success(f"**The answer: {choice_text(question, question.answer)}.** {question.why}")
    if info.question >= len(LESSONS):
        return
    if control.choices is None:
        st.info(
            "The class's picture was your own, and this session does not have it: pick it again in the "
            "sidebar to show the lesson's figure.",
            icon=":material/image:",
        )
        return
    lesson, pinned = LESSONS[info.question], control.choices
    if lesson.gradcam:
        result = webui.analysis(pinned.backbone, pinned.weights, pinned.image, key="classroom.load")
    else:
        result = activations
    if result is not None:
        lesson.reveal(pinned, result)


# ------------------------------------------------------------------------------------------ student


def fold_sidebar() -> None:
    """Folds the sidebar once per page load: a student's phone needs the question, not the backbone
    pickers (the sidebar can still be opened)."""
    st.html(projector.FOLD_JS, unsafe_allow_javascript=True)


def _write_seat(seat: cs.SeatRef) -> None:
    st.session_state[cs.SEAT] = seat
    st.query_params.from_dict({"code": seat.code, "seat": seat.token})


def _join(store: ClassStore, code: str, token: str | None, nickname: str | None) -> cs.SeatRef | None:
    """Joins (or rejoins with ``token``) after checking this session's pause; a refusal is shown, and a
    wrong code counts towards the pause."""
    wait = cs.paused_for()
    if wait > 0:
        st.warning(
            f"**Too many wrong codes in a row.** Wait {math.ceil(wait)} seconds, then type the code shown on "
            "the projector.",
            icon=":material/hourglass_top:",
        )
        return None
    try:
        seat = store.join(code, token, nickname)
    except ClassError as error:
        if error.reason in ("bad_code", "no_class", "ended"):
            cs.count_wrong_code()
        cs.show_refusal(error)
        return None
    ref = cs.SeatRef(seat.code, seat.token, seat.nickname)
    _write_seat(ref)
    return ref


def student_seat() -> cs.SeatRef | None:
    """This device's seat: from the session, or taken back from the URL's ``code`` and ``seat`` (a phone
    that slept, a reload, a late visit); None when the student has not joined yet."""
    seat: cs.SeatRef | None = st.session_state.get(cs.SEAT)
    params = st.query_params
    code, token = params.get("code"), params.get("seat")
    if seat is not None and (token is None or token == seat.token):
        if token is None:
            _write_seat(seat)
        return seat
    if code is None or token is None:
        return None
    try:
        return _join(cs.store(), code, token, None)
    except StorageError as error:
        cs.show_refusal(error)
        st.stop()
        raise


def join_form() -> None:
    """The code (from the QR code's link, or typed), an optional nickname (off by default), and Join."""
    asked = st.query_params.get("code", "")
    st.session_state.setdefault("_w_classroom.code", asked if len(asked) <= 32 else "")
    code = st.text_input("Class code", key="_w_classroom.code", placeholder="the code on the projector")
    named = st.checkbox("Add a nickname", key="_w_classroom.named", help="Off: you answer without a name.")
    nickname = None
    if named:
        nickname = st.text_input("Nickname", key="_w_classroom.nickname", max_chars=32)
    if st.button("Join", type="primary", icon=":material/login:", key="classroom.join"):
        try:
            seat = _join(cs.store(), code, None, nickname or None)
        except StorageError as error:
            cs.show_refusal(error)
            return
        if seat is not None:
            st.rerun()


def send_answer(
    store: ClassStore, seat: cs.SeatRef, slot: int, choice: int, n_choices: int
) -> ClassError | StorageError | None:
    """Sends a student's answer; returns the refusal (after the reveal, moved on, out of range, too many), or
    None when it is stored."""
    try:
        store.answer(seat.code, seat.token, slot, choice, n_choices)
    except (ClassError, StorageError) as error:
        return error
    return None


def _answered() -> None:
    pending = st.session_state.get("_classroom.pending")
    if pending is None:
        return
    seat, slot, n_choices, key = pending
    choice = st.session_state.get(key)
    if choice is not None and (error := send_answer(cs.store(), seat, slot, choice, n_choices)) is not None:
        _keep(error)


def leave() -> None:
    """Forgets this device's seat (to join another class). Usable as on_click."""
    st.session_state.pop(cs.SEAT, None)
    for name in ("seat", "code"):
        if name in st.query_params:
            del st.query_params[name]


def student_question(seat: cs.SeatRef) -> None:
    """The class's current question: the choices (one answer, changeable until the reveal), then the right
    answer and the student's own; a button and a slow check for the next question."""
    store = cs.store()
    try:
        info = store.info(seat.code)
    except ClassError as error:
        cs.show_refusal(error)
        st.button("Join another class", on_click=leave, key="classroom.leave")
        return
    spec = bv.get_spec(info.backbone)
    question = cs.question_at(
        info.question,
        spec,
        lambda: webui.activations(
            info.backbone, info.weights, cs.shape_picture(info), key="classroom.load", offer_bundled=False
        ),
    )
    who = f"Class {info.code} · {cs.slot_title(info.question)}"
    st.caption(who)
    if seat.nickname:
        st.text(f"Your nickname: {seat.nickname}")
    if question is None:
        st.info("There is no question to answer right now.", icon=":material/hourglass_top:")
        _waiting(info)
        return
    mine = store.my_answer(info.code, seat.token, info.question)
    key = f"_w_classroom.answer.{info.code}.{info.question}"
    st.session_state[key] = mine  # what the class's database holds, so a refused answer shows the kept one
    st.session_state["_classroom.pending"] = (seat, info.question, len(question.choices), key)
    st.radio(
        question.text,
        range(len(question.choices)),
        format_func=lambda i: choice_text(question, i),
        key=key,
        disabled=info.revealed,
        on_change=_answered,
    )
    if info.revealed:
        if mine == question.answer:
            st.success(f"**Right: {choice_text(question, question.answer)}.** {question.why}")
        else:
            yours = (
                "You did not answer this one."
                if mine is None
                else f"You answered {choice_text(question, mine)}."
            )
            st.warning(
                f"**The answer: {choice_text(question, question.answer)}.** {yours} {question.why}",
                icon=":material/lightbulb:",
            )
    elif mine is None:
        st.caption("Tap a choice. You can change it until your teacher reveals the answer.")
    else:
        st.success(
            f"**Your answer is in: {choice_text(question, mine)}.** You can change it until the reveal.",
            icon=":material/check_circle:",
        )
    if info.revealed or mine is not None:
        _waiting(info)
    st.button("Check for the next question", icon=":material/refresh:", key="classroom.check")


@st.fragment(run_every=STUDENT_POLL_S)
def _waiting_check(code: str, slot: int, revealed: bool) -> None:
    try:
        info = cs.store().info(code)
    except (ClassError, StorageError):
        st.rerun()
    if info.question != slot or info.revealed != revealed:
        st.rerun()


def _waiting(info: ClassInfo) -> None:
    st.caption(
        "Waiting for your teacher: this page looks for the "
        + ("next question" if info.revealed else "answer")
        + f" every {STUDENT_POLL_S:g} seconds."
    )
    _waiting_check(info.code, info.question, info.revealed)
