"""Class mode's storage (webui/classroom): the same tests on SQLite (a temporary file, WAL) and on a real
PostgreSQL (a throwaway cluster, tests/postgres.py), plus the rate limiter and the QR code."""

from __future__ import annotations

import ast
import contextlib
import io
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import event, func, inspect, select, text

from tests.conftest import ROOT
from tests.postgres import postgres_cluster  # noqa: F401 - a fixture
from webui.classroom import limits, qr, schema
from webui.classroom import store as store_module
from webui.classroom.errors import ClassError, StorageError
from webui.classroom.limits import RateLimiter
from webui.classroom.schema import ANSWERS, CLASSES, SEATS
from webui.classroom.store import ALPHABET, ClassStore

MakeStore = Callable[..., ClassStore]


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new empty database: a SQLite file, or a database in the session's throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'classes.sqlite3'}"
    else:
        with request.getfixturevalue("postgres_cluster").database() as url:
            yield url


@pytest.fixture
def make_store(database_url: str) -> Iterator[MakeStore]:
    """Stores on the test's database; each call makes another engine, as another process would."""
    made: list[ClassStore] = []

    def make(**kwargs: object) -> ClassStore:
        made.append(ClassStore.from_url(database_url, **kwargs))
        return made[-1]

    yield make
    for store in made:
        store.dispose()


@pytest.fixture
def store(make_store: MakeStore) -> ClassStore:
    return make_store()


def open_class(store: ClassStore, **kwargs: object) -> tuple[str, str]:
    return store.open_class("resnet18", "pretrained", "cat", **kwargs)  # type: ignore[arg-type]


def rows(store: ClassStore, code: str | None = None) -> dict[str, int]:
    """Rows per table, all classes or one class's."""
    counts = {}
    with store.engine.connect() as conn:
        for table, column in (
            (CLASSES, CLASSES.c.code),
            (SEATS, SEATS.c.class_code),
            (ANSWERS, ANSWERS.c.class_code),
        ):
            query = select(func.count()).select_from(table)
            counts[table.name] = conn.scalar(query if code is None else query.where(column == code))
    return counts


