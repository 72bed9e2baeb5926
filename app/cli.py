"""The ``sparecycles`` command line: start the app or agent, and talk to a running agent.

Commands that need the agent say so clearly when none is running and exit with code 3.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

import sparecycles
from sparecycles import launcher
from sparecycles.bench_cli import register_bench_command
from sparecycles.config import ConfigError, configured_zone
from sparecycles.control.endpoint import AgentAlreadyRunning
from sparecycles.diagnostics import CheckOutcome
from sparecycles.durations import parse_clock_time, parse_duration
from sparecycles.fleet_cli import register_fleet_commands
from sparecycles.install_cli import register_install_commands
from sparecycles.ledger_cli import register_ledger_commands
from sparecycles.market_cli import market_app, register_requester_commands
from sparecycles.paths import AppPaths
from sparecycles.terminal import err, out, print_error, styled
from sparecycles.wallet_cli import register_wallet_commands

if TYPE_CHECKING:  # loaded by the commands that use them: `--version` or `market …` need no agent client
    from sparecycles.control.client import ControlClient
    from sparecycles.control.models import StatusDocument

EXIT_CONFIG = 2
EXIT_NO_AGENT = 3
EXIT_ALREADY_RUNNING = 4
EXIT_NOT_READY = 1

app = typer.Typer(
    add_completion=True,
    no_args_is_help=False,
    help="SpareCycles: earn from your idle NVIDIA GPU. With no command, opens the desktop app.",
)


def _fail(message: str, code: int) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def _paths() -> AppPaths:
    return AppPaths.from_environment()


@contextmanager
def _agent() -> Iterator[ControlClient]:
    """A client of the running agent; no agent or an agent error ends the command with a message."""
    from sparecycles.control.client import ControlClient
    from sparecycles.control.errors import AgentRequestError, AgentUnavailable

    try:
        with ControlClient.from_lock_file(_paths().agent_lock_file) as client:
            yield client
    except AgentUnavailable as exc:
        _fail(str(exc), EXIT_NO_AGENT)
    except AgentRequestError as exc:
        _fail(f"{exc} {' '.join(exc.problems)}".strip(), EXIT_NOT_READY)


def _print_status(status: StatusDocument) -> None:
    out.print(
        styled(
            f"SpareCycles agent {status.agent_version} (pid {status.pid}): ",
            (status.state.value, "bold"),
            f" — {status.reason}",
        ),
        soft_wrap=True,
    )
    if not status.gpus:
        out.print(f"  GPUs: none — {status.gpu_backend.reason or 'no GPU found'}", soft_wrap=True)
    for gpu in status.gpus:
        label = " [SIMULATED]" if gpu.simulated else ""
        out.print(f"  GPU {gpu.index} {gpu.name}{label}: {gpu.state.value} — {gpu.reason}", soft_wrap=True)
    if status.ledger_problem:
        out.print(styled((f"  Ledger: {status.ledger_problem}", "yellow")), soft_wrap=True)
    market = status.marketplace
    if market is not None:
        where = "the private marketplace" if market.private else market.url
        state = "connected" if market.connected else f"not connected — {market.problem}"
        out.print(f"  Marketplace: {where}, {state}", soft_wrap=True)
        if market.floor_per_gpu_hour is not None and market.floor_per_core_hour is not None:
            out.print(
                f"  Bidding at least {market.floor_per_gpu_hour} per GPU-hour and {market.floor_per_core_hour} "
                "per core-hour (base units)",
                soft_wrap=True,
            )
        if market.price_note:
            out.print(styled((f"  {market.price_note}", "yellow")), soft_wrap=True)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"sparecycles {sparecycles.__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    paths = _paths()
    if not launcher.display_available():
        err.print("No display found: running the agent in this terminal (Ctrl+C stops it).")
        _run_agent_foreground(paths)
    missing = launcher.gui_missing_packages()
    if missing:
        err.print(
            "The desktop app needs system libraries that are missing: "
            f"`sudo apt install {' '.join(missing)}`. Running the agent in this terminal meanwhile.",
            soft_wrap=True,
        )
        _run_agent_foreground(paths)
    # The window paints at once and shows "starting the agent…" while its link starts one (or finds one
    # running), so nothing here waits for the agent.
    raise typer.Exit(launcher.run_gui(paths))


def _run_agent_foreground(paths: AppPaths, simulated_gpus: int = 0) -> NoReturn:
    try:
        code = launcher.run_agent(paths, console=True, simulated_gpus=simulated_gpus)
    except ConfigError as exc:
        _fail(f"{exc}\nThe file was not changed. Fix it and start SpareCycles again.", EXIT_CONFIG)
    except AgentAlreadyRunning as exc:
        _fail(str(exc), EXIT_ALREADY_RUNNING)
    _exit_at_once(code)


def _exit_at_once(code: int) -> NoReturn:
    """End the process of an agent that has stopped cleanly, without the interpreter's teardown of its modules.

    Why: after 'SpareCycles agent stopped', freeing the modules the agent loaded (web3, SQLAlchemy, pydantic,
    the marketplace) took Python another half second, a third of the whole stop; a restart, a logout or
    `sparecycles stop` waited on it. Everything the interpreter's own exit does first is still done, in its
    order: wait for the threads still running (a job's control thread finishing a container's stop, say),
    then run the exit handlers (logging's flush among them). Only the teardown is skipped."""
    wait_for_threads = getattr(threading, "_shutdown", None)  # what the interpreter runs first at exit
    if wait_for_threads is not None:
        wait_for_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


@app.command()
def agent(
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Run in this terminal, printing live status, until Ctrl+C.")
    ] = False,
    simulated_gpus: Annotated[
        int,
        typer.Option(
            "--simulated-gpus",
            min=0,
            max=16,
            help="Use N scriptable SIMULATED GPUs instead of NVML (tests and demos; never earns).",
        ),
    ] = 0,
) -> None:
    """Start the background agent (the part that senses, works and earns)."""
    paths = _paths()
    if foreground:
        _run_agent_foreground(paths, simulated_gpus)
    from sparecycles.control.spawn import AgentStartError, start_agent_process

    extra = ["--simulated-gpus", str(simulated_gpus)] if simulated_gpus else []
    try:
        endpoint = start_agent_process(paths, extra_arguments=extra)
    except AgentStartError as exc:
        err.print(exc.output)
        _fail(str(exc), exc.exit_code or EXIT_NOT_READY)
    out.print(f"SpareCycles agent started (pid {endpoint.pid}). `sparecycles status` shows what it does.")


