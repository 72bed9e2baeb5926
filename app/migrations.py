"""Versioned schemas with Alembic: bring a database forward, or refuse one a newer version has migrated.

The marketplace's database and the agent's ledger each ship their migrations inside the package (a
``migrations`` folder beside their tables), so nothing needs an alembic.ini. A database at a revision
this version does not know was migrated by a newer SpareCycles: using it could lose what the newer
version wrote, so it is refused with a message that says what to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


class SchemaError(RuntimeError):
    """The database cannot be used by this version; the message says what to do."""


class Migrations:
    def __init__(self, folder: Path, what: str) -> None:
        self.folder = folder
        self._what = what  # "the marketplace database", "the ledger"

    def _config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.folder))
        return config

    def head(self) -> str:
        head = ScriptDirectory.from_config(self._config()).get_current_head()
        assert head is not None  # noqa: S101 - the package ships at least one revision
        return head

    def knows(self, revision: str) -> bool:
        from alembic.util.exc import CommandError

        try:
            return ScriptDirectory.from_config(self._config()).get_revision(revision) is not None
        except CommandError:  # alembic's ResolutionError is one: a revision this version does not ship
            return False

    @staticmethod
    def current(engine: Engine) -> str | None:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self, engine: Engine) -> None:
        """Apply every migration the database lacks; refuse a database a newer version has migrated."""
        current = self.current(engine)
        if current is not None and not self.knows(current):
            raise SchemaError(
                f"{self._what} is at schema {current}, newer than this version of SpareCycles knows; "
                "run the version that created it, or restore a backup"
            )
        self.move_to(engine, "head")

    def move_to(self, engine: Engine, revision: str, *, down: bool = False) -> None:
        """Upgrade (or, with ``down``, downgrade) to ``revision``: what :meth:`upgrade` does, and what tests use
        to make a database as an older version left it."""
        config = self._config()
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
