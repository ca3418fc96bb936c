"""Alembic migrations of the state store; run by `crmsync.store.database.migrate`."""