@app.command()
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stable JSON document (docs/status.schema.json).")
    ] = False,
) -> None:
    """Show what the agent and each GPU are doing, and why."""
    with _agent() as client:
        document = client.status()
    if as_json:
        sys.stdout.write(document.model_dump_json(indent=2) + "\n")
    else:
        _print_status(document)


GpuOption = Annotated[
    int | None,
    typer.Option("--gpu", min=0, help="Only this GPU (its number in `sparecycles status`); the others carry on."),
]


@app.command()
def pause(gpu: GpuOption = None) -> None:
    """Stop working until you resume (survives nothing but the agent's life)."""
    with _agent() as client:
        _print_status(client.pause(gpu))


@app.command()
def resume(gpu: GpuOption = None) -> None:
    """Undo a pause or a snooze: of everything, or of one GPU with --gpu."""
    with _agent() as client:
        _print_status(client.resume(gpu))


@app.command()
def snooze(
    duration: Annotated[str, typer.Argument(help="How long (30m, 2h, 1h30m), or until when (18:30).")],
    gpu: GpuOption = None,
) -> None:
    """Pause for a while, or until a time of day, then carry on by itself."""
    try:
        until = parse_clock_time(duration, datetime.now(UTC), configured_zone(_paths().config_file))
        seconds = None if until is not None else parse_duration(duration)
    except ValueError as exc:
        _fail(f"{exc} (or a time of day like 18:30)", 2)
    with _agent() as client:
        _print_status(client.snooze(seconds, until=until, gpu=gpu))


