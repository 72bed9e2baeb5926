"""``sparecycles market …``: run the reference marketplace and operate it (requesters, credit, disputes).

The operator's commands work on the marketplace's database directly, on the machine that runs it;
they need no running server. Amounts are in the payout token's base units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sparecycles import launcher
from sparecycles.paths import AppPaths

market_app = typer.Typer(help="Run and operate the reference marketplace (a studio's own).", no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the marketplace keeps its files (default: the state folder).")
]
DbUrl = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SQLite in the data folder), e.g. postgresql://…")
]
KeyFile = Annotated[
    Path | None,
    typer.Option("--key-file", help="The operator's signing key file (0600); default: the OS keyring."),
]


def _data_dir(data_dir: Path | None) -> Path:
    return data_dir or AppPaths.from_environment().state_dir / "market"


def _operator(data_dir: Path | None, db: str | None, key_file: Path | None) -> launcher.MarketOperator:
    try:
        return launcher.market_operator(_data_dir(data_dir), db, key_file)
    except Exception as exc:  # the database or the key cannot be opened: say which and stop
        err.print(f"[bold red]Error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


def _refused(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]Error:[/] {getattr(exc, 'detail', exc)}", soft_wrap=True)
    return typer.Exit(1)


@market_app.command("serve")
def serve(
    *,
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    heartbeat_interval: Annotated[
        float, typer.Option(help="Seconds between a provider's heartbeats.", min=0.1, max=3600)
    ] = 5.0,
    lease_timeout: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which a lease is lost.", min=1, max=86400)
    ] = 30.0,
) -> None:
    """Serve the marketplace (protocol v1) until interrupted."""
    try:
        launcher.market_serve(
            _data_dir(data_dir),
            db,
            key_file,
            host=host,
            port=port,
            heartbeat_interval_s=heartbeat_interval,
            lease_timeout_s=lease_timeout,
        )
    except Exception as exc:
        raise _refused(exc) from None


@market_app.command("add-requester")
def add_requester(
    name: Annotated[str, typer.Argument(help="A name for the requester (a team, a project).")],
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Create a requester and print its API key (shown this once; only its hash is kept)."""
    try:
        key = _operator(data_dir, db, key_file).add_requester(name)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(key)


@market_app.command("credit")
def credit(
    name: Annotated[str, typer.Argument(help="The requester.")],
    amount: Annotated[int, typer.Argument(help="Base units to add to its credit.", min=1)],
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Add credit to a requester (it paid the operator off-chain)."""
    try:
        view = _operator(data_dir, db, key_file).credit(name, amount)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(f"{view.name}: {view.credit_base_units} available, {view.held_base_units} held by running jobs")


@market_app.command("resolve")
def resolve(
    job_id: Annotated[str, typer.Argument(help="The disputed job.")],
    *,
    accept: Annotated[str | None, typer.Option("--accept", help="The provider whose result is right.")] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Reject every result: nobody is paid.")] = False,
    data_dir: DataDir = None,
    db: DbUrl = None,
    key_file: KeyFile = None,
) -> None:
    """Settle a disputed job: pay the provider --accept names, or --reject them all."""
    if (accept is None) == (not reject):
        err.print("[bold red]Error:[/] give exactly one of --accept PROVIDER or --reject")
        raise typer.Exit(2)
    try:
        view = _operator(data_dir, db, key_file).resolve(job_id, accept)
    except Exception as exc:
        raise _refused(exc) from None
    out.print(f"{view.job_id}: {view.state} — {view.reason}; the requester paid {view.charged_base_units}")
