"""A studio fleet on the command line: ``sparecycles join URL`` and ``leave`` on each machine (through its
agent), and ``sparecycles fleet`` for the operator: every machine's state, and drain, pause and cancel. The
enrolment code and the admin token come from the environment, a 0600 file or a hidden prompt, not the command
line (``secret_input.SecretInput``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sparecycles.command_wiring import Connect, Fail
from sparecycles.durations import parse_clock_time, parse_duration
from sparecycles.secret_input import SecretInput, SecretInputError
from sparecycles.terminal import out

if TYPE_CHECKING:  # the clients load when a command talks to the agent or the marketplace
    from sparecycles.fleet_admin import FleetAdminClient
    from sparecycles.protocol.fleet import FleetMachine

MarketUrl = Annotated[
    str, typer.Option("--market", envvar="SPARECYCLES_FLEET_URL", help="The studio's marketplace URL (or the env).")
]
ADMIN_TOKEN = SecretInput(
    name="the admin token",
    prompt="Admin token (sco_…)",
    envvar="SPARECYCLES_ADMIN_TOKEN",
    file_option="--admin-token-file",
    visible_form="--admin-token",
)
ENROL_CODE = SecretInput(
    name="the enrolment code",
    prompt="Enrolment code (sce_…)",
    envvar="SPARECYCLES_ENROL_CODE",
    file_option="--code-file",
    visible_form="CODE on the command line",
)

AdminToken = Annotated[
    str | None,
    typer.Option(
        "--admin-token",
        help="An admin token, sco_…; other users can read it there: prefer SPARECYCLES_ADMIN_TOKEN, "
        "--admin-token-file or the prompt.",
        show_default=False,
    ),
]
AdminTokenFile = Annotated[
    Path | None,
    typer.Option(
        "--admin-token-file",
        help="A file (0600) holding the admin token; default: SPARECYCLES_ADMIN_TOKEN, or asked for in a terminal.",
    ),
]
Machine = Annotated[str, typer.Argument(help="The machine's identity address (0x…), as `sparecycles fleet` lists it.")]


def machine_line(machine: FleetMachine, now: datetime) -> str:
    """One machine in words: name, state and reason (or offline since when), GPUs, jobs, today's work."""
    if not machine.online:
        state = f"OFFLINE, last seen {machine.last_seen_at.astimezone():%Y-%m-%d %H:%M}"
    elif machine.paused_until is not None:
        state = f"paused by the studio until {machine.paused_until.astimezone():%H:%M}"
    else:
        state = f"{machine.state or 'no report yet'}: {machine.reason or ''}".rstrip(": ")
    if machine.drain:
        state += " (draining)"
    gpus = ", ".join(gpu.name for gpu in machine.gpus) or "no GPU"
    jobs = ", ".join(machine.jobs) or "no job"
    energy = f", {machine.energy_kwh_today:.2f} kWh" if machine.energy_kwh_today is not None else ""
    version = f"  v{machine.agent_version}" if machine.agent_version else ""
    return (
        f"{machine.name}  {machine.address}  [{machine.group}]  {state}  |  {gpus}  |  {jobs}  |  "
        f"today {machine.gpu_hours_today:.2f} GPU-h{energy}{version}"
    )


