"""Database fixtures: PostgreSQL when ``TINGSHEN_TEST_DATABASE_URL`` is set, else SQLite in tmp_path.

Import the fixtures into a test module (``from tests.db_fixtures import database, database_url``).
On PostgreSQL each test gets a schema of its own (``search_path`` set through the connection's
``options``), dropped afterwards, so runs and tests never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server.db import Database

ENV = "TINGSHEN_TEST_DATABASE_URL"


def postgres_url() -> str | None:
    """The PostgreSQL server the tests may use, or None for SQLite."""
    return os.environ.get(ENV) or None


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database for this test only."""
    base = postgres_url()
    if base is None:
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database for this test only."""
    db = Database(database_url)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()
