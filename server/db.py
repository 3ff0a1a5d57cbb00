"""The database: hearings, invitations and the recordings catalog (SQLAlchemy 2, SQLite by default,
PostgreSQL at scale).

Calls are synchronous and short; the aiohttp handlers run them with `asyncio.to_thread` so the event
loop (and the media on it) never waits on disk or on the database server.

The schema is owned by the Alembic revisions in `server/migrations/`; `Database.migrate()` brings
a database to the newest one at startup. A model change here needs a new revision there (see
`server/migrations/env.py`); `tests/test_migrations.py` fails while the two disagree.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The revision that describes the schema `create_all` made before migrations existed.
BASELINE_REVISION = "0001"
# Columns of that schema: a database without `alembic_version` that has exactly these tables and
# columns is stamped as the baseline and then upgraded, instead of failing on "table exists".
BASELINE_COLUMNS: dict[str, frozenset[str]] = {
    "hearings": frozenset(
        {"id", "court", "case_number", "kind", "state", "created_at", "ended_at"}
    ),
    "invites": frozenset(
        {"id", "hearing_id", "role", "name", "code", "expires_at", "code_used_at"}
    ),
}
_MIGRATION_LOCK = 0x7469_6E67_7368_656E  # pg_advisory_xact_lock key ("tingshen"): one migrator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MigrationError(RuntimeError):
    """The database cannot be brought to the current schema without a person looking at it."""


class Base(DeclarativeBase):
    # Named constraints, so that later revisions can alter them (SQLite batch mode needs names).
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class HearingRow(Base):
    __tablename__ = "hearings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    court: Mapped[str] = mapped_column(String(32), index=True)
    case_number: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: A sealed hearing's recordings are refused to everyone but an admin (revision 0003).
    sealed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Roles admitted without the lobby, comma-separated (revision 0004).
    auto_admit: Mapped[str] = mapped_column(String(256), default="", server_default="")
    #: While ``state`` is paused: why, and the judge who paused (id, name), so that a restart
    #: does not resume the recording (revision 0005).
    pause_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    paused_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    paused_by_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    invites: Mapped[list[InviteRow]] = relationship(
        back_populates="hearing", order_by="InviteRow.id"
    )


class InviteRow(Base):
    __tablename__ = "invites"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    code_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Set when the judge ejects this invitation's holder (revision 0004).
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The code of the court the invitee is at; None: the hearing's court (revision 0006).
    court: Mapped[str | None] = mapped_column(String(32), nullable=True)
    hearing: Mapped[HearingRow] = relationship(back_populates="invites")


class AdmissionRow(Base):
    """An invitation that holds a place in a running hearing (`signaling.hearing.Admission`).

    Written as it changes, so that after a server restart an admitted participant goes straight
    back in instead of waiting in the lobby again (revision 0005). No row: no place (never
    admitted, or left, ejected, disconnected past the grace). The rows of a closed hearing go.
    ``participant_key`` is the token's key (an invitation id, or a random key for tokens made
    without an invitation row), so it is not a foreign key to ``invites``.
    """

    __tablename__ = "admissions"

    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), primary_key=True)
    participant_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    admitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The presiding judge muted this participant for everyone.
    silenced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# -- the recordings catalog (filled by server/catalog.py from the recording folders) -------------


class RecordingRow(Base):
    """One recording folder. The folder is the evidence; this row is an index of it.

    The ``manifest_*`` and ``events_*`` columns remember how far the two JSON-lines files have been
    indexed, so that re-indexing a growing recording reads only what was appended.
    """

    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the recording_id
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))  # folder, relative to the recordings root
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    interrupted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    segments: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    verify_ok: Mapped[bool | None] = mapped_column(Boolean)
    indexed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    problems: Mapped[str | None] = mapped_column(Text)  # what the last indexing could not read
    manifest_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    manifest_lines: Mapped[int] = mapped_column(Integer, default=0)
    manifest_head: Mapped[str | None] = mapped_column(String(64))  # sha256 of the last line read
    events_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    events_lines: Mapped[int] = mapped_column(Integer, default=0)
    hearing: Mapped[HearingRow] = relationship()


class TrackRow(Base):
    """A track of a recording, from the manifest's ``track`` entry."""

    __tablename__ = "tracks"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    track_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(64), index=True)
    participant_name: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    codec: Mapped[str] = mapped_column(String(32))
    clock_rate: Mapped[int | None] = mapped_column(Integer)


class SegmentRow(Base):
    """A closed segment file, from the manifest's ``segment`` entry."""

    __tablename__ = "segments"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    track_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    file: Mapped[str] = mapped_column(String(255))  # relative to the recording folder
    start: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    frames: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    recovered: Mapped[str | None] = mapped_column(String(16))  # salvaged / adopted after a crash