app.add_typer(market_app, name="market")
register_requester_commands(app)
register_ledger_commands(app, _agent, _fail)
register_wallet_commands(app, _agent, _fail)
register_bench_command(app, _agent, _fail)
register_install_commands(app)
register_fleet_commands(app, _agent, _fail)


@app.command("run-here")
def run_here(
    spec_file: Annotated[Path, typer.Argument(help="A job spec, JSON (see examples/job.json).", exists=False)],
) -> None:
    """Run a job spec on this machine now, without a marketplace (a studio testing its job); a refusal says why."""
    try:  # utf-8-sig: a file saved by Windows Notepad starts with a byte-order mark, which JSON refuses
        spec = json.loads(spec_file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        _fail(f"Cannot read {spec_file}: {exc.strerror or exc}", 2)
    except UnicodeDecodeError as exc:
        _fail(f"{spec_file} is not UTF-8 text (byte {exc.start} cannot be read): save it as UTF-8 JSON", 2)
    except json.JSONDecodeError as exc:
        _fail(f"{spec_file} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", 2)
    except RecursionError:
        _fail(f"{spec_file} is nested too deeply to be a job spec (see examples/job.json)", 2)
    if not isinstance(spec, dict):
        _fail(f"{spec_file} must hold one JSON object: the job spec", 2)
    with _agent() as client:
        job_id = client.submit_job(spec)
    out.print(f"Job {job_id} accepted. `sparecycles local-jobs` shows how it goes.")


@app.command("local-jobs")
def local_jobs(as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False) -> None:
    """The jobs this machine runs: running ones, and those that ended since the agent started."""
    with _agent() as client:
        listed = client.jobs()
    if as_json:
        sys.stdout.write(json.dumps(listed, indent=2) + "\n")
        return
    if not listed:
        out.print("No jobs yet.")
    for job in listed:
        reason = f" — {job['reason']}" if job.get("reason") else ""
        out.print(styled(f"{job['job_id']}: ", (job["state"], "bold"), reason), soft_wrap=True)
        for output in job.get("outputs", []):
            out.print(f"    {output['path']}  {output['size_bytes']} bytes  sha256 {output['sha256']}", soft_wrap=True)


@app.command()
def stop() -> None:
    """Stop the background agent."""
    with _agent() as client:
        client.shutdown()
    out.print("SpareCycles agent is stopping.")


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Also write a support bundle (a zip: this report, versions, recent logs, the settings; secrets "
            "masked) to attach to a bug report.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check the driver, GPU, Docker, the NVIDIA Container Toolkit, the keyring and the settings."""
    paths = _paths()
    results = launcher.run_doctor(paths)
    if bundle is not None:
        from sparecycles.support_bundle import write_bundle

        try:
            write_bundle(bundle, paths, results)
        except OSError as exc:
            _fail(f"Cannot write the support bundle {bundle}: {exc.strerror or exc}", EXIT_NOT_READY)
        err.print(f"Support bundle written to {bundle} (secrets masked; look inside before you share it).")
    if as_json:
        sys.stdout.write(json.dumps([r.__dict__ | {"outcome": r.outcome.value} for r in results], indent=2) + "\n")
    else:
        marks = {
            CheckOutcome.OK: ("✓", "green"),
            CheckOutcome.WARNING: ("!", "yellow"),
            CheckOutcome.PROBLEM: ("✗", "red"),
        }
        for result in results:
            out.print(styled(marks[result.outcome], f" {result.name}: {result.detail}"), soft_wrap=True)
            if result.fix and result.outcome is not CheckOutcome.OK:
                out.print(f"    fix: {result.fix}", soft_wrap=True)
    blocking = [r.name for r in results if r.blocking]
    if blocking:
        if not as_json:
            err.print(f"Not ready to earn: fix {', '.join(blocking)}.")
        raise typer.Exit(EXIT_NOT_READY)


@app.command(
    "benchmark-worker",
    hidden=True,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def benchmark_worker(ctx: typer.Context) -> None:
    """The benchmark's measuring process, as a bundle starts it (``python -m ...worker`` elsewhere)."""
    raise typer.Exit(launcher.run_benchmark_worker(list(ctx.args)))


def run() -> None:
    app()
