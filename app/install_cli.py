"""Installing on this machine: `sparecycles service`, `sparecycles autostart` and `sparecycles uninstall`.

Where the files go can be redirected (``SPARECYCLES_UNIT_DIR`` for units, ``XDG_CONFIG_HOME`` for the
autostart entry, ``SPARECYCLES_HOME`` for everything else), which is how the tests run these commands.
systemctl is only called where systemd runs; elsewhere the commands say what to run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import click
import typer

from sparecycles import launcher
from sparecycles.autostart import create_start_at_login
from sparecycles.config import ConfigError, Settings, load_settings, update_settings_file
from sparecycles.control.endpoint import EndpointFileError, pid_alive, read_endpoint
from sparecycles.control.errors import AgentRequestError, AgentUnavailable
from sparecycles.paths import AppPaths
from sparecycles.service_unit import (
    SYSTEM_HOME,
    SYSTEM_USER,
    UNIT_NAME,
    ServiceError,
    UnitFile,
    UnitSpec,
    describe_command,
    render_unit,
    run_systemctl,
    systemctl_command,
    systemd_running,
)
from sparecycles.terminal import err, out, print_error, print_warning

service_app = typer.Typer(
    help="Run the agent as a systemd service (headless rigs, render nodes).", no_args_is_help=True
)
autostart_app = typer.Typer(help="Start SpareCycles when you log in (Linux desktops).", no_args_is_help=True)


@service_app.callback()
def _service_platform() -> None:
    if sys.platform == "win32":
        _fail("systemd services are for Linux; on Windows the installer sets up start at login", 2)


SystemOption = Annotated[
    bool, typer.Option("--system", help="The system-wide unit (/etc/systemd/system), for machines nobody logs in to.")
]
# Folders a system service cannot reach under ProtectHome=yes, or that its user cannot read.
PRIVATE_PREFIXES = ("/home/", "/root/", "/run/user/")


def _fail(message: str, code: int) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def _warn(message: str) -> None:
    print_warning(message)


def _service_paths(system: bool, home: Path | None) -> tuple[AppPaths, Path | None]:
    """The folders the service will use, and the SPARECYCLES_HOME its unit sets (None: the user's defaults)."""
    if system:
        root = home or SYSTEM_HOME
        return AppPaths.from_environment({"SPARECYCLES_HOME": str(root)}), root
    if home is not None:
        return AppPaths.from_environment({"SPARECYCLES_HOME": str(home)}), home
    configured = os.environ.get("SPARECYCLES_HOME")
    paths = AppPaths.from_environment()
    return paths, Path(configured).expanduser().resolve() if configured else None


def _headless_problems(settings: Settings, paths: AppPaths) -> list[str]:
    """What a service with no Secret Service lacks in ``settings``, each with what to set."""
    config_file = paths.config_file
    problems = []
    if not settings.marketplace.identity_key_file:
        problems.append(
            f"no machine identity key file: a service has no Secret Service to keep the key in. Add to {config_file}:\n"
            "    [marketplace]\n"
            f'    identity_key_file = "{paths.state_dir / "identity.key"}"   # made at first start, 0600'
        )
    if not settings.marketplace.payout_address:
        problems.append(
            f"no payout address: the agent takes no work without one. Add a watch-only address to {config_file}:\n"
            "    [marketplace]\n"
            '    payout_address = "0x..."   # its key stays in your hardware wallet or on another computer'
        )
    return problems


def _user_exists(name: str) -> bool:
    import pwd  # POSIX only: imported where a system unit is made, so the CLI still loads on Windows

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group_exists(name: str) -> bool:
    import grp  # POSIX only, like pwd

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _systemctl(system: bool, *arguments: str) -> bool:
    result = run_systemctl(system, *arguments)
    if result.returncode != 0:
        _warn(f"`{describe_command(systemctl_command(system, *arguments))}` failed: {result.stderr.strip()}")
    return result.returncode == 0


@service_app.command("install")
def service_install(
    system: SystemOption = False,
    user: Annotated[
        str, typer.Option("--user", help="With --system: the dedicated account the service runs as.")
    ] = SYSTEM_USER,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="The service's SPARECYCLES_HOME (with --system: default /var/lib/sparecycles)."),
    ] = None,
    start: Annotated[bool, typer.Option(help="Enable and start it now (where systemd runs).")] = True,
) -> None:
    """Write the agent's systemd unit (restarts on failure), then enable and start it where systemd runs."""
    paths, service_home = _service_paths(system, home)
    try:
        settings = load_settings(paths.config_file)
    except ConfigError as exc:
        _fail(f"{exc}\nFix the settings before installing the service.", 2)
    problems = _headless_problems(settings, paths)
    if system and not settings.marketplace.identity_key_file:
        _fail("a system service needs a machine identity key file.\n" + "\n".join(problems), 2)
    for problem in problems:
        _warn(problem)
    from sparecycles.control.spawn import agent_command

    command = agent_command()
    if system and command[0].startswith(PRIVATE_PREFIXES):
        _fail(
            f"{command[0]} is inside a home folder, which the system service cannot reach (ProtectHome=yes) and "
            "its user may not read; install SpareCycles where every user can run it (e.g. a venv in /opt/sparecycles "
            "or the bundle in /opt) and run this again from there.",
            2,
        )
    docker_group = _group_exists("docker")
    if system and not docker_group:
        _warn("there is no docker group here: install Docker first (installer/linux/setup-docker-nvidia.sh).")
    spec = UnitSpec(command=command, system=system, user=user, home=service_home, docker_group=docker_group)
    unit = UnitFile.at(system=system)
    try:
        unit.write(render_unit(spec))
    except ServiceError as exc:
        _fail(str(exc), 1)
    out.print(f"Wrote {unit.path}")
    missing_user = system and not _user_exists(user)
    if missing_user:
        _warn(
            f"the account {user!r} does not exist yet; create it first:\n"
            f"    sudo useradd --system --home-dir {service_home} --shell /usr/sbin/nologin {user}"
        )
    scope = [] if system else ["--user"]
    enable = ["systemctl", *scope, "enable", "--now", UNIT_NAME]
    if not systemd_running():
        out.print(
            "systemd is not running here, so nothing was started. Where it runs: "
            f"`{describe_command(['systemctl', *scope, 'daemon-reload'])} && {describe_command(enable)}`",
            soft_wrap=True,
        )
    elif start and not missing_user:
        if _systemctl(system, "daemon-reload") and _systemctl(system, "enable", "--now", UNIT_NAME):
            out.print(f"Enabled and started {UNIT_NAME}.")
    else:
        _systemctl(system, "daemon-reload")
        out.print(f"Start it with `{describe_command(enable)}`.")
    if not system:
        out.print(
            "A user service stops when you log out; to keep it running on a headless rig: "
            f"`loginctl enable-linger {os.environ.get('USER', '$USER')}`.",
            soft_wrap=True,
        )


