"""The class database's tables, and the migrations that make them, applied by the app itself.

Tables (version 1):

``classes``: one row per open class.
    ``code`` (6 symbols, primary key), ``teacher_key_sha256`` (the SHA-256 of the teacher's key, hex: the key
    itself is never stored, so the database alone controls nothing), the class's pins ``backbone``,
    ``weights``, ``picture`` (the question texts depend on them), ``question`` (the current question's slot,
    from 0), ``revealed`` (whether its answer has been revealed), ``created_at`` and ``expires_at`` (seconds
    since the epoch, UTC), indexed by ``expires_at`` for the purge.
``seats``: one row per device that joined.
    Primary key (``class_code``, ``seat_sha256``): the SHA-256 of the seat's random token, which stays on the
    student's device (URL or cookie), so a database leak cannot answer for anyone. ``nickname`` (optional,
    stored verbatim, shown as text) and ``joined_at``. No address, no name unless the student types one.
``answers``: one row per seat per question.
    Primary key (``class_code``, ``question``, ``seat_sha256``), so a repeated answer overwrites
    (``INSERT ... ON CONFLICT DO UPDATE``) and can never count twice; ``choice`` (from 0) and ``answered_at``.

Foreign keys tie seats to classes and answers to seats (``ON DELETE CASCADE``); the store still deletes each
table's rows itself when a class closes, so nothing rests on SQLite's ``foreign_keys`` pragma.

``schema_version`` holds one row per applied migration. :data:`MIGRATIONS` is ordered: entry ``i`` makes
version ``i + 1``. A migration is a function of an open connection inside the transaction that records its
version, so it is applied whole or not at all (SQLite and PostgreSQL both roll DDL back), and once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    inspect,
    text,
)

from webui.classroom.errors import StorageError

#: Longest nickname, in characters.
NICKNAME_MAX = 32
#: Lengths of the pins a class keeps.
BACKBONE_MAX, WEIGHTS_MAX, PICTURE_MAX = 64, 32, 128


def _tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """Version 1's tables. Written out here once and used both by :func:`migrate_v1` and by the store; when a
    later migration changes a table, copy these into ``migrate_v1`` first so that version 1 stays what it
    was (a test compares a migrated database with :data:`METADATA`)."""
    classes = Table(
        "classes",
        metadata,
        Column("code", String(6), primary_key=True),
        Column("teacher_key_sha256", String(64), nullable=False),
        Column("backbone", String(BACKBONE_MAX), nullable=False),
        Column("weights", String(WEIGHTS_MAX), nullable=False),
        Column("picture", String(PICTURE_MAX), nullable=False),
        Column("question", Integer, nullable=False),
        Column("revealed", Boolean, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("expires_at", Float, nullable=False),
        Index("classes_expires_at", "expires_at"),
    )
    seats = Table(
        "seats",
        metadata,
        Column("class_code", String(6), primary_key=True),
        Column("seat_sha256", String(64), primary_key=True),
        Column("nickname", String(NICKNAME_MAX), nullable=True),
        Column("joined_at", Float, nullable=False),
        ForeignKeyConstraint(["class_code"], ["classes.code"], ondelete="CASCADE"),
    )
    answers = Table(
        "answers",
        metadata,
        Column("class_code", String(6), primary_key=True),
        Column("question", Integer, primary_key=True),
        Column("seat_sha256", String(64), primary_key=True),
        Column("choice", SmallInteger, nullable=False),
        Column("answered_at", Float, nullable=False),
        ForeignKeyConstraint(
            ["class_code", "seat_sha256"], ["seats.class_code", "seats.seat_sha256"], ondelete="CASCADE"
        ),
    )
    return classes, seats, answers


#: The tables as the store uses them (the latest version).
METADATA = MetaData()
CLASSES, SEATS, ANSWERS = _tables(METADATA)

SCHEMA_VERSION = Table(
    "schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Float, nullable=False),
)

Migration = Callable[[Connection], None]


def migrate_v1(conn: Connection) -> None:
    """Version 1: the classes, seats and answers tables."""
    metadata = MetaData()
    _tables(metadata)
    metadata.create_all(conn)


#: Every migration, in order: ``MIGRATIONS[i]`` makes version ``i + 1``. Append, never edit or reorder.
MIGRATIONS: tuple[Migration, ...] = (migrate_v1,)

#: Any fixed number: the PostgreSQL advisory lock that lets one process migrate at a time.
_MIGRATION_LOCK = 0x62765F636C617373  # "bv_class"


def current_version(conn: Connection) -> int:
    """The database's schema version: 0 for a database without the ``schema_version`` table."""
    if not inspect(conn).has_table(SCHEMA_VERSION.name):
        return 0
    return int(conn.scalar(text("SELECT COALESCE(MAX(version), 0) FROM schema_version")) or 0)


def pending(conn: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """How many of ``migrations`` the database lacks (negative when it is newer than they are)."""
    return len(migrations) - current_version(conn)


def apply_migrations(conn: Connection, migrations: Sequence[Migration], now: float) -> list[int]:
    """Apply the migrations ``conn``'s database lacks, inside ``conn``'s transaction; the versions applied.

    The caller holds a write transaction: on SQLite ``BEGIN IMMEDIATE`` (one writer at a time), so two
    processes starting at once cannot both migrate; on PostgreSQL this takes an advisory lock first for the
    same reason, because DDL there does not lock a table that does not exist yet.

    Raises:
        StorageError: the database's version is newer than ``migrations`` (a newer backbone-viz made it).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    SCHEMA_VERSION.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > len(migrations):
        raise StorageError(
            f"The class database was made by a newer backbone-viz (schema version {version}, this one knows "
            f"{len(migrations)}).",
            "Update backbone-viz, or give this one its own database.",
        )
    applied = []
    for number in range(version + 1, len(migrations) + 1):
        migrations[number - 1](conn)
        conn.execute(SCHEMA_VERSION.insert().values(version=number, applied_at=now))
        applied.append(number)
    return applied
