"""`market backup` and `market restore`: a consistent copy of a live SQLite marketplace database, and putting
one back while no server runs.

The copy is made with SQLite's online backup API in one step, which reads a single snapshot: in WAL mode
the server keeps writing meanwhile, and the copy holds exactly the transactions committed before it began.
A copy is written next to its destination and renamed into place only once it passes SQLite's integrity
check, so a backup file is either whole or absent. PostgreSQL has its own tools (pg_dump, pg_restore).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sparecycles.agent.market_server import schema, server_lock

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_HINT = (
    "back up a PostgreSQL marketplace with its own tools, which are safe while servers run: "
    "`pg_dump -Fc -d postgresql://USER@HOST/DB -f market.dump` (the --db URL without +psycopg), and restore "
    "with `pg_restore --clean --if-exists -d postgresql://USER@HOST/DB market.dump` once every server is stopped; "
    "see docs/marketplace-operations.md"
)


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why and what to do instead."""


@dataclass(frozen=True)
class DatabaseCheck:
    """What a marketplace database file holds, once SQLite's integrity check passed."""

    jobs: int
    schema_revision: str


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size_bytes: int
    check: DatabaseCheck


@dataclass(frozen=True)
class RestoreReport:
    database: Path
    kept_aside: Path | None  # the database it replaced, if there was one
    check: DatabaseCheck