def _uninstall_unit(system: bool) -> bool:
    """Stop, disable and remove the unit; False when there was none."""
    unit = UnitFile.at(system=system)
    if systemd_running() and unit.path.exists():
        _systemctl(system, "disable", "--now", UNIT_NAME)
    removed = unit.remove()
    if systemd_running():
        _systemctl(system, "daemon-reload")
    return removed


@service_app.command("uninstall")
def service_uninstall(system: SystemOption = False) -> None:
    """Stop and disable the agent's systemd service and remove its unit."""
    try:
        removed = _uninstall_unit(system)
    except ServiceError as exc:
        _fail(str(exc), 1)
    unit = UnitFile.at(system=system)
    out.print(f"Removed {unit.path}." if removed else f"No unit at {unit.path}: nothing to remove.")


@service_app.command("status")
def service_status(system: SystemOption = False) -> None:
    """Whether the agent's unit is installed, enabled and running."""
    unit = UnitFile.at(system=system)
    if not unit.path.exists():
        out.print(f"Not installed (no {unit.path}). `sparecycles service install{' --system' if system else ''}`")
        raise typer.Exit(3)
    out.print(f"Installed: {unit.path}")
    if not systemd_running():
        out.print("systemd is not running here: the unit is not loaded.")
        return
    for question in ("is-enabled", "is-active"):
        result = run_systemctl(system, question, UNIT_NAME)
        out.print(f"  {question.removeprefix('is-')}: {result.stdout.strip() or result.stderr.strip()}")


def _set_start_at_login(paths: AppPaths, enabled: bool) -> None:
    """Change the setting (through the running agent, which applies it, else in the file) and the entry."""
    switch = create_start_at_login()
    if switch.available is not None:
        _fail(switch.available, 1)
    from sparecycles.control.client import ControlClient

    changes = {"general": {"start_at_login": enabled}}
    try:
        with ControlClient.from_lock_file(paths.agent_lock_file, timeout=5.0) as client:
            client.update_settings(changes)
    except (AgentUnavailable, AgentRequestError):
        try:
            update_settings_file(paths.config_file, changes)
        except ConfigError as exc:
            _fail(str(exc), 2)
    switch.set(enabled)  # the agent did it already, if one runs; none may be running
    out.print(f"Start at login {'on' if enabled else 'off'} ({switch.location}).")


@autostart_app.command("on")
def autostart_on() -> None:
    """Start SpareCycles when you log in."""
    _set_start_at_login(AppPaths.from_environment(), True)


@autostart_app.command("off")
def autostart_off() -> None:
    """Do not start SpareCycles when you log in."""
    _set_start_at_login(AppPaths.from_environment(), False)


@autostart_app.command("status")
def autostart_status() -> None:
    """Whether SpareCycles starts when you log in."""
    switch = create_start_at_login()
    if switch.available is not None:
        out.print(switch.available)
        return
    state = "on" if switch.enabled() else "off"
    out.print(f"Start at login: {state} ({switch.location})")


