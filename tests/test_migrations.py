"""Schema migrations: Alembic run from code on SQLite and PostgreSQL (server.db, server/migrations)."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    inspect,
    text,
)

import server.db
from server.db import (
    BASELINE_REVISION,
    Base,
    Database,
    HearingRow,
    InviteRow,
    MigrationError,
    RecordingRow,
)
from tests.db_fixtures import database, database_url  # noqa: F401  (fixtures)

CATALOG = {"recordings", "tracks", "segments", "timeline_events"}


def head(db: Database) -> str:
    revision = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert revision is not None
    return revision


def tables(db: Database) -> set[str]:
    with db.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def legacy_metadata(extra_column: bool = False) -> MetaData:
    """hearings and invites exactly as `create_all` made them before migrations existed."""
    metadata = MetaData()
    hearing_columns: list[Column[Any]] = [
        Column("id", String(32), primary_key=True),
        Column("court", String(32), index=True, nullable=False),
        Column("case_number", String(128), index=True, nullable=False),
        Column("kind", String(32), nullable=False),
        Column("state", String(16), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("ended_at", DateTime(timezone=True), nullable=True),
    ]
    if extra_column:
        hearing_columns.append(Column("judge", String(64), nullable=True))
    Table("hearings", metadata, *hearing_columns)
    Table(
        "invites",
        metadata,
        Column("id", String(32), primary_key=True),
        Column("hearing_id", ForeignKey("hearings.id"), index=True, nullable=False),
        Column("role", String(32), nullable=False),
        Column("name", String(64), nullable=False),
        Column("code", String(16), unique=True, nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("code_used_at", DateTime(timezone=True), nullable=True),
    )
    return metadata


def make_legacy(url: str, extra_column: bool = False) -> None:
    engine = create_engine(url)
    metadata = legacy_metadata(extra_column)
    metadata.create_all(engine)
    now = dt.datetime(2025, 10, 9, 8, 0, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(metadata.tables["hearings"]).values(
                id="old",
                court="zhou",
                case_number="（2025）川33民初1号",
                kind="hearing",
                state="closed",
                created_at=now,
            )
        )
        connection.execute(
            insert(metadata.tables["invites"]).values(
                id="i1",
                hearing_id="old",
                role="judge",
                name="Judge",
                code="ABC123",
                expires_at=now,
            )
        )
    engine.dispose()


def test_upgrade_head_on_an_empty_database(database_url: str) -> None:  # noqa: F811
    db = Database(database_url)
    try:
        assert db.current_revision() is None
        db.migrate()
        assert db.current_revision() == head(db)
        assert {"alembic_version", "hearings", "invites"} | CATALOG <= tables(db)
        db.migrate()  # nothing to do the second time
        db.create_all()  # the old name still works
        assert db.current_revision() == head(db)
    finally:
        db.dispose()


def test_migrations_match_the_models(database: Database) -> None:  # noqa: F811
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_revisions_form_one_line_from_the_baseline(database: Database) -> None:  # noqa: F811
    script = ScriptDirectory.from_config(database.alembic_config())
    revisions = list(script.walk_revisions())
    assert revisions[-1].revision == BASELINE_REVISION
    assert len(script.get_heads()) == 1


def test_create_all_database_is_stamped_and_upgraded(database_url: str) -> None:  # noqa: F811
    make_legacy(database_url)
    db = Database(database_url)
    try:
        db.migrate()
        assert db.current_revision() == head(db)
        assert CATALOG <= tables(db)
        hearing = db.get_hearing("old")
        assert hearing is not None and hearing.case_number == "（2025）川33民初1号"
        with db.session() as s:  # the old rows take part in the new tables' keys
            invite = s.get(InviteRow, "i1")
            assert invite is not None and invite.hearing_id == "old"
            assert invite.court is None  # an old invitation is at its hearing's court
            s.add(RecordingRow(id="r1", hearing_id="old", status="complete", path="old/r1"))
        db.migrate()
    finally:
        db.dispose()


def test_unknown_schema_without_version_is_refused(database_url: str) -> None:  # noqa: F811
    make_legacy(database_url, extra_column=True)
    db = Database(database_url)
    try:
        with pytest.raises(MigrationError, match="judge"):
            db.migrate()
        assert db.current_revision() is None
        assert not CATALOG & tables(db)  # nothing was changed
    finally:
        db.dispose()


def test_partial_catalog_without_version_is_refused(database_url: str) -> None:  # noqa: F811
    engine = create_engine(database_url)
    Base.metadata.tables["hearings"].create(engine)
    Base.metadata.tables["recordings"].create(engine)
    engine.dispose()
    db = Database(database_url)
    try:
        with pytest.raises(MigrationError, match="refusing to guess"):
            db.migrate()
    finally:
        db.dispose()


def test_a_failing_revision_changes_nothing(
    database: Database,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = database.current_revision()
    migrations = tmp_path / "migrations"
    shutil.copytree(server.db.MIGRATIONS, migrations)
    (migrations / "versions" / "v9999_broken.py").write_text(
        f'''"""A revision that fails half way."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = {before!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("hearings", sa.Column("note", sa.String(10)))
    raise RuntimeError("broken revision")


def downgrade() -> None:
    pass
'''
    )
    monkeypatch.setattr(server.db, "MIGRATIONS", migrations)
    with pytest.raises(RuntimeError, match="broken revision"):
        database.migrate()
    monkeypatch.undo()
    assert database.current_revision() == before
    assert "half_done" not in tables(database)
    with database.engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("hearings")}
    assert "note" not in columns
    with database.session() as s:  # and the database still works
        s.add(HearingRow(id="h1", court="zhou", case_number="x", kind="hearing"))


def test_two_servers_migrating_at_once(database_url: str) -> None:  # noqa: F811
    dbs = [Database(database_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(db: Database) -> None:
        try:
            db.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert dbs[0].current_revision() == head(dbs[0])
        with dbs[0].engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        for db in dbs:
            db.dispose()
