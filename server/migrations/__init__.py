"""Alembic migrations of Tingshen's database; run by :meth:`server.db.Database.migrate`."""