@contextlib.contextmanager
def statements(store: ClassStore) -> Iterator[list[str]]:
    """Every SQL statement the store sends meanwhile (BEGIN included)."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def refused(reason: str, call: Callable[[], object]) -> ClassError:
    with pytest.raises(ClassError) as caught:
        call()
    assert caught.value.reason == reason, caught.value
    assert caught.value.message and caught.value.hint
    return caught.value


# ------------------------------------------------------------------------------------------------ a class


def test_a_class_from_opening_to_closing(store: ClassStore) -> None:
    code, key = open_class(store)
    info = store.info(code)
    assert (info.backbone, info.weights, info.picture, info.question, info.revealed) == (
        "resnet18",
        "pretrained",
        "cat",
        0,
        False,
    )
    seats = [store.join(code) for _ in range(3)]
    for seat, choice in zip(seats, (2, 2, 0), strict=True):
        store.answer(code, seat.token, 0, choice, 4)
    store.answer(code, seats[2].token, 0, 1, 4)  # changed before the reveal: overwrites
    counts = store.counts(code, 0, n_choices=4)
    assert counts.tally == (0, 1, 2, 0) and counts.answered == 3 and counts.joined == 3
    assert counts.current and not counts.revealed
    assert store.my_answer(code, seats[2].token, 0) == 1

    assert store.reveal(code, key).revealed
    assert store.counts(code, 0, n_choices=4).revealed
    refused("revealed", lambda: store.answer(code, seats[0].token, 0, 3, 4))
    assert store.counts(code, 0, n_choices=4).tally == (0, 1, 2, 0)

    late = store.join(code)  # a late joiner after the reveal takes a seat for the next question
    info = store.next_question(code, key)
    assert (info.question, info.revealed) == (1, False)
    refused("moved_on", lambda: store.answer(code, seats[0].token, 0, 3, 4))
    store.answer(code, late.token, 1, 0, 2)
    assert store.counts(code, 1, n_choices=2).tally == (1, 0)
    old = store.counts(code, 0)
    assert old.tally == (0, 1, 2) and not old.current and not old.revealed

    assert store.set_question(code, key, 0).question == 0  # going back reopens the question
    store.answer(code, seats[0].token, 0, 3, 4)
    assert store.counts(code, 0, n_choices=4).tally == (0, 1, 1, 1)

    assert rows(store, code) == {"classes": 1, "seats": 4, "answers": 4}
    assert store.close(code, key) == 9
    assert rows(store, code) == {"classes": 0, "seats": 0, "answers": 0}
    refused("no_class", lambda: store.info(code))


def test_codes_and_keys_are_random_and_only_the_keys_hash_is_stored(store: ClassStore) -> None:
    opened = [open_class(store) for _ in range(20)]
    codes = [code for code, _ in opened]
    assert len(set(codes)) == 20
    assert set(ALPHABET).isdisjoint("0O1IL") and len(ALPHABET) == 31
    for code, key in opened:
        assert len(code) == 6 and set(code) <= set(ALPHABET)
        assert len(key) == 22  # secrets.token_urlsafe(16): 128 bits
    with store.engine.connect() as conn:
        stored = [str(v) for row in conn.execute(select(CLASSES)) for v in row]
    for _code, key in opened:
        assert not any(key in value for value in stored)
        assert store_module.sha256(key) in stored


def test_a_taken_code_is_drawn_again(store: ClassStore, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _ = open_class(store)
    draws = iter([code, code, "QQQQQQ"])
    monkeypatch.setattr(store_module, "new_code", lambda: next(draws))
    assert open_class(store)[0] == "QQQQQQ"
    assert rows(store)["classes"] == 2


def test_a_typed_code_may_have_small_letters_spaces_and_a_dash(store: ClassStore) -> None:
    code, _ = open_class(store)
    typed = f" {code[:3].lower()} - {code[3:]} "
    assert store.join(typed).code == code


# ----------------------------------------------------------------------------------------------- bad input

ABSURD_CODES = [
    "",
    "   ",
    "X" * 1_000_000,
    "ÄBÇD€F",
    "ＡＢＣＤＥＦ",  # full-width letters: not the alphabet
    "K7P2Q😀",
    "'; DROP TABLE classes;--",
    "' OR 1=1 --",
    "ABCDE",
    "ABCDEFG",
    "O0O0O0",
    "1IL1IL",
    "K7P2QX\x00",
    None,
    42,
    b"K7P2QX",
]


@pytest.mark.parametrize("bad", ABSURD_CODES, ids=lambda b: repr(b)[:20])
def test_an_absurd_code_is_refused_before_any_query_and_writes_nothing(
    store: ClassStore, bad: object
) -> None:
    code, key = open_class(store)
    seat = store.join(code)
    before = rows(store)
    calls = [
        lambda: store.info(bad),
        lambda: store.join(bad),
        lambda: store.join(bad, seat.token, "Bob"),
        lambda: store.answer(bad, seat.token, 0, 1, 4),
        lambda: store.counts(bad, 0),
        lambda: store.my_answer(bad, seat.token, 0),
        lambda: store.teacher(bad, key),
        lambda: store.reveal(bad, key),
        lambda: store.next_question(bad, key),
        lambda: store.set_question(bad, key, 1),
        lambda: store.close(bad, key),
    ]
    with statements(store) as sent:
        for call in calls:
            error = refused("bad_code", call)
            assert "6 letters and digits" in error.message
    assert sent == []
    assert rows(store) == before


def test_a_wrong_code_is_told_and_writes_nothing(store: ClassStore) -> None:
    code, _ = open_class(store)
    wrong = next(c for c in ("ABCDEF", "ABCDEG") if c != code)
    before = rows(store)
    error = refused("no_class", lambda: store.join(wrong))
    assert wrong in error.message
    refused("no_class", lambda: store.answer(wrong, "A" * 22, 0, 1, 4))
    refused("no_class", lambda: store.counts(wrong, 0))
    assert rows(store) == before


@pytest.mark.parametrize("choice", [-1, 4, 99, 2**40, "1", "1; DROP TABLE answers", 1.0, True, None])
def test_a_choice_out_of_range_is_refused(store: ClassStore, choice: object) -> None:
    code, _ = open_class(store)
    seat = store.join(code)
    with statements(store) as sent:
        error = refused("bad_choice", lambda: store.answer(code, seat.token, 0, choice, 4))  # type: ignore[arg-type]
    assert sent == [] and "not one of the choices" in error.message
    assert rows(store, code)["answers"] == 0
    with pytest.raises(ValueError, match="n_choices"):
        store.answer(code, seat.token, 0, 0, 1)


def test_a_seat_that_has_not_joined_cannot_answer(store: ClassStore) -> None:
    code, _ = open_class(store)
    other, _ = open_class(store)
    elsewhere = store.join(other)
    for token in ["A" * 22, "", "x" * 1_000_000, "'; DROP TABLE seats;--", None, elsewhere.token]:
        refused("no_seat", lambda token=token: store.answer(code, token, 0, 1, 4))
    assert rows(store, code) == {"classes": 1, "seats": 0, "answers": 0}


FORGED_KEYS = ["random", "", "the code", "another class's key", "one character off", "1 MB", "SQL", None]


@pytest.mark.parametrize("forged", FORGED_KEYS)
def test_a_forged_teacher_key_controls_nothing(store: ClassStore, forged: str | None) -> None:
    code, key = open_class(store)
    _other, other_key = open_class(store)
    key_of = {
        "random": store_module.secrets.token_urlsafe(16),
        "": "",
        "the code": code,
        "another class's key": other_key,
        "one character off": key[:-1] + ("A" if key[-1] != "A" else "B"),
        "1 MB": "k" * 1_000_000,
        "SQL": "' OR '1'='1",
        None: None,
    }[forged]
    seat = store.join(code)
    store.answer(code, seat.token, 0, 1, 4)
    before = rows(store)
    for call in (
        lambda: store.teacher(code, key_of),
        lambda: store.reveal(code, key_of),
        lambda: store.next_question(code, key_of),
        lambda: store.set_question(code, key_of, 5),
        lambda: store.close(code, key_of),
    ):
        error = refused("not_teacher", call)
        assert error.message == "This link does not control this class."
    info = store.info(code)
    assert (info.question, info.revealed) == (0, False)
    assert rows(store) == before
    assert store.teacher(code, key).code == code


def test_expired_classes_refuse_everyone_and_are_purged(make_store: MakeStore) -> None:
    clock = Clock()
    store = make_store(clock=clock)
    code, key = open_class(store, ttl=600)
    seat = store.join(code)
    store.answer(code, seat.token, 0, 1, 4)
    clock.now += 600
    for call in (
        lambda: store.info(code),
        lambda: store.join(code),
        lambda: store.join(code, seat.token),
        lambda: store.answer(code, seat.token, 0, 2, 4),
        lambda: store.counts(code, 0),
        lambda: store.teacher(code, key),
        lambda: store.reveal(code, key),
    ):
        assert refused("ended", call).message == "This class has ended."
    assert rows(store, code) == {"classes": 1, "seats": 1, "answers": 1}
    kept, _ = open_class(store, ttl=3600)  # opening a class purges the ended ones
    assert rows(store, code) == {"classes": 0, "seats": 0, "answers": 0}
    clock.now += 3600
    assert store.purge_expired() == 1 and rows(store) == {"classes": 0, "seats": 0, "answers": 0}
    with pytest.raises(ValueError, match="ttl"):
        open_class(store, ttl=10)


def test_an_ended_class_can_still_be_closed(make_store: MakeStore) -> None:
    clock = Clock()
    store = make_store(clock=clock)
    code, key = open_class(store, ttl=60)
    store.join(code)
    clock.now += 61
    assert store.close(code, key) == 2


def test_a_full_class_takes_no_more_seats(store: ClassStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_SEATS", 3)
    code, _ = open_class(store)
    seats = [store.join(code) for _ in range(3)]
    refused("full", lambda: store.join(code))
    assert store.join(code, seats[0].token).returning  # a seat already taken is kept
    assert rows(store, code)["seats"] == 3


# --------------------------------------------------------------------------------------------- seats


def test_a_device_that_comes_back_keeps_its_seat_and_its_answer(make_store: MakeStore) -> None:
    first, second = make_store(), make_store()  # the phone slept: a new session, maybe another replica
    code, _ = open_class(first)
    seat = first.join(code, nickname="Ada")
    first.answer(code, seat.token, 0, 1, 4)
    again = second.join(code, seat.token)
    assert (again.token, again.nickname, again.returning, again.joined_at) == (
        seat.token,
        "Ada",
        True,
        seat.joined_at,
    )
    assert second.my_answer(code, again.token, 0) == 1
    second.answer(code, again.token, 0, 3, 4)
    assert rows(first, code) == {"classes": 1, "seats": 1, "answers": 1}
    assert first.counts(code, 0, n_choices=4).tally == (0, 0, 0, 1)
    assert second.join(code, seat.token, nickname="Ada L.").nickname == "Ada L."

    unknown = second.join(code, "B" * 22)  # a token this class never gave: a new seat, a new token
    assert not unknown.returning and unknown.token != "B" * 22
    assert second.join(code, "not a token").token != "not a token"
    assert rows(first, code)["seats"] == 3


NICKNAMES = [
    "<b>Bob</b><script>x()</script>",
    "Robert'); DROP TABLE answers;--",
    "Zoë 😀",
    "  two  spaces ",
]


def test_nicknames_are_stored_verbatim_as_text(store: ClassStore) -> None:
    code, _ = open_class(store)
    seats = [store.join(code, nickname=name) for name in NICKNAMES]
    assert [s.nickname for s in seats] == NICKNAMES
    assert store.nicknames(code) == NICKNAMES
    store.answer(code, seats[1].token, 0, 0, 2)
    assert rows(store, code) == {"classes": 1, "seats": 4, "answers": 1}  # every table is still there
    assert store.join(code).nickname is None and store.join(code, nickname="").nickname is None


@pytest.mark.parametrize("nickname", ["x" * 33, "line\nbreak", "nul\x00", "x" * 1_000_000, 7])
def test_a_bad_nickname_is_refused_and_takes_no_seat(store: ClassStore, nickname: object) -> None:
    code, _ = open_class(store)
    with statements(store) as sent:
        refused("bad_nickname", lambda: store.join(code, nickname=nickname))  # type: ignore[arg-type]
    assert sent == [] and rows(store, code)["seats"] == 0


# ------------------------------------------------------------------------------------------- the limit


def test_a_thousand_answers_from_one_seat_change_one_row_and_slow_no_one(store: ClassStore) -> None:
    code, _ = open_class(store)
    spammer, other = store.join(code), store.join(code)
    accepted = refused_count = 0
    durations = []
    start = time.monotonic()
    with statements(store) as sent:
        for i in range(1000):
            began = time.perf_counter()
            try:
                store.answer(code, spammer.token, 0, i % 4, 4)
                accepted += 1
            except ClassError as e:
                assert e.reason == "too_many"
                refused_count += 1
                durations.append(time.perf_counter() - began)
    elapsed = time.monotonic() - start
    limiter = store.limiter
    assert accepted <= limiter.burst + elapsed * limiter.rate + 1
    assert refused_count >= 1000 - accepted and refused_count > 900
    print(
        f"\n[{store.engine.dialect.name}] 1000 answers from one seat: {accepted} accepted, {refused_count} refused "
        f"in {elapsed:.2f} s; a refusal takes {statistics.median(durations) * 1e6:.0f} us (median), no query"
    )
    # A refusal sends nothing to the database: only the accepted answers' few statements each were sent.
    assert len(sent) <= 4 * accepted
    assert rows(store, code)["answers"] == 1
    store.answer(code, other.token, 0, 0, 4)  # another seat is not held back
    assert store.counts(code, 0, n_choices=4).answered == 2


def test_the_rate_limiter_refills_and_forgets_only_full_buckets() -> None:
    clock = Clock(0.0)
    limiter = RateLimiter(rate=1.0, burst=3, max_keys=2, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.wait("a") == pytest.approx(1.0)
    clock.now = 1.0
    assert limiter.allow("a") and not limiter.allow("a")
    for key in ("b", "c", "d"):  # new keys do not push out "a", whose bucket is not full
        limiter.allow(key)
    assert not limiter.allow("a")
    clock.now = 100.0
    limiter.allow("e")
    assert len(limiter) <= 2  # every full bucket may go
    with pytest.raises(ValueError):
        RateLimiter(rate=0)
    assert limits.RateLimiter is RateLimiter


# ------------------------------------------------------------------------------------------ concurrency


def test_thirty_threads_of_twenty_answers_lose_nothing(store: ClassStore) -> None:
    code, _ = open_class(store)
    threads, per_thread = 30, 20
    seats = [[store.join(code).token for _ in range(per_thread)] for _ in range(threads)]
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    latencies: list[float] = []

    def student(tokens: list[str]) -> None:
        try:
            barrier.wait()
            for n, token in enumerate(tokens):
                began = time.perf_counter()
                store.answer(code, token, 0, n % 4, 4)
                latencies.append(time.perf_counter() - began)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=student, args=(tokens,)) for tokens in seats]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    wall = time.monotonic() - start
    assert errors == []
    counts = store.counts(code, 0, n_choices=4)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\n[{store.engine.dialect.name}] {threads} threads x {per_thread} answers: {counts.answered}/600 rows "
        f"in {wall:.2f} s, p95 {p95 * 1e3:.0f} ms"
    )
    assert rows(store, code)["answers"] == 600 == counts.answered
    assert counts.tally == (150, 150, 150, 150) and counts.joined == 600


def test_two_engines_on_one_database_agree(make_store: MakeStore) -> None:
    """Two replicas: each its own engine and limiter, students spread over both, joining and answering at once."""
    replicas = [make_store(), make_store()]
    code, key = open_class(replicas[0])
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []
    sent = [0, 0, 0]

    def student(i: int) -> None:
        try:
            mine = replicas[i % 2]
            barrier.wait()
            for n in range(10):
                seat = mine.join(code)
                choice = (i + n) % 3
                replicas[(i + 1) % 2].answer(code, seat.token, 0, choice, 3)  # answered through the other one
                with lock:
                    sent[choice] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    lock = threading.Lock()
    workers = [threading.Thread(target=student, args=(i,)) for i in range(20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    seen = [r.counts(code, 0, n_choices=3) for r in replicas]
    assert seen[0] == seen[1]
    assert seen[0].tally == tuple(sent) and seen[0].answered == 200 == seen[0].joined
    replicas[1].reveal(code, key)
    assert replicas[0].info(code).revealed


# ------------------------------------------------------------------------------------------- the schema


def test_the_schema_is_created_once_and_matches_the_tables(make_store: MakeStore) -> None:
    first = make_store()
    assert first.applied == [1]
    code, _ = open_class(first)
    again = make_store()  # an existing version-1 database opens as it is
    assert again.applied == [] and again.info(code).code == code
    with again.engine.connect() as conn:
        assert schema.current_version(conn) == 1
        found = inspect(conn)
        for table in schema.METADATA.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns], table.name
            assert {c["name"] for c in found.get_columns(table.name) if not c["nullable"]} == {
                c.name for c in table.columns if not c.nullable
            }
            assert found.get_pk_constraint(table.name)["constrained_columns"] == [
                c.name for c in table.primary_key
            ]


def test_replicas_starting_at_once_migrate_once(database_url: str) -> None:
    barrier = threading.Barrier(4)
    made: list[ClassStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            engine = store_module.make_engine(database_url)
            barrier.wait()
            made.append(ClassStore(engine))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=start) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    try:
        assert errors == []
        assert sorted(s.applied for s in made) == [[], [], [], [1]]
        with made[0].engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(schema.SCHEMA_VERSION)) == 1
    finally:
        for s in made:
            s.dispose()


def test_a_later_migration_is_applied_once_and_keeps_the_data(make_store: MakeStore) -> None:
    store = make_store()
    code, key = open_class(store)
    seat = store.join(code, nickname="Ada")
    store.answer(code, seat.token, 0, 1, 4)
    applied: list[str] = []

    def add_a_column(conn) -> None:  # noqa: ANN001 - a Connection
        applied.append("v2")
        conn.execute(text("ALTER TABLE seats ADD COLUMN color INTEGER"))

    later = (*schema.MIGRATIONS, add_a_column)
    upgraded = make_store(migrations=later)
    assert upgraded.applied == [2] and applied == ["v2"]
    assert make_store(migrations=later).applied == [] and applied == ["v2"]
    assert upgraded.counts(code, 0).tally == (0, 1) and upgraded.teacher(code, key).code == code
    with upgraded.engine.connect() as conn:
        assert schema.current_version(conn) == 2
        assert "color" in {c["name"] for c in inspect(conn).get_columns("seats")}
    with pytest.raises(StorageError, match="newer backbone-viz"):
        make_store()  # this app knows only version 1


def test_a_failing_migration_leaves_the_database_as_it_was(make_store: MakeStore) -> None:
    make_store()

    def broken(conn) -> None:  # noqa: ANN001 - a Connection
        conn.execute(text("ALTER TABLE seats ADD COLUMN half_done INTEGER"))
        raise RuntimeError("broken migration")

    with pytest.raises(RuntimeError, match="broken"):
        make_store(migrations=(*schema.MIGRATIONS, broken))
    store = make_store()
    with store.engine.connect() as conn:
        assert schema.current_version(conn) == 1
        assert "half_done" not in {c["name"] for c in inspect(conn).get_columns("seats")}


# --------------------------------------------------------------------------------------- set-up and QR


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = ClassStore.from_file(tmp_path / "sub" / "classes.sqlite3")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with statements(store) as sent:
        store.join(open_class(store)[0])
    assert "BEGIN IMMEDIATE" in sent
    store.dispose()


def test_the_default_database_is_a_file_and_a_url_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(store_module.DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv(store_module.DATABASE_FILE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert store_module.default_database_path() == tmp_path / "cache" / "backbone-viz" / "classes.sqlite3"
    store = ClassStore.from_env()
    assert store.engine.url.database == str(tmp_path / "cache" / "backbone-viz" / "classes.sqlite3")
    store.dispose()
    monkeypatch.setenv(store_module.DATABASE_FILE_ENV, str(tmp_path / "mine.db"))
    assert store_module.default_database_path() == tmp_path / "mine.db"
    monkeypatch.setenv(store_module.DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'url.db'}")
    store = ClassStore.from_env()
    assert store.engine.url.database == str(tmp_path / "url.db")
    store.dispose()
    assert store_module.make_engine("postgres://u@h/db").url.drivername == "postgresql+psycopg"
    for url in ("sqlite://", "sqlite:///:memory:", "mysql://u@h/db"):
        with pytest.raises(ValueError):
            store_module.make_engine(url)


def test_the_join_qr_code_is_a_png_of_the_link() -> None:
    url = qr.join_url("https://class.example.org/join?present=1&code=OLD#x", "K7P2QX")
    assert url == "https://class.example.org/join?present=1&code=K7P2QX"
    png = qr.join_qr_png(url, scale=8, border=4)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    picture = Image.open(io.BytesIO(png))
    modules = qr.segno.make(url, error="m", micro=False).symbol_size(scale=1, border=4)[0]
    assert picture.size == (modules * 8, modules * 8) and modules >= 21 + 8
    assert sorted(c for _, c in picture.convert("L").getcolors()) == [0, 255]
    with pytest.raises(ValueError):
        qr.join_url("javascript:alert(1)", "K7P2QX")


def test_the_classroom_package_imports_no_streamlit_and_no_torch() -> None:
    for path in (ROOT / "webui" / "classroom").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [
            n for n in names if n.split(".")[0] in ("streamlit", "torch", "webui") and "classroom" not in n
        ]
