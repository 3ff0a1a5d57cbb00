"""The database: hearings and their invitations (SQLAlchemy 2, SQLite by default, PostgreSQL at scale).

Calls are synchronous and short; the aiohttp handlers run them with `asyncio.to_thread` so the event
loop (and the media on it) never waits on disk or on the database server.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import DateTime, ForeignKey, String, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class HearingRow(Base):
    __tablename__ = "hearings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    court: Mapped[str] = mapped_column(String(32), index=True)
    case_number: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
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
    hearing: Mapped[HearingRow] = relationship(back_populates="invites")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class Database:
    """Engine + session factory. `create_all` stands in for migrations until the catalog lands."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)

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

    def find_code(self, code: str) -> InviteRow | None:
        with self.session() as s:
            return s.scalars(select(InviteRow).where(InviteRow.code == code)).first()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
