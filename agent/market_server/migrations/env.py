"""Alembic's environment for the marketplace database: always given a connection by schema.py."""

from __future__ import annotations

from alembic import context

from sparecycles.agent.market_server.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