def _ask(question: str, *, yes: bool) -> bool:
    if yes:
        return True
    try:
        return typer.confirm(question, default=False)
    except click.exceptions.Abort:  # no terminal to answer: the safe answer
        err.print("(no answer: no)")
        return False


def _runs_sparecycles(pid: int) -> bool:
    """Whether process ``pid`` runs SpareCycles (so a stale lock never gets another program signalled)."""
    import psutil

    try:
        return any("sparecycles" in part for part in psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def _stop_agent(paths: AppPaths, timeout_s: float = 20.0) -> None:
    """Ask the running agent to stop and wait for it; one that does not is sent SIGTERM, then SIGKILL."""
    import psutil

    from sparecycles.control.client import ControlClient

    try:
        endpoint = read_endpoint(paths.agent_lock_file)
    except EndpointFileError:
        endpoint = None
    if endpoint is None or not pid_alive(endpoint.pid):
        return
    try:
        try:
            with ControlClient.from_lock_file(paths.agent_lock_file, timeout=5.0) as client:
                client.shutdown()
        except (AgentUnavailable, AgentRequestError):
            if not _runs_sparecycles(endpoint.pid):  # a stale lock whose PID now belongs to another program
                return
            psutil.Process(endpoint.pid).terminate()  # SIGTERM; TerminateProcess on Windows
        deadline = time.monotonic() + timeout_s
        while pid_alive(endpoint.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(endpoint.pid) and _runs_sparecycles(endpoint.pid):
            _warn(f"the agent (pid {endpoint.pid}) did not stop within {timeout_s:.0f} s; killing it")
            psutil.Process(endpoint.pid).kill()
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass  # it ended by itself meanwhile
    except (PermissionError, psutil.AccessDenied):
        _fail(f"the agent (pid {endpoint.pid}) belongs to another user: stop it as that user, then run this again", 1)
    out.print(f"Stopped the agent (pid {endpoint.pid}).")


def _remove_folders(paths: AppPaths) -> None:
    for folder in (paths.state_dir, paths.log_dir, paths.config_dir):
        shutil.rmtree(folder, ignore_errors=True)
    home = os.environ.get("SPARECYCLES_HOME")
    if home:
        with contextlib.suppress(OSError):  # removed only when nothing else is left in it
            Path(home).expanduser().rmdir()


def register_install_commands(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")
    app.add_typer(autostart_app, name="autostart")
    app.command("uninstall")(uninstall)


def uninstall(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Answer yes: also delete wallet keys and all data.")] = False,
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep the wallet keys, the ledger, the settings and the logs.")
    ] = False,
) -> None:
    """Stop the agent and remove its services and autostart entry; asks before deleting wallet keys and data."""
    if yes and keep_data:
        _fail("--yes and --keep-data contradict each other: choose one", 2)
    paths = AppPaths.from_environment()
    _stop_agent(paths)
    if _uninstall_unit(system=False):
        out.print(f"Removed the user service {UnitFile.at(system=False).path}.")
    system_unit = UnitFile.at(system=True)
    if system_unit.path.exists():
        try:
            _uninstall_unit(system=True)
            out.print(f"Removed the system service {system_unit.path}.")
        except ServiceError:
            _warn(f"the system service {system_unit.path} stays: `sudo sparecycles service uninstall --system`")
    switch = create_start_at_login()
    if switch.available is None and switch.enabled():
        switch.set(False)
        out.print(f"Removed the autostart entry {switch.location}.")
    if keep_data:
        out.print(f"Kept wallet keys, the ledger and settings ({paths.state_dir}, {paths.config_dir}).")
    else:
        try:
            wallets = launcher.keyring_wallets(paths)
        except Exception as exc:  # a damaged registry: say so, delete nothing blind
            wallets = []
            _warn(f"the wallet list cannot be read ({exc}); wallet keys in the OS keyring were left alone")
        question = (
            f"Delete the keys of the wallets {', '.join(wallets)} and the machine identity key from the OS keyring? "
            "Money in a wallet whose recovery phrase you have not written down is lost for good"
            if wallets
            else "Delete the machine identity key from the OS keyring (it holds no funds)?"
        )
        if _ask(question, yes=yes):
            for problem in launcher.forget_keyring_keys(wallets, identity=True):
                _warn(problem)
            out.print("Deleted the keys from the OS keyring.")
        if _ask(
            f"Delete the ledger (earnings history), state, logs and settings in {paths.state_dir}, {paths.log_dir} "
            f"and {paths.config_dir}?",
            yes=yes,
        ):
            _remove_folders(paths)
            out.print("Deleted SpareCycles' data.")
    out.print(
        "SpareCycles is uninstalled; nothing of it is running. Remove the program itself with "
        "`pip uninstall sparecycles` (or delete the bundle's folder).",
        soft_wrap=True,
    )