def sqlite_file(database_url: str) -> Path:
    """The SQLite file behind ``database_url``; a PostgreSQL URL is refused with the tools to use instead."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise BackupError(f"{database_url!r} is not a database URL") from None
    if url.get_backend_name() == "postgresql":
        raise BackupError(f"this marketplace runs on PostgreSQL: {PG_DUMP_HINT}")
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(f"only a SQLite file can be backed up by `market backup`, not {url.get_backend_name()}")
    return Path(url.database)


def backup(source: Path, dest: Path, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> BackupReport:
    """Copy the live database ``source`` to ``dest`` (a file, or a folder to put a dated file in)."""
    if not source.is_file():
        raise BackupError(
            f"there is no marketplace database at {source}; give the --data-dir (or --db) that `market serve` uses"
        )
    if dest.is_dir():
        dest = dest / f"market-{_stamp(clock())}.db"
    if dest.exists() and dest.resolve() == source.resolve():
        raise BackupError(f"{dest} is the live database itself; back it up to another file")
    if not dest.parent.is_dir():
        raise BackupError(f"the folder {dest.parent} does not exist; create it first")
    with _file_errors(dest), _partial_file(dest) as partial:
        # Read-write (never created) like the server's own connections, so that the last one to close cleans
        # up the write-ahead log; a read-only one would leave it behind.
        with contextlib.closing(_open(source, "rw")) as reader:
            _require_marketplace(reader, source)
            with contextlib.closing(sqlite3.connect(partial)) as writer:
                reader.backup(writer)  # all pages in one step: one consistent snapshot
                # One self-contained file, whatever the server's journal mode.
                writer.execute("PRAGMA journal_mode=DELETE")
                check = _check(writer, dest)
        _sync(partial)
        os.replace(partial, dest)
    _sync(dest.parent)
    return BackupReport(dest, dest.stat().st_size, check)


def restore(
    source: Path,
    database: Path,
    *,
    data_dir: Path,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RestoreReport:
    """Replace ``database`` with the backup ``source``, keeping the replaced file aside; refuse while a server
    runs on ``data_dir``."""
    _require_sqlite(source)
    if database.exists() and source.resolve() == database.resolve():
        raise BackupError(f"{source} is the live database itself; restore from a backup file")
    with _file_errors(database), server_lock.exclusive(data_dir):
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _partial_file(database) as partial:
            # Copy before checking, so that what is checked is exactly what is put in place.
            with contextlib.closing(_open(source, "ro")) as reader:
                _require_marketplace(reader, source)
                with contextlib.closing(sqlite3.connect(partial)) as writer:
                    reader.backup(writer)
                    writer.execute("PRAGMA journal_mode=DELETE")
                    check = _check(writer, source)
            _require_known_schema(check, source)
            _sync(partial)
            kept_aside = _set_aside(database, _stamp(clock()))
            os.replace(partial, database)
        _sync(database.parent)
    return RestoreReport(database, kept_aside, check)


# -- the steps ----------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@contextlib.contextmanager
def _file_errors(target: Path) -> Iterator[None]:
    """A file system refusal (permissions, a full disk) as a :class:`BackupError` that names it."""
    try:
        yield
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror or exc} ({exc.filename or target})") from None


@contextlib.contextmanager
def _partial_file(dest: Path) -> Iterator[str]:
    """A private temporary file next to ``dest`` (so the final rename is atomic), removed unless renamed."""
    descriptor, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(descriptor)
    try:
        yield partial
    finally:
        for leftover in (partial, f"{partial}-journal", f"{partial}-wal", f"{partial}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _open(path: Path, mode: str) -> sqlite3.Connection:
    try:
        # A generous busy timeout: a live server may hold the write lock for a moment.
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path} as a SQLite database ({exc})") from None


def _require_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"{path} does not exist") from None
    except OSError as exc:
        raise BackupError(f"cannot read {path} ({exc.strerror or exc})") from None
    if header != SQLITE_MAGIC:
        raise BackupError(f"{path} is not a SQLite database (a file `market backup` wrote)")


def _require_marketplace(connection: sqlite3.Connection, path: Path) -> None:
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be read as a SQLite database ({exc})") from None
    if "alembic_version" not in tables or "jobs" not in tables:
        raise BackupError(f"{path} is not a marketplace database (it has no alembic_version and jobs tables)")


def _check(connection: sqlite3.Connection, path: Path) -> DatabaseCheck:
    try:
        problems = [str(row[0]) for row in connection.execute("PRAGMA integrity_check")]
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        jobs = connection.execute("SELECT count(*) FROM jobs").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is damaged: SQLite cannot read it ({exc})") from None
    if problems != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {'; '.join(problems[:5])}")
    if revision is None:
        raise BackupError(f"{path} has no schema revision in alembic_version; it is not a usable marketplace database")
    return DatabaseCheck(jobs=int(jobs[0]), schema_revision=str(revision[0]))


def _require_known_schema(check: DatabaseCheck, path: Path) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    try:
        known = ScriptDirectory(str(schema.MIGRATIONS)).get_revision(check.schema_revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"{path} is at schema {check.schema_revision}, which this version of SpareCycles does not know; "
            "restore it with the version that made it"
        )


def _set_aside(database: Path, stamp: str) -> Path | None:
    """Move the database being replaced, and any write-ahead log of it, to ``<name>.before-restore-<stamp>``.

    A -wal (or -journal) file left beside the new database would be replayed into it, so it goes with the old
    one, whose log it is; the -shm index is rebuilt by SQLite and is simply removed.
    """
    if database.exists():
        _checkpoint(database)
    aside = database.with_name(f"{database.name}.before-restore-{stamp}")
    counter = 1
    while aside.exists():
        aside = database.with_name(f"{database.name}.before-restore-{stamp}-{counter}")
        counter += 1
    kept = None
    try:
        if database.exists():
            os.replace(database, aside)
            kept = aside
        for suffix in ("-wal", "-journal"):
            log_file = database.with_name(database.name + suffix)
            if log_file.exists():
                os.replace(log_file, aside.with_name(aside.name + suffix))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(database.with_name(f"{database.name}-shm"))
    except PermissionError:  # Windows: a process still has the database open
        raise BackupError(f"stop the marketplace first: {database} is open in another process") from None
    return kept


def _checkpoint(database: Path) -> None:
    """Fold the old database's write-ahead log into it, so the file kept aside is whole by itself."""
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _sync(path: Path | str) -> None:
    """Flush a file, or a folder's entries (a rename), to the disk before we report it done."""
    if sys.platform == "win32" and Path(path).is_dir():
        return  # folders cannot be opened for flushing there; NTFS journals renames itself
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
