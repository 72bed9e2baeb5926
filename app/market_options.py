"""What every ``sparecycles market …`` command shares: where the marketplace lives, and how it fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from sparecycles import launcher
from sparecycles.paths import AppPaths
from sparecycles.terminal import print_error

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the marketplace keeps its files (default: the state folder).")
]
DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: SQLite in the data folder), e.g. postgresql+psycopg://user:pw@host/db"
    ),
]
KeyFile = Annotated[
    Path | None,
    typer.Option("--key-file", help="The operator's signing key file (0600); default: the OS keyring."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def data_dir(given: Path | None) -> Path:
    return given or AppPaths.from_environment().state_dir / "market"


def operator(given_dir: Path | None, db: str | None, key_file: Path | None) -> launcher.MarketOperator:
    try:
        return launcher.market_operator(data_dir(given_dir), db, key_file)
    except Exception as exc:  # the database or the key cannot be opened: say which and stop
        print_error(str(exc))
        raise typer.Exit(2) from None


def refused(exc: Exception) -> typer.Exit:
    print_error(str(getattr(exc, "detail", exc)))
    return typer.Exit(1)


@contextlib.contextmanager
def refusing() -> Iterator[None]:
    """Turn whatever the marketplace refuses into its message on stderr and exit status 1."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        raise refused(exc) from None