def register_fleet_commands(  # noqa: PLR0915 - the commands, read in one place
    app: typer.Typer, agent: Connect, fail: Fail
) -> None:
    def secret(source: SecretInput, given: str | None, file: Path | None, missing: str) -> str:
        try:
            found = source.read(given, file)
        except SecretInputError as exc:
            fail(str(exc), 2)
        if found is None:
            fail(f"{missing}: {source.ways()}", 2)
        return found

    @app.command()
    def join(
        url: Annotated[str, typer.Argument(help="The studio's marketplace, e.g. https://render.studio.example")],
        code: Annotated[
            str | None,
            typer.Argument(
                help="The enrolment code; other users can read it there: leave it out to be asked for it, or set "
                "SPARECYCLES_ENROL_CODE or --code-file.",
                show_default=False,
            ),
        ] = None,
        code_file: Annotated[
            Path | None, typer.Option("--code-file", help="A file (0600) holding the enrolment code.")
        ] = None,
    ) -> None:
        """Join a studio's fleet with the enrolment code its operator gave you (from SPARECYCLES_ENROL_CODE,
        --code-file, or asked for): this machine takes work from the studio's marketplace and follows its group's
        schedule and limits (your own stricter settings, and your pause, still win)."""
        code = secret(ENROL_CODE, code, code_file, "give the enrolment code the studio's operator made")
        with agent() as client:
            status = client.join_studio(url, code)
        out.print(f"Joined group {status.group} of {status.studio}: {status.note}.", soft_wrap=True)
        out.print(
            f"Working by: {status.applied.work_mode}, {', '.join(status.applied.schedule_windows) or 'no window'}"
        )

    @app.command()
    def leave() -> None:
        """Leave the studio's fleet: your own settings apply again."""
        with agent() as client:
            group = client.leave_studio()
        out.print(f"Left group {group}: this machine works by your own settings again.")

    fleet_app = typer.Typer(
        help="The studio operator's view of every machine, and remote actions (needs an admin token).",
        invoke_without_command=True,
    )

    @contextmanager
    def admin(ctx: typer.Context) -> Iterator[FleetAdminClient]:
        """A client of the admin API; the token is read only now, so that `fleet ACTION --help` asks for none."""
        from sparecycles.fleet_admin import FleetAdminClient, FleetAdminError

        market, token, token_file = ctx.obj
        if not market:
            fail("give the studio's marketplace: --market URL (or SPARECYCLES_FLEET_URL)", 2)
        found = secret(ADMIN_TOKEN, token, token_file, "give the studio's admin token (sco_…)")
        try:
            with FleetAdminClient(market, found) as client:
                yield client
        except FleetAdminError as exc:
            fail(str(exc), 1)

    @fleet_app.callback()
    def fleet(
        ctx: typer.Context,
        *,
        market: MarketUrl = "",
        token: AdminToken = None,
        token_file: AdminTokenFile = None,
        group: Annotated[str | None, typer.Option(help="Only this group's machines.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List every machine of the studio: state and reason, GPUs, jobs, today's GPU-hours and energy, last seen
        (offline when silent past the heartbeat timeout), agent version."""
        ctx.obj = (market, token, token_file)
        if ctx.invoked_subcommand is not None:
            return
        with admin(ctx) as client:
            machines = client.machines(group)
        if as_json:
            sys.stdout.write(json.dumps([machine.model_dump(mode="json") for machine in machines], indent=2) + "\n")
            return
        if not machines:
            out.print(
                "No machine in a group yet: `sparecycles market enrol-code --group NAME`, then `sparecycles join`."
            )
        now = datetime.now(UTC)
        for machine in machines:
            out.print(machine_line(machine, now), soft_wrap=True)

    @fleet_app.command("drain")
    def drain(ctx: typer.Context, address: Machine, *, undo: Annotated[bool, typer.Option("--undo")] = False) -> None:
        """Drain a machine: it finishes its current job and takes no new one (--undo ends the drain)."""
        with admin(ctx) as client:
            machine = client.drain(address, not undo)
        out.print(machine_line(machine, datetime.now(UTC)), soft_wrap=True)

    @fleet_app.command("pause")
    def pause(
        ctx: typer.Context,
        address: Machine,
        until: Annotated[str, typer.Argument(help="Until when: a time of day (07:00) or a duration (8h).")],
    ) -> None:
        """Pause a machine until a time: its jobs go back to the queue and it takes none until then."""
        now = datetime.now(UTC)
        try:
            when = parse_clock_time(until, now)
            if when is None:
                when = datetime.fromtimestamp(now.timestamp() + parse_duration(until), UTC)
        except ValueError as exc:
            fail(f"{exc} (or a time of day like 07:00)", 2)
        with admin(ctx) as client:
            machine = client.pause(address, when)
        out.print(machine_line(machine, now), soft_wrap=True)

    @fleet_app.command("resume")
    def resume(ctx: typer.Context, address: Machine) -> None:
        """End a machine's pause now."""
        with admin(ctx) as client:
            machine = client.pause(address, None)
        out.print(machine_line(machine, datetime.now(UTC)), soft_wrap=True)

    @fleet_app.command("cancel")
    def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="The job to cancel.")]) -> None:
        """Cancel a job: providers are paid the time run, the rest of the held credit returns to its requester."""
        with admin(ctx) as client:
            view = client.cancel(job_id)
        out.print(f"Job {view.job_id}: {view.state} ({view.reason})", soft_wrap=True)

    app.add_typer(fleet_app, name="fleet")
