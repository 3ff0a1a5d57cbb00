"""Alembic revisions, oldest first: ``v0001_baseline``, ``v0002_catalog``..."""
