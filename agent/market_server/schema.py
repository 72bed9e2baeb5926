"""Bring a marketplace database to this version's schema with Alembic, or refuse one that is newer.

The migrations ship inside the package (migrations/), so an installed server needs no alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from sparecycles.migrations import Migrations, SchemaError

MIGRATIONS = Path(__file__).with_name("migrations")
MARKET_MIGRATIONS = Migrations(MIGRATIONS, "the marketplace database")
_MARKET = MARKET_MIGRATIONS

__all__ = ["MARKET_MIGRATIONS", "MIGRATIONS", "SchemaError", "current_revision", "head_revision", "upgrade"]


def head_revision() -> str:
    return _MARKET.head()


def current_revision(engine: Engine) -> str | None:
    return _MARKET.current(engine)


def upgrade(engine: Engine) -> None:
    """Apply every migration the database lacks; refuse a database a newer server has migrated."""
    _MARKET.upgrade(engine)
