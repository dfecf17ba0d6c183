"""Class mode under a class's load: N students' phones join and answer while the projector polls, as
protocol-level sessions (tests/streamlit_client.py: Streamlit's websocket protocol, no browser), so that 30
to 60 students fit on 2 cores beside the server they load.

Starts the class server as a school does (``python -m backbone_viz serve``: warm start, nginx in front when
installed), on loopback and offline, then plays one question (tests/classroom_load.py): the teacher opens a
class in projector mode and the projector polls alone for ``--idle`` seconds (what polling costs by
itself); the students join, spread over ``--join-window`` seconds; then they answer, spread over
``--answer-window`` seconds (the first ``--change-minds`` change their answer once), and each phone plays
its page's slow check for the reveal; until the projector shows every answer. Prints per setup:

* answers sent, and counted: by the projector (read off the teacher's page) and in the class database;
* the server's CPU seconds (every process under ``serve``: replicas and nginx, from ``/proc/<pid>/stat``)
  per join and per answer, with the projector's own polling taken out, and PostgreSQL's own CPU;
* the time from an answer to the projector's count (p50, p95, max: the k-th answer sent against the first
  projector run showing k answers), and the students' round trips.

With neither ``--replicas`` nor ``--postgres`` it runs both setups the issue asks for: one replica on SQLite
(WAL), then two replicas behind nginx on a throwaway PostgreSQL cluster (tests/postgres.py, Debian's
binaries, nothing of the system's touched).

    python bench/classroom.py [--students 30] [--replicas 2 --postgres] [--join-window 5] [--answer-window 5]

Not a test (tests/e2e/test_classroom_load.py is): it takes about a minute per setup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import cpu_seconds  # noqa: E402
from bench.student_cpu import process_tree  # noqa: E402
from tests.classroom_load import ClassRun, percentile, run_class  # noqa: E402
from tests.e2e.helpers import class_server  # noqa: E402

PHASES = ("polling", "joins", "answers", "settled")


@contextlib.contextmanager
def database(postgres: bool, folder: Path) -> Iterator[tuple[dict[str, str], str, list[int]]]:
    """The class database: ``(environment for serve, URL for this process, the database server's pids)``."""
    from webui.classroom.store import DATABASE_FILE_ENV, DATABASE_URL_ENV

    if not postgres:
        path = folder / "classes.sqlite3"
        yield {DATABASE_FILE_ENV: str(path)}, f"sqlite:///{path}", []
        return
    from tests.postgres import throwaway_cluster

    with throwaway_cluster() as cluster, cluster.database() as url:
        postmaster = int((cluster.folder / "data" / "postmaster.pid").read_text().split()[0])
        yield {DATABASE_URL_ENV: url}, url, [postmaster]


def run_setup(args: argparse.Namespace, replicas: int, postgres: bool) -> None:
    name = f"serve --replicas {replicas}, " + (
        "PostgreSQL (throwaway cluster)" if postgres else "SQLite (WAL)"
    )
    print(f"\n== {name}: {args.students} students", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as tmp_name:
        tmp = Path(tmp_name)
        with database(postgres, tmp) as (env, url, db_roots):
            with class_server(tmp / "server", replicas=replicas, env=env) as server:
                marks: dict[str, tuple[float, float, float]] = {}

                def on_phase(phase: str) -> None:
                    # The process trees are read again at each mark: PostgreSQL starts a backend per
                    # connection.
                    marks[phase] = (
                        time.monotonic(),
                        cpu_seconds(process_tree(server.process.pid)),
                        cpu_seconds(p for root in db_roots for p in process_tree(root)),
                    )

                result = asyncio.run(
                    run_class(
                        server.url,
                        args.students,
                        join_window=args.join_window,
                        answer_window=args.answer_window,
                        change_minds=args.change_minds,
                        idle_before=args.idle,
                        settle_timeout=args.settle_timeout,
                        on_phase=on_phase,
                    )
                )
            report(result, marks, url, postgres)  # the database is still there


def report(result: ClassRun, marks: dict[str, tuple[float, float, float]], url: str, postgres: bool) -> None:
    from webui.classroom.store import ClassStore

    missing = [p for p in PHASES if p not in marks]
    if missing:
        print(f"the run stopped before {missing[0]}: {result.errors[:3]}")
        return
    (t0, c0, d0), (t1, c1, d1), (t2, c2, d2), (t3, c3, d3) = (marks[p] for p in PHASES)
    polling_rate = (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
    joined = sum(s.seat is not None for s in result.students)
    answered = sum(s.acked is not None for s in result.students)
    final = result.final
    store = ClassStore.from_url(url)
    try:
        stored = store.counts(result.code, 0, n_choices=result.n_choices)
    finally:
        store.dispose()

    print(
        f"students joined {joined}/{len(result.students)}, answered {answered}; errors: {result.errors[:3] or 'none'}"
    )
    if result.projector_error:
        print(f"the projector stopped: {result.projector_error}")
    shown = f"{final.answered} answered, tally {final.tally}" if final else "nothing"
    print(
        f"answers sent {result.answers_sent} ({result.answers_sent - answered} of them changes of mind), "
        f"tally sent {result.sent_tally}; projector shows {shown}"
        + f"; the database: {stored.answered} answered, tally {stored.tally}"
    )
    exact = (
        final is not None
        and final.answered == stored.answered == answered
        and final.tally == stored.tally == result.sent_tally
    )
    print("every answer counted exactly once: " + ("yes" if exact else "NO"))
    runs = [r.run_s for r in result.shown]
    print(
        f"projector alone ({t1 - t0:.1f} s): server CPU {polling_rate:.3f} s per second; its fragment run "
        f"p50 {percentile(runs, 0.5) * 1000:.0f} ms, p95 {percentile(runs, 0.95) * 1000:.0f} ms over {len(runs)} runs"
    )
    net = lambda cpu, seconds: cpu - polling_rate * seconds  # noqa: E731
    print(
        f"join phase {t2 - t1:.1f} s: server CPU {c2 - c1:.2f} s = {1000 * (c2 - c1) / max(joined, 1):.0f} ms per "
        f"join, {1000 * net(c2 - c1, t2 - t1) / max(joined, 1):.0f} ms without the projector's polling "
        "(a join: the page's first run, Join, and the run that draws the question)"
    )
    sent = max(result.answers_sent, 1)
    print(
        f"answer phase {t3 - t2:.1f} s (to every answer shown): server CPU {c3 - c2:.2f} s = "
        f"{1000 * (c3 - c2) / sent:.0f} ms per answer sent, {1000 * net(c3 - c2, t3 - t2) / sent:.0f} ms "
        "without the projector's polling (phones' own checks included)"
    )
    if postgres:
        print(
            f"PostgreSQL's CPU: {d2 - d1:.2f} s in the join phase, {d3 - d2:.2f} s in the answer phase "
            f"({1000 * (d3 - d2) / sent:.1f} ms per answer)"
        )
    latencies = result.latencies()
    if latencies:
        print(
            f"answer -> projector count: p50 {percentile(latencies, 0.5):.2f} s, p95 "
            f"{percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s over {len(latencies)} answers "
            f"(the projector polls every 1.5 s)"
        )
    joins = [s.join_s for s in result.students if s.join_s is not None]
    trips = [s.acked - s.sent for s in result.students if s.acked is not None and s.sent is not None]
    if joins and trips:
        print(
            f"a student's round trips: join p50 {statistics.median(joins):.2f} s, p95 {percentile(joins, 0.95):.2f} s; "
            f"answer p50 {statistics.median(trips):.2f} s, p95 {percentile(trips, 0.95):.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30, help="phones (default 30; 60 fits on 2 cores)")
    parser.add_argument("--replicas", type=int, default=None, help="serve's replicas (default: both setups)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of SQLite")
    parser.add_argument("--join-window", type=float, default=5.0, help="seconds over which students join")
    parser.add_argument("--answer-window", type=float, default=5.0, help="seconds over which they answer")
    parser.add_argument("--change-minds", type=int, default=0, help="students who change their answer once")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds the projector polls alone first")
    parser.add_argument("--settle-timeout", type=float, default=60.0)
    args = parser.parse_args()
    if not 1 <= args.students <= 200:
        parser.error("--students must be between 1 and 200")
    if args.replicas is None and not args.postgres:
        setups = [(1, False), (2, True)]
    else:
        setups = [(args.replicas or 1, args.postgres)]
    for replicas, postgres in setups:
        run_setup(args, replicas, postgres)


if __name__ == "__main__":
    main()
