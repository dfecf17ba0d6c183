"""Class mode's storage: classes, seats and answers in one database shared by every session and replica.

SQLite by default (a file under the app's data folder, zero set-up), in WAL mode with ``busy_timeout`` and
``BEGIN IMMEDIATE`` for writes: measured here, 30 threads x 20 answers behind a barrier kept 600 of 600 rows
that way, and lost up to 8 with SQLite's default journal ("database is locked"). WAL needs every process on
one host (sqlite.org/wal.html: not over a network filesystem); replicas on several hosts give a PostgreSQL
URL (``BACKBONE_VIZ_DATABASE_URL``). Both go through SQLAlchemy, and the same code runs on both.

Every input a student or a teacher controls (code, seat token, teacher key, choice, nickname) is checked
before any query, so absurd input costs nothing and writes nothing; values reach the database only as bound
parameters. Every refusal raises :class:`~webui.classroom.errors.ClassError` with a sentence for a student.

Typical use::

    store = ClassStore.from_env()
    code, key = store.open_class("resnet18", "pretrained", "cat", ttl=3 * 3600)
    seat = store.join(code)                      # a student's phone; keep seat.token in its URL or cookie
    store.answer(code, seat.token, question=0, choice=2, n_choices=4)
    store.counts(code, 0, n_choices=4)           # the projector polls this
    store.reveal(code, key); store.next_question(code, key)
    store.close(code, key)                       # deletes the class's rows
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from webui.classroom import schema
from webui.classroom.errors import ClassError, StorageError
from webui.classroom.limits import RateLimiter
from webui.classroom.schema import ANSWERS, CLASSES, SEATS

#: A PostgreSQL (or SQLite) URL; when set, the class database lives there instead of the default file.
DATABASE_URL_ENV = "BACKBONE_VIZ_DATABASE_URL"
#: The SQLite file to use instead of the default one (ignored when a database URL is set).
DATABASE_FILE_ENV = "BACKBONE_VIZ_CLASSES_FILE"

#: The join code's symbols: digits and capitals without 0/O, 1/I/L, which look alike on a projector.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: Symbols in a join code: 31 ** 6 is about 8.9e8 codes (29.7 bits), plenty for a code that is projected
#: anyway (a meeting point, not a secret) and short enough to type on a phone.
CODE_LENGTH = 6
#: Most devices one class seats (a lecture hall), so a script cannot fill the table with seats.
MAX_SEATS = 1000
#: Choices a question may have.
MAX_CHOICES = 26
#: Question slots a class may use (0 to MAX_QUESTIONS - 1).
MAX_QUESTIONS = 1000
#: How long a class may live: from a minute to a week.
TTL_RANGE = (60.0, 7 * 24 * 3600.0)

# Anything longer is refused before it is even normalised: a code with spaces and dashes is still short.
_RAW_CODE_MAX = 32
_CODE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
# secrets.token_urlsafe(16): 22 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CODE_ATTEMPTS = 20


@dataclass(frozen=True)
class ClassInfo:
    """What a class is, as everyone may see it (never the teacher key).

    Attributes:
        code: the join code.
        backbone, weights, picture: the pins every student's question is drawn for.
        question: the current question's slot (0, 1, ...).
        revealed: whether the current question's answer has been revealed.
        created_at, expires_at: seconds since the epoch.
    """

    code: str
    backbone: str
    weights: str
    picture: str
    question: int
    revealed: bool
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class Seat:
    """A device's seat in a class.

    Attributes:
        code: the class's join code.
        token: the seat's secret (22 URL-safe characters); the device keeps it (URL or cookie) and sends it
            back with each answer and when it comes back. Only its SHA-256 is stored.
        nickname: what the student typed, verbatim, or None.
        joined_at: when the seat was first taken (seconds since the epoch).
        returning: True when ``token`` was already this class's seat (a reload, a phone that slept).
    """

    code: str
    token: str
    nickname: str | None
    joined_at: float
    returning: bool


@dataclass(frozen=True)
class Counts:
    """A question's answers, as the projector shows them.

    Attributes:
        question: the question's slot.
        tally: answers per choice, ``tally[c]`` for choice ``c``; length ``n_choices`` when given, else
            one past the highest choice answered.
        joined: seats in the class.
        answered: seats that answered this question (``sum(tally)``).
        revealed: whether this is the current question and its answer has been revealed.
        current: whether this is the class's current question.
    """

    question: int
    tally: tuple[int, ...]
    joined: int
    answered: int
    revealed: bool
    current: bool


def sha256(token: str) -> str:
    """The hex SHA-256 of a token, the only form in which tokens are stored."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_code() -> str:
    """A random join code: :data:`CODE_LENGTH` symbols of :data:`ALPHABET`."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: object) -> str:
    """The code a student typed, as stored: capitals, without spaces or dashes. No query is made.

    Raises:
        ClassError: (``bad_code``) it cannot be a class code: empty, too long, or other symbols.
    """
    if isinstance(code, str) and len(code) <= _RAW_CODE_MAX:
        cleaned = re.sub(r"[\s-]", "", code).upper()
        if _CODE.fullmatch(cleaned):
            return cleaned
    raise ClassError(
        "bad_code",
        f"That is not a class code: a class code has {CODE_LENGTH} letters and digits, like K7P2QX.",
        "Type the code shown on the projector.",
    )


def default_database_path() -> Path:
    """The SQLite file used when no URL is given: ``$BACKBONE_VIZ_CLASSES_FILE``, else
    ``$XDG_CACHE_HOME/backbone-viz/classes.sqlite3`` (``~/.cache/...`` without ``XDG_CACHE_HOME``).

    A cache folder fits: a class lives for hours and nothing in the file is worth keeping longer.
    """
    if override := os.environ.get(DATABASE_FILE_ENV):
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "backbone-viz" / "classes.sqlite3"


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``: a SQLite file (``sqlite:///PATH``) or PostgreSQL (``postgresql://``,
    driven by psycopg 3). ``postgres://`` is read as ``postgresql://``.

    Raises:
        ValueError: another database, or SQLite in memory (each connection would get its own database).
        StorageError: the SQLite file's folder cannot be made.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # pre_ping: a replica outlives a database restart without handing a dead connection to a student.
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"class mode stores its classes in SQLite or PostgreSQL, not {parsed.drivername}")
    if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed):
        raise ValueError("class mode needs a SQLite file (sqlite:///PATH), not a database in memory")
    path = Path(parsed.database).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(
            f"Cannot make the folder of the class database {path.parent} ({e.strerror or e}).",
            f"Set {DATABASE_FILE_ENV} to a file in a folder you can write to.",
        ) from e
    engine = create_engine(parsed.set(database=str(path)))
    _prepare_sqlite(engine)
    return engine


def _prepare_sqlite(engine: Engine) -> None:
    """SQLAlchemy's recipe for SQLite transactions (``dialects/sqlite/base.py``), with WAL.

    pysqlite begins transactions itself and only before a write, so a transaction that reads first and then
    writes upgrades its lock mid-way, and ``busy_timeout`` cannot help with that (it fails at once with
    "database is locked"). With the driver's own handling off (``isolation_level = None``) every write
    transaction starts with ``BEGIN IMMEDIATE``, taking the write lock first, and waits for it up to
    ``busy_timeout``; reads (``_READ``) start with a plain ``BEGIN`` and never wait for writers in WAL mode.
    """
    if event.contains(engine, "connect", _sqlite_connect):
        return
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    engine.dispose()  # connections made before the listeners lack the pragmas


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ) else "BEGIN IMMEDIATE")


_READ = "classroom_read_only"


class ClassStore:
    """Classes, seats and answers in one database; every method is one short transaction, thread-safe.

    Args:
        engine: from :func:`make_engine` (or any SQLite/PostgreSQL engine: a SQLite one gets the WAL
            recipe here). The schema is created or migrated on construction.
        limiter: the per-seat answer limit; by default about one answer a second with a burst of 5.
            Shared by the threads of one process; give each store in a process the same one if several.
        clock: seconds since the epoch (a test passes its own to make classes expire).
        migrations: the schema's migrations (a test passes a longer list).

    Raises:
        StorageError: the database cannot be reached, or a newer backbone-viz made it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[schema.Migration] = schema.MIGRATIONS,
    ) -> None:
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"class mode stores its classes in SQLite or PostgreSQL, not {dialect}")
        if dialect == "sqlite":
            _prepare_sqlite(engine)
        self.engine = engine
        self.limiter = limiter if limiter is not None else RateLimiter(rate=1.0, burst=5)
        self._clock = clock
        self._insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        #: The versions the construction applied (empty when the database was up to date).
        self.applied: list[int] = self._migrate(migrations)

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> ClassStore:
        """A store on ``url`` (``sqlite:///PATH`` or ``postgresql://user:pw@host/db``); see :func:`make_engine`."""
        return cls(make_engine(url), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: object) -> ClassStore:
        """A store in the SQLite file ``path`` (made with its folders when missing)."""
        return cls.from_url(f"sqlite:///{Path(path).expanduser()}", **kwargs)

    @classmethod
    def from_env(cls, **kwargs: object) -> ClassStore:
        """A store on ``$BACKBONE_VIZ_DATABASE_URL`` when set, else in :func:`default_database_path`."""
        if url := os.environ.get(DATABASE_URL_ENV, "").strip():
            return cls.from_url(url, **kwargs)
        return cls.from_file(default_database_path(), **kwargs)

    def dispose(self) -> None:
        """Close the engine's pooled connections (the store can still be used: it reconnects)."""
        self.engine.dispose()

    # ------------------------------------------------------------------------------------------ teacher

    def open_class(
        self, backbone: str, weights: str, picture: str, *, ttl: float | timedelta = 3 * 3600.0
    ) -> tuple[str, str]:
        """Open a class pinned to a backbone, its weights and a picture; it starts at question 0.

        Expired classes are purged first. The code is drawn again if it is taken (one in 8.9e8 per open
        class).

        Args:
            backbone, weights, picture: the pins (names the app uses, e.g. ``"resnet18"``, ``"pretrained"``,
                a sample's name or a picture's SHA-256).
            ttl: how long the class lives, in seconds or a ``timedelta`` (a minute to a week).

        Returns:
            ``(code, teacher_key)``: the join code to project, and the key that controls the class (22
            URL-safe characters, 128 random bits). Only the key's SHA-256 is stored: show the key once, on the
            teacher's device only.
        """
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
        if not TTL_RANGE[0] <= seconds <= TTL_RANGE[1]:
            raise ValueError(f"ttl must be between {TTL_RANGE[0]:g} and {TTL_RANGE[1]:g} s, got {seconds:g}")
        for name, value, longest in (
            ("backbone", backbone, schema.BACKBONE_MAX),
            ("weights", weights, schema.WEIGHTS_MAX),
            ("picture", picture, schema.PICTURE_MAX),
        ):
            if not isinstance(value, str) or not 0 < len(value) <= longest or _CONTROL.search(value):
                raise ValueError(f"{name} must be 1 to {longest} printable characters, got {value!r:.80}")
        self.purge_expired()
        key = secrets.token_urlsafe(16)
        for _ in range(_CODE_ATTEMPTS):
            code, now = new_code(), self._clock()
            row = {
                "code": code,
                "teacher_key_sha256": sha256(key),
                "backbone": backbone,
                "weights": weights,
                "picture": picture,
                "question": 0,
                "revealed": False,
                "created_at": now,
                "expires_at": now + seconds,
            }
            try:
                with self._write() as conn:
                    conn.execute(CLASSES.insert().values(row))
            except IntegrityError:
                continue  # the code is taken: draw another
            return code, key
        raise StorageError(
            f"No free class code was found in {_CODE_ATTEMPTS} draws.", "Close classes that have ended."
        )

    def teacher(self, code: str, key: str) -> ClassInfo:
        """The class, if ``key`` controls it.

        Raises:
            ClassError: a bad or unknown code, an ended class, or a key that does not control it.
        """
        code = normalize_code(code)
        digest = _key_digest(key)
        with self._read() as conn:
            row = self._class_row(conn, code)
        self._check_key(row, digest)
        return _info(row)

    def set_question(self, code: str, key: str, question: int) -> ClassInfo:
        """Make ``question`` the current one and hide its answer (going back to a question reopens it).

        Raises:
            ClassError: as :meth:`teacher`.
            ValueError: ``question`` is not 0 to :data:`MAX_QUESTIONS` - 1.
        """
        if not _is_int(question) or not 0 <= question < MAX_QUESTIONS:
            raise ValueError(f"question must be 0 to {MAX_QUESTIONS - 1}, got {question!r}")
        return self._control(code, key, lambda row: {"question": question, "revealed": False})

    def next_question(self, code: str, key: str) -> ClassInfo:
        """Move on to the next question slot, answer hidden. The page knows how many questions there are.

        Raises:
            ClassError: as :meth:`teacher`.
            ValueError: the class is at the last slot :data:`MAX_QUESTIONS` - 1.
        """

        def step(row: dict) -> dict:
            if row["question"] + 1 >= MAX_QUESTIONS:
                raise ValueError(f"a class has at most {MAX_QUESTIONS} questions")
            return {"question": row["question"] + 1, "revealed": False}

        return self._control(code, key, step)

    def reveal(self, code: str, key: str) -> ClassInfo:
        """Reveal the current question's answer: from now on its answers cannot change.

        Raises:
            ClassError: as :meth:`teacher`.
        """
        return self._control(code, key, lambda row: {"revealed": True})

    def close(self, code: str, key: str) -> int:
        """Close the class: delete its answers, seats and the class itself. An ended class can be closed.

        Returns:
            The number of rows deleted, all tables together.

        Raises:
            ClassError: a bad or unknown code, or a key that does not control the class.
        """
        code = normalize_code(code)
        digest = _key_digest(key)
        with self._write() as conn:
            row = self._class_row(conn, code, lock=True, allow_ended=True)
            self._check_key(row, digest)
            return _delete_classes(conn, [code])

    def purge_expired(self) -> int:
        """Delete every class that has expired, with its seats and answers; the number of classes deleted."""
        with self._write() as conn:
            codes = list(conn.scalars(select(CLASSES.c.code).where(CLASSES.c.expires_at <= self._clock())))
            if codes:
                _delete_classes(conn, codes)
            return len(codes)

    # ------------------------------------------------------------------------------------------ student

    def info(self, code: str) -> ClassInfo:
        """The class a student joins: its pins and current question.

        Raises:
            ClassError: a bad or unknown code, or an ended class.
        """
        code = normalize_code(code)
        with self._read() as conn:
            return _info(self._class_row(conn, code))

    def join(self, code: str, seat_token: str | None = None, nickname: str | None = None) -> Seat:
        """Take a seat in the class, or take back the seat of ``seat_token``.

        A device that comes back (a reload, a phone that slept, a late joiner's second try) with its token
        keeps its seat and its answers; a token this class does not know gets a new seat and a new token.
        A nickname given when coming back replaces the old one; None keeps it.

        Raises:
            ClassError: a bad or unknown code, an ended class, a full class, a bad nickname.
        """
        code = normalize_code(code)
        nickname = _check_nickname(nickname)
        known = seat_token if isinstance(seat_token, str) and _TOKEN.fullmatch(seat_token) else None
        with self._write() as conn:
            self._class_row(conn, code, lock=True)
            if known is not None:
                key = {"class_code": code, "seat_sha256": sha256(known)}
                row = conn.execute(select(SEATS).filter_by(**key)).mappings().first()
                if row is not None:
                    if nickname is not None and nickname != row["nickname"]:
                        conn.execute(update(SEATS).filter_by(**key).values(nickname=nickname))
                    kept = row["nickname"] if nickname is None else nickname
                    return Seat(code, known, kept, row["joined_at"], returning=True)
            seated = conn.scalar(select(func.count()).select_from(SEATS).where(SEATS.c.class_code == code))
            if seated >= MAX_SEATS:
                raise ClassError(
                    "full",
                    f"This class is full: {seated} devices have joined it.",
                    "Ask your teacher to open a second class.",
                )
            token, now = secrets.token_urlsafe(16), self._clock()
            conn.execute(
                SEATS.insert().values(
                    class_code=code, seat_sha256=sha256(token), nickname=nickname, joined_at=now
                )
            )
            return Seat(code, token, nickname, now, returning=False)

    def answer(self, code: str, seat_token: str, question: int, choice: int, n_choices: int) -> None:
        """Record the seat's answer to the current question, or change it; refused after the reveal.

        One row per seat per question, written with ``INSERT ... ON CONFLICT DO UPDATE``: answering again
        overwrites, never adds. The rate limit is checked before any query, so a flood costs no database work.

        Args:
            code: the class's join code.
            seat_token: the token :meth:`join` gave this device.
            question: the slot the student answered (it must still be the class's current one).
            choice: the choice picked, ``0 <= choice < n_choices`` (an ``int``; anything else is refused).
            n_choices: how many choices the question has (the app's own number, 2 to 26).

        Raises:
            ClassError: a bad or unknown code, an ended class, an unknown seat, a question that is no longer
                open, an answer after the reveal, a choice that is not one of the question's, too many answers.
            ValueError: ``n_choices`` or ``question`` is not a number the app could have meant.
        """
        if not _is_int(n_choices) or not 2 <= n_choices <= MAX_CHOICES:
            raise ValueError(f"n_choices must be 2 to {MAX_CHOICES}, got {n_choices!r}")
        if not _is_int(question) or not 0 <= question < MAX_QUESTIONS:
            raise ValueError(f"question must be 0 to {MAX_QUESTIONS - 1}, got {question!r}")
        code = normalize_code(code)
        if not _is_int(choice) or not 0 <= choice < n_choices:
            raise ClassError(
                "bad_choice", "That answer is not one of the choices.", "Pick one of the choices shown."
            )
        if not isinstance(seat_token, str) or not _TOKEN.fullmatch(seat_token):
            raise _no_seat()
        seat = sha256(seat_token)
        if not self.limiter.allow((code, seat)):
            raise ClassError(
                "too_many",
                "Too many answers from this device in a short time.",
                "Wait a second, then answer again.",
            )
        with self._write() as conn:
            # FOR SHARE (PostgreSQL): a reveal or a move to the next question waits for answers in flight,
            # so no answer lands after the reveal. SQLite's BEGIN IMMEDIATE already serializes writes.
            row = self._class_row(conn, code, lock="share")
            if not conn.scalar(
                select(func.count()).select_from(SEATS).filter_by(class_code=code, seat_sha256=seat)
            ):
                raise _no_seat()
            if question != row["question"]:
                raise ClassError(
                    "moved_on",
                    "This question is closed: the class has moved on to another one.",
                    "Reload the page to see the current question.",
                )
            if row["revealed"]:
                raise ClassError(
                    "revealed",
                    "The answer has been revealed, so answers to this question are closed.",
                    "Wait for the next question.",
                )
            values = {"class_code": code, "question": question, "seat_sha256": seat}
            statement = self._insert(ANSWERS).values(**values, choice=choice, answered_at=self._clock())
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=list(values),
                    set_={"choice": statement.excluded.choice, "answered_at": statement.excluded.answered_at},
                )
            )

    def my_answer(self, code: str, seat_token: str, question: int) -> int | None:
        """The seat's answer to ``question`` (its choice), or None: what a device shows when it comes back.

        Raises:
            ClassError: a bad or unknown code, an ended class.
        """
        code = normalize_code(code)
        if not isinstance(seat_token, str) or not _TOKEN.fullmatch(seat_token) or not _is_int(question):
            return None
        with self._read() as conn:
            self._class_row(conn, code)
            return conn.scalar(
                select(ANSWERS.c.choice).filter_by(
                    class_code=code, question=question, seat_sha256=sha256(seat_token)
                )
            )

    def counts(self, code: str, question: int, *, n_choices: int | None = None) -> Counts:
        """How the class answered ``question``: the projector's poll, one read transaction of two small queries.

        Args:
            code: the class's join code.
            question: the question's slot.
            n_choices: the question's number of choices, so that choices nobody picked count 0.

        Raises:
            ClassError: a bad or unknown code, an ended class.
        """
        code = normalize_code(code)
        if not _is_int(question):
            raise ValueError(f"question must be an int, got {question!r}")
        with self._read() as conn:
            row = self._class_row(conn, code)
            joined = conn.scalar(select(func.count()).select_from(SEATS).where(SEATS.c.class_code == code))
            rows = conn.execute(
                select(ANSWERS.c.choice, func.count())
                .where(ANSWERS.c.class_code == code, ANSWERS.c.question == question)
                .group_by(ANSWERS.c.choice)
            ).all()
        per_choice = {int(choice): int(count) for choice, count in rows}
        size = n_choices if n_choices is not None else max(per_choice, default=-1) + 1
        tally = tuple(per_choice.get(c, 0) for c in range(size))
        current = row["question"] == question
        return Counts(
            question=question,
            tally=tally,
            joined=int(joined or 0),
            answered=sum(per_choice.values()),
            revealed=current and bool(row["revealed"]),
            current=current,
        )

    def nicknames(self, code: str) -> list[str]:
        """The nicknames of the class's seats, in joining order, verbatim: draw them as text, never as HTML.

        Raises:
            ClassError: a bad or unknown code, an ended class.
        """
        code = normalize_code(code)
        with self._read() as conn:
            self._class_row(conn, code)
            return list(
                conn.scalars(
                    select(SEATS.c.nickname)
                    .where(SEATS.c.class_code == code, SEATS.c.nickname.is_not(None))
                    .order_by(SEATS.c.joined_at)
                )
            )

    # ------------------------------------------------------------------------------------------ inside

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with _storage_errors(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with _storage_errors(), self.engine.connect() as conn:
            conn.execution_options(**{_READ: True})
            with conn.begin():
                yield conn

    def _migrate(self, migrations: Sequence[schema.Migration]) -> list[int]:
        with self._read() as conn:
            missing = schema.pending(conn, migrations)
        if missing == 0:
            return []
        with self._write() as conn:
            return schema.apply_migrations(conn, migrations, self._clock())

    def _class_row(
        self, conn: Connection, code: str, *, lock: bool | str = False, allow_ended: bool = False
    ) -> dict:
        query = select(CLASSES).where(CLASSES.c.code == code)
        if lock:
            query = query.with_for_update(read=lock == "share")
        row = conn.execute(query).mappings().first()
        if row is None:
            raise ClassError(
                "no_class",
                f"No class has the code {code}.",
                "Check the code on the projector: a letter may be mistyped, or the class has been closed.",
            )
        if not allow_ended and row["expires_at"] <= self._clock():
            raise ClassError("ended", "This class has ended.", "Ask your teacher for the new code.")
        return dict(row)

    @staticmethod
    def _check_key(row: dict, digest: str) -> None:
        if not hmac.compare_digest(row["teacher_key_sha256"].encode("ascii"), digest.encode("ascii")):
            raise _not_teacher()

    def _control(self, code: str, key: str, change: Callable[[dict], dict]) -> ClassInfo:
        code = normalize_code(code)
        digest = _key_digest(key)
        with self._write() as conn:
            row = self._class_row(conn, code, lock=True)
            self._check_key(row, digest)
            values = change(row)
            conn.execute(update(CLASSES).where(CLASSES.c.code == code).values(**values))
            return _info(row | values)


# ---------------------------------------------------------------------------------------------- helpers


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _key_digest(key: object) -> str:
    """The SHA-256 a teacher key must have; a key of the wrong shape is refused before any query."""
    if not isinstance(key, str) or not _TOKEN.fullmatch(key):
        raise _not_teacher()
    return sha256(key)


def _not_teacher() -> ClassError:
    return ClassError(
        "not_teacher",
        "This link does not control this class.",
        "Use the teacher's link you got when you opened the class, on your own device.",
    )


def _no_seat() -> ClassError:
    return ClassError(
        "no_seat", "This device has not joined the class.", "Join the class again with its code."
    )


def _check_nickname(nickname: object) -> str | None:
    if nickname is None or nickname == "":
        return None
    if isinstance(nickname, str) and len(nickname) <= schema.NICKNAME_MAX and not _CONTROL.search(nickname):
        return nickname
    raise ClassError(
        "bad_nickname",
        f"A nickname has at most {schema.NICKNAME_MAX} characters, on one line.",
        "Choose a shorter nickname, or none.",
    )


def _info(row: dict) -> ClassInfo:
    return ClassInfo(
        code=row["code"],
        backbone=row["backbone"],
        weights=row["weights"],
        picture=row["picture"],
        question=int(row["question"]),
        revealed=bool(row["revealed"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
    )


def _delete_classes(conn: Connection, codes: list[str]) -> int:
    deleted = 0
    for table, column in (
        (ANSWERS, ANSWERS.c.class_code),
        (SEATS, SEATS.c.class_code),
        (CLASSES, CLASSES.c.code),
    ):
        deleted += conn.execute(delete(table).where(column.in_(codes))).rowcount
    return deleted


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as e:
        raise StorageError(
            "The class database cannot be used right now (it is unreachable or too busy).",
            "Try again in a moment; if it lasts, the person who runs the app should check the database.",
        ) from e
