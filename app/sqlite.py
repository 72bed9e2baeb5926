"""SQLite as the marketplace and the agent's ledger both open it: WAL, foreign keys, a busy timeout, and
transactions that the engine begins itself.

WAL lets readers run beside the one writer; ``synchronous=NORMAL`` keeps every commit through a killed
process (a power cut may take the last few, never half of one) without an fsync per commit. A writer's
transaction takes the write lock when it begins (``BEGIN IMMEDIATE``), so two that read the same row are
serialised instead of both acting on what they read; an engine for reading only begins deferred.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event


def wal_engine(url: str, *, for_reading: bool = False, **options: Any) -> Engine:
    """An engine for the SQLite database at ``url`` (``options`` go to ``create_engine``: pool sizes)."""
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **options)

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    begin = "BEGIN" if for_reading else "BEGIN IMMEDIATE"

    def _begin(dbapi_connection: Any) -> None:
        dbapi_connection.execute(begin)

    # The dialect's own hook, not a "begin" event: an engine with connection events has every statement of
    # every connection dispatch them (before and after each execution), which cost the marketplace's short
    # transactions more CPU than their statements did in SQLite.
    engine.dialect.do_begin = _begin  # type: ignore[method-assign]

    return engine
