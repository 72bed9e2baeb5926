"""The marketplace operator's tools as ``sparecycles market …`` commands: providers and jobs with filters,
bans, API keys, cancelling, storage quotas, output retention, admin tokens and the audit log.

They work on the marketplace's database directly, on the machine that runs it (no server needed), and
each leaves an entry in the audit log; the admin API (``/v1/admin``) offers the same to a token holder.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from sparecycles.market_options import AsJson, DataDir, DbUrl, KeyFile, refusing
from sparecycles.market_options import operator as _operator
from sparecycles.protocol.admin import AuditEntry
from sparecycles.protocol.market import JobState
from sparecycles.terminal import out, styled

_AUDIT_COLUMNS = ("id", "at", "actor", "action", "subject", "amount_base_units", "detail")


def _print_json(items: list[object]) -> None:
    sys.stdout.write(json.dumps(items, indent=2) + "\n")


def write_audit(entries: list[AuditEntry], stream: TextIO, fmt: str) -> None:
    """The audit log as JSON lines (one entry a line) or CSV (detail as a JSON column)."""
    if fmt == "csv":
        writer = csv.writer(stream)
        writer.writerow(_AUDIT_COLUMNS)
        for entry in entries:
            row = entry.model_dump(mode="json")
            writer.writerow([*(row[column] for column in _AUDIT_COLUMNS[:-1]), json.dumps(row["detail"])])
        return
    for entry in entries:
        stream.write(entry.model_dump_json() + "\n")


def register_operator_commands(app: typer.Typer) -> None:  # noqa: PLR0915 - the commands, read in one place
    @app.command("providers")
    def providers(
        *,
        online: Annotated[
            bool | None, typer.Option("--online/--offline", help="Only providers seen lately, or only the others.")
        ] = None,
        banned: Annotated[bool | None, typer.Option("--banned/--not-banned", help="Only banned, or unbanned.")] = None,
        search: Annotated[str | None, typer.Option(help="A fragment of the name or address.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
        as_json: AsJson = False,
    ) -> None:
        """List providers, most recently seen first."""
        with refusing():
            found = _operator(data_dir, db, key_file).providers(
                online=online, banned=banned, search=search, limit=limit
            )
        if as_json:
            _print_json([item.model_dump(mode="json") for item in found])
            return
        if not found:
            out.print("No provider matches.")
        for item in found:
            state = f"banned: {item.ban_reason}" if item.banned else ("online" if item.online else "offline")
            out.print(
                f"{item.address}  {item.name}  {state}  {item.offered_gpus} GPU(s), {item.offered_cores} core(s) "
                f"offered, {item.active_leases} active lease(s), last seen {item.last_seen_at:%Y-%m-%d %H:%M:%S}",
                soft_wrap=True,
            )

    @app.command("jobs")
    def jobs(
        *,
        state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
        requester: Annotated[str | None, typer.Option(help="Only this requester's jobs.")] = None,
        provider: Annotated[str | None, typer.Option(help="Only jobs this provider held a lease of.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
        as_json: AsJson = False,
    ) -> None:
        """List every requester's jobs, newest first."""
        with refusing():
            found = _operator(data_dir, db, key_file).jobs(
                state=state, requester=requester, provider=provider, limit=limit
            )
        if as_json:
            _print_json([item.model_dump(mode="json") for item in found])
            return
        if not found:
            out.print("No job matches.")
        for item in found:
            job = item.job
            out.print(
                styled(
                    f"{job.job_id}  {item.requester}  ",
                    (job.state.value, "bold"),
                    f" — {job.reason}; held {job.held_base_units}, charged {job.charged_base_units}",
                ),
                soft_wrap=True,
            )

    @app.command("ban")
    def ban(
        provider: Annotated[str, typer.Argument(help="The provider's identity address.")],
        *,
        reason: Annotated[str, typer.Option("--reason", help="Why (shown to the provider when it signs in).")],
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Ban a provider: its unfinished leases go back to the queue unpaid and it cannot sign in."""
        with refusing():
            withdrawn = _operator(data_dir, db, key_file).ban(provider, reason)
        out.print(f"Banned {provider}; {len(withdrawn)} lease(s) went back to the queue.")

    @app.command("unban")
    def unban(
        provider: Annotated[str, typer.Argument(help="The provider's identity address.")],
        *,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Lift a provider's ban: it may sign in again."""
        with refusing():
            _operator(data_dir, db, key_file).unban(provider)
        out.print(f"Unbanned {provider}.")

    @app.command("rotate-key")
    def rotate_key(
        name: Annotated[str, typer.Argument(help="The requester.")],
        *,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Give a requester a new API key and print it (shown this once); the old key stops working."""
        with refusing():
            key = _operator(data_dir, db, key_file).rotate_key(name)
        out.print(key)

    @app.command("revoke-key")
    def revoke_key(
        name: Annotated[str, typer.Argument(help="The requester.")],
        *,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Stop a requester's API key working (its jobs go on); `rotate-key` gives it a new one."""
        with refusing():
            _operator(data_dir, db, key_file).revoke_key(name)
        out.print(f"The API key of {name} is revoked.")

    @app.command("cancel")
    def cancel(
        job_id: Annotated[str, typer.Argument(help="Any requester's job.")],
        *,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Cancel a job: running providers are paid their time, the rest of the held credit returns."""
        with refusing():
            view = _operator(data_dir, db, key_file).cancel_job(job_id)
        out.print(f"{view.job_id}: {view.state.value} — the requester paid {view.charged_base_units}", soft_wrap=True)

    @app.command("quota")
    def quota(
        name: Annotated[str, typer.Argument(help="The requester.")],
        size: Annotated[
            int | None, typer.Argument(help="Bytes of outputs it may keep; leave out to show it.", min=0)
        ] = None,
        *,
        default: Annotated[bool, typer.Option("--default", help="Go back to the server's default quota.")] = False,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Show or set a requester's storage quota for job outputs kept on the server."""
        with refusing():
            admin = _operator(data_dir, db, key_file)
            account = admin.set_quota(name, size) if size is not None or default else admin.account(name)
        out.print(
            f"{account.name}: {account.stored_bytes} of {account.storage_quota_bytes} bytes of outputs stored",
            soft_wrap=True,
        )

    @app.command("retention")
    def retention(
        *,
        older_than_days: Annotated[
            float, typer.Option("--older-than-days", help="Delete outputs of jobs ended longer ago.", min=0)
        ],
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Delete the stored outputs of jobs that ended more than N days ago (or let `serve
        --output-retention-days` do it hourly)."""
        with refusing():
            files, freed = _operator(data_dir, db, key_file).delete_expired_outputs(older_than_days)
        out.print(f"Deleted {files} output file(s), {freed} bytes.")

    @app.command("admin-token")
    def admin_token(
        name: Annotated[str, typer.Argument(help="Who or what holds it (the audit log names it).")],
        *,
        revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the token of this name instead.")] = False,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Create an admin-API token and print it (shown this once), or --revoke one."""
        with refusing():
            admin = _operator(data_dir, db, key_file)
            if revoke:
                admin.revoke_token(name)
                out.print(f"The admin token {name} is revoked.")
                return
            token = admin.create_token(name)
        out.print(token)

    @app.command("audit")
    def audit(
        *,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
        ] = None,
        fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
        after_id: Annotated[int, typer.Option(help="Only entries after this one (an export's last id).")] = 0,
        action: Annotated[str | None, typer.Option(help="Only this action (credit, hold, charge, ban…).")] = None,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Export the audit log: every operator action and every credit movement, in order."""
        if fmt not in ("jsonl", "csv"):
            raise typer.BadParameter("--format is jsonl or csv")
        entries: list[AuditEntry] = []
        with refusing():
            admin = _operator(data_dir, db, key_file)
            while page := admin.audit(after_id=after_id, action=action):
                entries.extend(page)
                after_id = page[-1].id
        if output is None:
            write_audit(entries, sys.stdout, fmt)
            return
        with output.open("w", newline="", encoding="utf-8") as stream:
            write_audit(entries, stream, fmt)
        out.print(f"Wrote {len(entries)} audit entries to {output}")
