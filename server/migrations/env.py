"""Alembic environment, run by :meth:`server.db.Database.migrate` (there is no alembic.ini).

How this works: ``Database.alembic_config()`` builds the ``alembic.config.Config`` in code, with
``script_location`` set to this folder. When it passes a connection in
``config.attributes["connection"]``, the migrations run on it, inside the caller's transaction
(``migrate()`` holds one transaction for the stamp check, the stamp and the upgrade; on SQLite it
is a real ``BEGIN IMMEDIATE`` with foreign keys off, checked before the commit); otherwise env.py
connects with ``config.attributes["engine"]`` or the ``sqlalchemy.url`` option.

``render_as_batch=True`` makes autogenerate write ``op.batch_alter_table`` blocks, the form of
ALTER that SQLite can run (it copies the table) and PostgreSQL runs as plain ALTERs. Constraints
are named by the naming convention on ``Base.metadata``, so a batch block can refer to them.

A new revision, after changing the models in ``server/db.py``::

    from alembic import command
    from server.db import Database
    command.revision(Database(url).alembic_config(), "add x", autogenerate=True,
                     rev_id="0003")

which writes ``versions/v0003_add_x.py`` (the ``v``: mypy refuses module names that start with a
digit); run ``ruff check --fix`` and ``ruff format`` on it, read it, fix what autogenerate
cannot see (renames, data), and run ``pytest tests/test_migrations.py`` against SQLite and
PostgreSQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import Engine

from server.db import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """``--sql`` mode: write the SQL instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the caller's connection, or on a new one."""
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no connection, engine or sqlalchemy.url to migrate")
        engine = create_engine(url)
    with engine.connect() as new_connection:
        _run(new_connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
