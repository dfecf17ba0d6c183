"""A class of protocol-level sessions (:mod:`tests.streamlit_client`): a teacher's projector and N students'
phones against a running app, for ``tests/e2e/test_classroom_load.py`` and ``bench/classroom.py``.

The lesson, as the pages have it:

1. the teacher opens ``/classroom?picture=cat&present=1`` and presses **Open a class**; the page draws the
   join code (read off its HTML) and the first question's live counts, a fragment that asks the browser to
   rerun it every 1.5 s: from here on the teacher's client plays that timer (the projector polls);
2. **join phase**: student ``i`` opens ``/join?code=CODE`` (the QR code's link) at ``i / N`` of
   ``join_window`` seconds, types the code and presses **Join**; the app writes ``?seat=...`` into the address
   (a ``page_info_changed``), which the client keeps, as a phone's address bar does;
3. **answer phase**: student ``i`` picks choice ``i % n_choices`` at ``i / N`` of ``answer_window`` (the radio
   whose key the page gives it, ``_w_classroom.answer.CODE.0``); each answer's sending time is kept, and
   from then on the student's page plays its own slow timer (the page's 10 s check for the reveal), as a
   phone would; the first ``change_minds`` students then change their answer once (to the next choice),
   which must replace their answer, not add one;
4. the projector's counts are read off every run of its fragment (``**N** joined · **M** answered`` and one
   progress bar per choice, ``b) ... · 3 (10%)``) until it shows every answer, or ``settle_timeout``.

Each student's session has its own ``bv_replica`` cookie, so behind ``serve``'s nginx they spread over the
replicas as a class's phones do, and the teacher's stays on one.

The time from an answer to the projector's count: answers sorted by sending time, the k-th one is counted
once the projector shows ``answered >= k`` (it cannot show k before k answers were sent), so
``latency_k = (first projector run showing >= k) - (k-th sending time)``; exact when answers are stored in
the order they were sent, and never negative.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.streamlit_client import Run, StreamlitClient

#: The teacher's page in projector mode on the cat sample.
TEACHER_QUERY = {"picture": "cat", "present": "1"}
_CODE_HTML = re.compile(r">([A-Z0-9]{6})</div>")
_JOINED = re.compile(r"\*\*(\d+)\*\* joined · \*\*(\d+)\*\* answered")
_BAR = re.compile(r"^(?:\*\*✓ )?([a-z])\) .* · (\d+)(?: \(\d+%\))?(?: · right\*\*)?$", re.S)


@dataclass(frozen=True)
class Shown:
    """What the projector showed after one of its runs.

    Attributes:
        at: ``time.monotonic()`` when the run's ``script_finished`` arrived.
        joined, answered: the two numbers of "N joined · M answered".
        tally: the answers per choice, from the bars (choice ``c`` at index ``c``).
        run_s: the run's round trip, request to ``script_finished``.
    """

    at: float
    joined: int
    answered: int
    tally: tuple[int, ...]
    run_s: float


@dataclass
class Student:
    """One student's session: what it sent and when.

    Attributes:
        index: 0 to N-1.
        seat: the seat token the app wrote into the address (None: not joined).
        choice: the choice this student's answer holds now (None: none sent).
        answers: answers sent (a change of mind is a second one).
        join_s: from opening the page to the question drawn after Join (two requests).
        sent, acked: ``time.monotonic()`` when the answer left, and when its run ended with "Your answer is
            in" drawn.
        polls: runs of the page's own timer after answering.
        error: what went wrong, if anything.
    """

    index: int
    seat: str | None = None
    choice: int | None = None
    answers: int = 0
    join_s: float | None = None
    sent: float | None = None
    acked: float | None = None
    polls: int = 0
    error: str | None = None


@dataclass
class ClassRun:
    """What a class of clients did and saw.

    Attributes:
        code: the join code.
        n_choices: the first question's choices.
        students: every student, by index.
        shown: every projector reading, in order.
        joins_started, joins_done: when the join phase began and when the last student had joined.
        answers_started, answers_done: when the answer phase began and when the last answer was acked.
        settled: when the projector first showed every answer (None: it never did).
        projector_error: why the projector stopped polling early, if it did.
    """

    code: str
    n_choices: int
    students: list[Student]
    shown: list[Shown] = field(default_factory=list)
    joins_started: float = 0.0
    joins_done: float = 0.0
    answers_started: float = 0.0
    answers_done: float = 0.0
    settled: float | None = None
    projector_error: str | None = None

    @property
    def sent_tally(self) -> tuple[int, ...]:
        """Answers sent per choice (only answers the app acknowledged)."""
        tally = [0] * self.n_choices
        for student in self.students:
            if student.choice is not None and student.acked is not None:
                tally[student.choice] += 1
        return tuple(tally)

    @property
    def answers_sent(self) -> int:
        """Answers the students sent, changes of mind included."""
        return sum(s.answers for s in self.students)

    @property
    def errors(self) -> list[str]:
        return [f"student {s.index}: {s.error}" for s in self.students if s.error]

    @property
    def final(self) -> Shown | None:
        """The projector's last reading."""
        return self.shown[-1] if self.shown else None

    def latencies(self) -> list[float]:
        """Seconds from each answer to the projector's count of it (see the module docstring); answers the
        projector never counted are left out."""
        sends = sorted(s.sent for s in self.students if s.sent is not None and s.acked is not None)
        out = []
        for k, sent in enumerate(sends, start=1):
            seen = next((r.at for r in self.shown if r.answered >= k and r.at >= sent), None)
            if seen is not None:
                out.append(seen - sent)
        return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``, by linear interpolation (``nan`` when empty)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def read_projector(client: StreamlitClient, at: float, run_s: float) -> Shown | None:
    """The counts the teacher's page shows now, or None if it shows none (no class, an error)."""
    joined = answered = None
    bars: dict[int, int] = {}
    for text in client.texts():
        if (m := _JOINED.search(text)) is not None:
            joined, answered = int(m.group(1)), int(m.group(2))
        elif (b := _BAR.match(text)) is not None:
            bars[ord(b.group(1)) - ord("a")] = int(b.group(2))
    if joined is None or answered is None:
        return None
    return Shown(at, joined, answered, tuple(bars.get(c, 0) for c in range(len(bars))), run_s)


