"""Class mode under a class's load, without a browser: 30 protocol-level sessions (tests/streamlit_client.py)
join and answer one question within 10 s while the teacher's projector polls, and every answer is counted
exactly once: the projector's numbers (read off the teacher's page) and the class database's counts must
equal what the students sent; five students change their mind and must replace their answer, not add one.

Two setups, each the way a school runs it (``python -m backbone_viz serve``, a warm start first):

* one replica on the default SQLite file (WAL), nginx in front when installed;
* two replicas behind nginx sharing a throwaway PostgreSQL cluster (tests/postgres.py) through
  ``BACKBONE_VIZ_DATABASE_URL``, which ``serve`` hands to its replicas with the rest of its environment;
  the students' sessions spread over both replicas (their ``bv_replica`` cookies), the projector's stays
  on one, so its counts come from answers another process wrote.

Each setup takes about 25 s on 2 cores (server start included); ``bench/classroom.py`` prints the timings and the
server's CPU per answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

import backbone_viz as bv
from tests.classroom_load import ClassRun, Shown, Student, percentile, run_class
from tests.e2e.helpers import class_server
from tests.postgres import Cluster, postgres_cluster  # noqa: F401 - a fixture
from webui.classroom.store import DATABASE_FILE_ENV, DATABASE_URL_ENV, ClassStore
from webui.lessons import LESSONS

STUDENTS = 30
#: Joins spread over the first 5 s, answers over the next 5 s: a class's 30 answers within 10 s.
JOIN_WINDOW_S = ANSWER_WINDOW_S = 5.0
CHANGE_MINDS = 5
#: After the last answer, the projector (polling every 1.5 s) must show them all within this, on a
#: 2-core machine shared with other work.
SETTLE_S = 30.0
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _replica_of(url: str, cookie: str) -> str:
    request = urllib.request.Request(url, headers={"Cookie": f"bv_replica={cookie}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("X-Backbone-Viz-Replica", "")


def _check(result: ClassRun, store: ClassStore) -> str:
    """Every student joined and answered once, and both the projector and the database count exactly what
    was sent; returns a line of timings for the log."""
    question = LESSONS[0].question(bv.get_spec("efficientnet_lite0"))  # the class's backbone: the default
    assert result.n_choices == len(question.choices)
    assert result.errors == [], result.errors
    assert result.projector_error is None, result.projector_error
    seats = [s.seat for s in result.students]
    assert None not in seats and len(set(seats)) == STUDENTS  # one seat each, none shared
    assert result.answers_sent == STUDENTS + CHANGE_MINDS
    sent = result.sent_tally
    assert sum(sent) == STUDENTS and sent == tuple(
        sum(1 for i in range(STUDENTS) if (i % len(sent) + (i < CHANGE_MINDS)) % len(sent) == c)
        for c in range(len(sent))
    )
    final = result.final
    assert final is not None
    assert (final.joined, final.answered) == (STUDENTS, STUDENTS), final
    assert final.tally == sent, (final.tally, sent)
    assert result.settled is not None and result.settled - result.answers_done <= SETTLE_S
    # The projector never showed more answers than were sent, nor a count that went down.
    answered = [r.answered for r in result.shown]
    assert answered == sorted(answered) and max(answered) == STUDENTS
    counts = store.counts(result.code, 0, n_choices=len(question.choices))
    assert (counts.joined, counts.answered, counts.tally) == (STUDENTS, STUDENTS, sent)
    latencies = result.latencies()
    assert len(latencies) == STUDENTS
    return (
        f"{STUDENTS} students: joins {result.joins_done - result.joins_started:.1f} s, answers "
        f"{result.answers_done - result.answers_started:.1f} s, all shown {result.settled - result.answers_started:.1f} s "
        f"after the first answer; answer -> projector p50 {percentile(latencies, 0.5):.2f} s, "
        f"p95 {percentile(latencies, 0.95):.2f} s; projector runs {len(result.shown)}"
    )


def _class(url: str) -> ClassRun:
    return asyncio.run(
        run_class(
            url,
            STUDENTS,
            join_window=JOIN_WINDOW_S,
            answer_window=ANSWER_WINDOW_S,
            change_minds=CHANGE_MINDS,
            settle_timeout=SETTLE_S,
        )
    )


def test_thirty_students_on_one_server_with_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "classes.sqlite3"
    with class_server(tmp_path / "server", replicas=1, env={DATABASE_FILE_ENV: str(database)}) as server:
        result = _class(server.url)
    store = ClassStore.from_file(database)
    try:
        print(_check(result, store))
    finally:
        store.dispose()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (serve needs it for two replicas)")
def test_thirty_students_on_two_replicas_with_postgresql(tmp_path: Path, postgres_cluster: Cluster) -> None:  # noqa: F811
    with postgres_cluster.database() as url:
        with class_server(tmp_path / "server", replicas=2, env={DATABASE_URL_ENV: url}) as server:
            replicas = {_replica_of(server.url, f"student{i}") for i in range(STUDENTS)}
            assert len(replicas) == 2, replicas  # the class really spreads over both
            assert _replica_of(server.url, "teacher") in replicas
            result = _class(server.url)
        store = ClassStore.from_url(url)
        try:
            print(_check(result, store))
        finally:
            store.dispose()


def _made_up_class(n_choices: int) -> tuple[ClassRun, SimpleNamespace]:
    """A class run as :func:`run_class` returns it when all went well, and a store that agrees."""
    students = []
    for i in range(STUDENTS):
        choice = (i % n_choices + (i < CHANGE_MINDS)) % n_choices
        students.append(Student(i, f"seat{i}", choice, 1 + (i < CHANGE_MINDS), 0.1, 1.0 + i, 1.1 + i))
    result = ClassRun("K7P2QX", n_choices, students, answers_done=31.0)
    tally = result.sent_tally
    result.shown = [
        Shown(2.0 + k, STUDENTS, k, tally if k == STUDENTS else (k,) + (0,) * (n_choices - 1), 0.05)
        for k in range(1, STUDENTS + 1)
    ]
    result.answers_started, result.settled = 1.0, result.shown[-1].at
    counts = SimpleNamespace(joined=STUDENTS, answered=STUDENTS, tally=tally)
    return result, SimpleNamespace(counts=lambda *_a, **_k: counts)


def test_the_check_catches_a_lost_or_a_doubled_answer() -> None:
    """The load tests can fail: a count off by one anywhere, or a student's error, is caught."""
    n_choices = len(LESSONS[0].question(bv.get_spec("efficientnet_lite0")).choices)
    result, store = _made_up_class(n_choices)
    _check(result, store)  # type: ignore[arg-type]
    final = result.shown[-1]
    doubled = (final.tally[0] + 1, *final.tally[1:])
    lost = (final.tally[0] - 1, *final.tally[1:])
    for shown in (
        dataclasses.replace(final, tally=doubled, answered=STUDENTS + 1),  # one answer counted twice
        dataclasses.replace(final, tally=lost, answered=STUDENTS - 1),  # one lost
        dataclasses.replace(final, tally=(*lost[:-1], lost[-1] + 1)),  # one shown under another choice
    ):
        bad, _ = _made_up_class(n_choices)
        bad.shown[-1] = shown
        with pytest.raises(AssertionError):
            _check(bad, store)  # type: ignore[arg-type]
    _, wrong_store = _made_up_class(n_choices)
    wrong_store.counts = lambda *_a, **_k: SimpleNamespace(
        joined=STUDENTS, answered=STUDENTS + 1, tally=doubled
    )
    with pytest.raises(AssertionError):
        _check(result, wrong_store)  # type: ignore[arg-type]
    failed, _ = _made_up_class(n_choices)
    failed.students[3].error = "answer: TimeoutError()"
    with pytest.raises(AssertionError):
        _check(failed, store)  # type: ignore[arg-type]
