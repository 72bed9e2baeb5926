"""Alembic's environment for the ledger: always given a connection by the ledger store."""

from __future__ import annotations

from alembic import context

from sparecycles.agent.ledger.db import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