async def open_class(base_url: str, *, timeout: float = 180.0) -> tuple[StreamlitClient, str]:
    """The teacher's client, its class opened; ``(client, join code)``."""
    teacher = StreamlitClient(
        base_url, "classroom", TEACHER_QUERY, cookies={"bv_replica": "teacher"}, timeout=timeout
    )
    await teacher.connect()
    await teacher.run()
    await teacher.run(triggers=["classroom.open"])
    codes = [m.group(1) for text in teacher.texts() if (m := _CODE_HTML.search(text))]
    if not codes:
        raise RuntimeError(f"the teacher's page shows no join code: {teacher.texts()}")
    return teacher, codes[0]


async def run_class(
    base_url: str,
    students: int = 30,
    *,
    join_window: float = 5.0,
    answer_window: float = 5.0,
    settle_timeout: float = 60.0,
    run_timeout: float = 60.0,
    change_minds: int = 0,
    idle_before: float = 0.0,
    seed: int = 0,
    on_phase: Callable[[str], None] | None = None,
) -> ClassRun:
    """A whole lesson's first question (see the module docstring); every client is closed on the way out.

    Args:
        base_url: the app (``http://127.0.0.1:PORT``), nginx's when behind ``serve``.
        students: how many phones.
        join_window, answer_window: seconds over which the students' joins, then answers, are spread.
        settle_timeout: seconds the projector may take, after the last answer, to show them all.
        run_timeout: seconds one script run may take.
        change_minds: how many students change their answer once after it is in.
        idle_before: seconds the projector polls alone before the first student comes (a bench measures
            what polling costs by itself).
        seed: the random order in which students arrive.
        on_phase: called with ``"polling"``, ``"joins"``, ``"answers"``, ``"settled"`` as each begins
            (a bench reads the server's CPU there).
    """
    phase = on_phase or (lambda _name: None)
    teacher, code = await open_class(base_url, timeout=run_timeout)
    first = read_projector(teacher, time.monotonic(), 0.0)
    if first is None:
        await teacher.close()
        raise RuntimeError(f"the teacher's page shows no counts: {teacher.texts()}")
    result = ClassRun(code, len(first.tally), [Student(i) for i in range(students)])
    stop_projector, stop_students = asyncio.Event(), asyncio.Event()
    all_shown = asyncio.Event()

    def on_run(run: Run) -> None:
        shown = read_projector(teacher, run.finished, run.seconds)
        if shown is None:
            return
        result.shown.append(shown)
        if shown.answered >= students and result.answers_started:
            all_shown.set()

    phase("polling")
    projector = asyncio.create_task(teacher.poll(stop_projector, on_run))
    clients = [
        StreamlitClient(
            base_url, "join", {"code": code}, cookies={"bv_replica": f"student{i}"}, timeout=run_timeout
        )
        for i in range(students)
    ]
    order = list(range(students))
    random.Random(seed).shuffle(order)
    slot = {student: rank / students for rank, student in enumerate(order)}
    joined: list[asyncio.Future[None]] = [asyncio.get_running_loop().create_future() for _ in range(students)]
    answer_go = asyncio.Event()
    student_polls: list[asyncio.Task[int]] = []

    async def student(i: int) -> None:
        me, client = result.students[i], clients[i]
        try:
            await asyncio.sleep(slot[i] * join_window)
            start = time.monotonic()
            await client.connect()
            await client.run()
            client.set_value("_w_classroom.code", code)  # as typed, or filled in by the QR code's link
            await client.run(triggers=["classroom.join"])
            me.seat = client.query.get("seat")
            if me.seat is None:
                raise RuntimeError(f"no seat in the address after Join: {client.texts()[:6]}")
            me.join_s = time.monotonic() - start
        except Exception as error:  # noqa: BLE001 - a student's failure is counted, not fatal
            me.error = f"join: {error!r}"
            return
        finally:
            joined[i].set_result(None)
        await answer_go.wait()
        try:
            await asyncio.sleep(slot[i] * answer_window)
            key = f"_w_classroom.answer.{code}.0"
            for choice in [i % result.n_choices] + ([(i + 1) % result.n_choices] if i < change_minds else []):
                text = client.choose(key, choice)
                sent = time.monotonic()
                me.answers += 1
                run = await client.run()
                if not any(f"Your answer is in: {text[:2]}" in t for t in run.texts()):
                    raise RuntimeError(f"the answer {text[:2]} was not taken: {run.texts()[:6]}")
                me.choice = choice
                if me.sent is None:  # the projector's count moves with the first answer only
                    me.sent, me.acked = sent, run.finished
        except Exception as error:  # noqa: BLE001
            me.error = f"answer: {error!r}"
            return
        if client.auto_reruns:  # the page's slow check for the reveal, as a phone plays it
            student_polls.append(asyncio.create_task(client.poll(stop_students)))

    try:
        await asyncio.sleep(idle_before)
        phase("joins")
        result.joins_started = time.monotonic()
        tasks = [asyncio.create_task(student(i)) for i in range(students)]
        await asyncio.gather(*joined)
        result.joins_done = time.monotonic()
        phase("answers")
        result.answers_started = time.monotonic()
        answer_go.set()
        await asyncio.gather(*tasks)
        result.answers_done = time.monotonic()
        with_answers = sum(s.acked is not None for s in result.students)
        if result.shown and result.shown[-1].answered >= with_answers:
            all_shown.set()
        try:
            if with_answers == students:
                await asyncio.wait_for(all_shown.wait(), settle_timeout)
            else:  # some failed: give the projector a few polls to show what did arrive
                await asyncio.sleep(min(settle_timeout, 3 * max(teacher.auto_reruns.values(), default=1.5)))
        except TimeoutError:
            pass
        result.settled = next((r.at for r in result.shown if r.answered >= students), None)
        if projector.done() and projector.exception() is not None:
            result.projector_error = repr(projector.exception())
        phase("settled")
    finally:
        stop_projector.set()
        stop_students.set()
        try:
            await asyncio.wait_for(projector, run_timeout)
        except Exception as error:  # noqa: BLE001 - reported with the counts
            result.projector_error = repr(error)
        for task in student_polls:  # a phone's check cut short at the end changes no count
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, run_timeout)
        await asyncio.gather(teacher.close(), *(c.close() for c in clients), return_exceptions=True)
    return result