class TimelineEventRow(Base):
    """One line of ``events.jsonl`` (join, leave, mute, pause...), or a manifest entry that is an
    event rather than a file (gap, drop, lost, error, track-removed, end).

    ``(recording_id, source, seq)`` names the line it came from, which makes indexing idempotent.
    """

    __tablename__ = "timeline_events"
    __table_args__ = (
        UniqueConstraint("recording_id", "source", "seq"),
        Index("ix_timeline_events_recording_at", "recording_id", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # "events" or "manifest"
    seq: Mapped[int] = mapped_column(Integer)  # line number in that file
    at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[str | None] = mapped_column(String(64))
    participant_name: Mapped[str | None] = mapped_column(String(128), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditRow(Base):
    """One entry of the archive's chain-of-custody log (server/audit.py; revision 0003).

    Append-only and hash-chained: ``hash`` is the SHA-256 of the entry's canonical JSON, which
    includes ``prev``, the previous entry's ``hash``; ``seq`` numbers the entries 0, 1, 2...
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(160))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32), index=True)
    recording_id: Mapped[str | None] = mapped_column(String(64), index=True)
    hearing_id: Mapped[str | None] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class Database:
    """Engine + session factory, and the schema migration that runs at startup."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- schema --------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the database to the newest revision in `server/migrations/` (blocking).

        An empty database gets every table. A database made by the old `create_all` (the baseline
        tables, no `alembic_version`) is stamped as the baseline revision first. Anything else
        without a version raises :class:`MigrationError` rather than guessing.

        All of it runs in one transaction: on PostgreSQL with an advisory lock, so two starting
        servers do not race; on SQLite on a separate connection that really begins one before the
        DDL (``BEGIN IMMEDIATE``; the driver's own transactions leave DDL out) and has foreign keys
        off, so that a batch-mode table copy cannot fire ``ON DELETE CASCADE``. The keys are
        checked with ``PRAGMA foreign_key_check`` before the commit.
        """
        from alembic import command  # imported here: only startup and tests pay for it

        engine = self._migration_engine()
        try:
            with engine.begin() as connection:
                dialect = connection.dialect.name
                if dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key()}
                    )
                config = self.alembic_config(connection)
                if _needs_baseline_stamp(connection):
                    logger.warning(
                        "database %s predates migrations: stamping it as revision %s",
                        self.engine.url.render_as_string(hide_password=True),
                        BASELINE_REVISION,
                    )
                    command.stamp(config, BASELINE_REVISION)
                command.upgrade(config, "head")
                if dialect == "sqlite":
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise MigrationError(f"migration broke foreign keys: {broken[:10]}")
        finally:
            if engine is not self.engine:
                engine.dispose()

    def _migration_engine(self) -> Engine:
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return self.engine
        engine = create_engine(url, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_migration_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine

    def create_all(self) -> None:
        """Deprecated name of :meth:`migrate`, kept while callers move over."""
        self.migrate()

    def alembic_config(self, connection: Connection | None = None) -> Config:
        """An `alembic.config.Config` for this database (no alembic.ini needed).

        With ``connection``, Alembic runs on it (inside the caller's transaction); without, env.py
        connects with this database's engine. For a new revision::

            from alembic import command
            command.revision(Database(url).alembic_config(), "what changed", autogenerate=True)
        """
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")  # mypy: no leading digit
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["connection"] = connection
        config.attributes["engine"] = self.engine
        return config

    def current_revision(self) -> str | None:
        """The revision the database is at (None: not migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # -- sessions ------------------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    # -- queries -------------------------------------------------------------------------------

    def get_hearing(self, hearing_id: str) -> HearingRow | None:
        with self.session() as s:
            return s.get(HearingRow, hearing_id)

    def list_hearings(self, limit: int = 500) -> list[HearingRow]:
        with self.session() as s:
            rows = s.scalars(select(HearingRow).order_by(HearingRow.created_at.desc()).limit(limit))
            return list(rows)

    def invites_of(self, hearing_id: str) -> list[InviteRow]:
        with self.session() as s:
            return list(s.scalars(select(InviteRow).where(InviteRow.hearing_id == hearing_id)))

    def admissions_of(self, hearing_id: str) -> list[AdmissionRow]:
        with self.session() as s:
            return list(
                s.scalars(select(AdmissionRow).where(AdmissionRow.hearing_id == hearing_id))
            )

    def find_code(self, code: str) -> InviteRow | None:
        with self.session() as s:
            return s.scalars(select(InviteRow).where(InviteRow.code == code)).first()


def _lock_key() -> int:
    return _MIGRATION_LOCK - (1 << 64) if _MIGRATION_LOCK >= 1 << 63 else _MIGRATION_LOCK


def _needs_baseline_stamp(connection: Connection) -> bool:
    """True for a database that `create_all` made before migrations (see BASELINE_COLUMNS)."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if "alembic_version" in tables:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        if versions:
            return False
        tables.discard("alembic_version")
    ours = tables & set(Base.metadata.tables)
    if not ours:
        return False  # a new database (other applications' tables are left alone)
    if ours != set(BASELINE_COLUMNS):
        raise MigrationError(
            f"the database has tables {sorted(ours)} but no migration version, and they are not "
            f"the pre-migration schema {sorted(BASELINE_COLUMNS)}: refusing to guess"
        )
    for table, expected in BASELINE_COLUMNS.items():
        found = {c["name"] for c in inspector.get_columns(table)}
        if found != expected:
            raise MigrationError(
                f"table {table} has columns {sorted(found)}, the pre-migration schema has "
                f"{sorted(expected)}: refusing to stamp it"
            )
    return True


def _sqlite_migration_pragmas(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]  # we BEGIN ourselves
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=OFF")  # only takes effect outside a transaction: here
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
