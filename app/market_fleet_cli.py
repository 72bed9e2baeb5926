"""A studio's fleet, operated on the marketplace's own machine: ``sparecycles market enrol-code``,
``group-policy``, ``groups`` and ``requester-group``. Each is audited; ``sparecycles fleet`` is the
same view and remote actions over the admin API, from any machine."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from sparecycles.durations import parse_duration
from sparecycles.market_options import AsJson, DataDir, DbUrl, KeyFile, refused, refusing
from sparecycles.market_options import operator as _operator
from sparecycles.protocol.admin import CostRow
from sparecycles.protocol.fleet import GroupPolicy
from sparecycles.terminal import out

GroupArgument = Annotated[str, typer.Argument(help="The group's name, e.g. render-farm.")]


def register_fleet_operator_commands(app: typer.Typer) -> None:
    @app.command("enrol-code")
    def enrol_code(
        *,
        group: Annotated[str, typer.Option("--group", help="The group machines join with the code.")],
        expires: Annotated[str, typer.Option(help="How long the code works, e.g. 24h or 7d (at most 30d).")] = "24h",
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
        as_json: AsJson = False,
    ) -> None:
        """Make a code for machines to join a group with (`sparecycles join URL`, which asks for it); shown once."""
        try:
            seconds = parse_duration(expires)
        except ValueError as exc:
            raise refused(exc) from None
        with refusing():
            code = _operator(data_dir, db, key_file).fleet.enrol_code(group, seconds, actor="operator (command line)")
        if as_json:
            sys.stdout.write(code.model_dump_json(indent=2) + "\n")
            return
        out.print(f"Enrolment code for group {code.group}, valid until {code.expires_at:%Y-%m-%d %H:%M} UTC:")
        out.print(code.code, soft_wrap=True)
        out.print("On each machine: sparecycles join URL, and give this code when asked (it is shown only now)")

    @app.command("revoke-enrol-codes")
    def revoke_enrol_codes(
        *,
        group: Annotated[str, typer.Option("--group", help="The group whose codes end now.")],
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """End every enrolment code of a group that still works (one that leaked, say); its machines stay."""
        with refusing():
            revoked = _operator(data_dir, db, key_file).fleet.revoke_enrol_codes(group, actor="operator (command line)")
        out.print(f"{revoked} enrolment code(s) of group {group} revoked; machines that joined stay in it.")
        out.print(f"New machines need a new code: sparecycles market enrol-code --group {group}")

    @app.command("group-policy")
    def group_policy(
        group: GroupArgument,
        *,
        mode: Annotated[
            str | None,
            typer.Option(help="idle, schedule, idle_or_schedule or idle_in_schedule (unset: each machine's)."),
        ] = None,
        window: Annotated[
            list[str] | None,
            typer.Option("--window", help='A weekly window, e.g. "Mon-Fri 19:00-08:00"; repeat for more.'),
        ] = None,
        idle_threshold: Annotated[str | None, typer.Option(help="Input-free time before work, e.g. 10m.")] = None,
        max_temperature: Annotated[int | None, typer.Option(help="Temperature cap in degrees Celsius.")] = None,
        power_limit: Annotated[int | None, typer.Option(help="Board power cap, percent of default.")] = None,
        pause_process: Annotated[
            list[str] | None, typer.Option("--pause-process", help="A game or app that pauses work; repeat for more.")
        ] = None,
        outside_jobs: Annotated[
            bool, typer.Option("--outside-jobs/--studio-only", help="Whether other requesters' jobs may run.")
        ] = True,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
        as_json: AsJson = False,
    ) -> None:
        """Set a group's policy (the whole of it; creates the group). Its machines apply it at their next report;
        a machine's owner keeps what is stricter on their machine."""
        try:
            policy = GroupPolicy.model_validate(
                {
                    "mode": mode,
                    "windows": window,
                    "idle_threshold": idle_threshold,
                    "max_temperature_c": max_temperature,
                    "power_limit_percent": power_limit,
                    "pause_processes": pause_process or [],
                    "outside_jobs": outside_jobs,
                }
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise refused(ValueError(f"the policy is not valid: {problems}")) from None
        with refusing():
            view = _operator(data_dir, db, key_file).fleet.set_policy(group, policy, actor="operator (command line)")
        if as_json:
            sys.stdout.write(view.model_dump_json(indent=2) + "\n")
            return
        out.print(f"Group {view.name}: policy version {view.policy_version}, {view.machines} machine(s)")

    @app.command("groups")
    def groups(
        *, data_dir: DataDir = None, db: DbUrl = None, key_file: KeyFile = None, as_json: AsJson = False
    ) -> None:
        """List the studio groups, their policies and how many machines each has."""
        with refusing():
            found = _operator(data_dir, db, key_file).fleet.groups()
        if as_json:
            sys.stdout.write(json.dumps([view.model_dump(mode="json") for view in found], indent=2) + "\n")
            return
        if not found:
            out.print("No group yet: `sparecycles market enrol-code --group NAME` makes one.")
        for view in found:
            policy = view.policy.model_dump(exclude_defaults=True)
            out.print(f"{view.name}  {view.machines} machine(s)  v{view.policy_version}  {policy}", soft_wrap=True)

    @app.command("requester-group")
    def requester_group(
        name: Annotated[str, typer.Argument(help="The requester (a person's account).")],
        group: Annotated[str | None, typer.Argument(help="The group whose own requester it is; omit for none.")] = None,
        *,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Make a requester one of a studio's own: its jobs run only on the group's machines, before outside work
        (which they preempt when no machine of the group is free)."""
        with refusing():
            _operator(data_dir, db, key_file).fleet.set_requester_group(name, group, actor="operator (command line)")
        out.print(f"Requester {name} is in group {group}" if group else f"Requester {name} is in no group")


def register_studio_account_commands(app: typer.Typer) -> None:
    @app.command("project-quota")
    def project_quota(
        name: Annotated[str, typer.Argument(help="The requester (a person's account).")],
        project: Annotated[str, typer.Argument(help="The project, as jobs name it (`project = ...`).")],
        amount: Annotated[int | None, typer.Argument(help="The most, in base units, held and charged at once.")] = None,
        *,
        remove: Annotated[bool, typer.Option("--remove", help="Remove the project's quota.")] = False,
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """Cap what a requester may commit to one project's jobs; a job past it is refused, saying so."""
        if (amount is None) == (not remove):
            raise refused(ValueError("give the AMOUNT, or --remove"))
        with refusing():
            view = _operator(data_dir, db, key_file).set_project_quota(name, project, None if remove else amount)
        if view is None:
            out.print(f"{name}'s project {project} has no quota now.")
        else:
            out.print(
                f"{name}'s project {project}: at most {view.max_base_units} base units, "
                f"{view.committed_base_units} committed now."
            )

    @app.command("costs")
    def costs(
        *,
        by: Annotated[str, typer.Option(help="requester, project or requester-project.")] = "requester",
        since: Annotated[
            datetime | None, typer.Option(help="Only jobs created since (a date, e.g. 2026-11-01).")
        ] = None,
        output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
        data_dir: DataDir = None,
        db: DbUrl = None,
        key_file: KeyFile = None,
    ) -> None:
        """What the studio's jobs cost, per person, per project or per person's project."""
        when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
        with refusing():
            rows = _operator(data_dir, db, key_file).costs(by=by, since=when)
        if output_format == "json":
            sys.stdout.write(json.dumps([row.model_dump(mode="json") for row in rows], indent=2) + "\n")
            return
        columns = list(CostRow.model_fields)
        if output_format == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([getattr(row, column) for column in columns])
            return
        if not rows:
            out.print("No job in that time.")
        for row in rows:
            who = " / ".join(part for part in (row.requester, row.project or "(no project)") if part)
            out.print(
                f"{who}: {row.jobs} job(s), {row.completed} completed, {row.charged_base_units} charged, "
                f"{row.held_base_units} held, {row.gpu_hours:.2f} GPU-h, {row.core_hours:.2f} core-h",
                soft_wrap=True,
            )
