"""systemd units that run the agent on a machine nobody sits at: a user unit, or a system-wide one.

Rendering is a pure function of :class:`UnitSpec`, so a test reads the text and ``systemd-analyze
verify`` checks it. Installing writes the file into a folder (``SPARECYCLES_UNIT_DIR`` redirects it, for
tests and packagers) and asks systemd to load it only where systemd is the running service manager;
elsewhere it says what to run.

A headless service has no Secret Service: the machine identity key lives in a key file
(``[marketplace] identity_key_file``, 0600) and the payout address is watch-only, its key elsewhere.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

UNIT_NAME = "sparecycles-agent.service"
UNIT_DIR_VARIABLE = "SPARECYCLES_UNIT_DIR"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_HOME = Path("/var/lib/sparecycles")
SYSTEM_USER = "sparecycles"
STATE_DIRECTORY = "sparecycles"  # systemd makes /var/lib/sparecycles, owned by the service's user

# Why each hardening option is set, or is not (docs/installing.md says the same to users):
# - NVML needs /dev/nvidia*: no PrivateDevices=, no DevicePolicy=closed.
# - The CUDA driver maps JIT-compiled code writable and executable (benchmark, PyTorch):
#   no MemoryDenyWriteExecute=.
# - ProtectClock= (and ProtectKernelLogs=) add a device rule for the clock (kernel log), and any device
#   rule turns on an allow-list that shuts /dev/nvidia* out: neither is set.
# - The NVIDIA driver's ioctls are not all in @system-service: no SystemCallFilter=.
# - Docker is reached through its socket (AF_UNIX), which a read-only file system still lets one
#   connect to: ProtectSystem=strict is safe. Jobs' scratch lives in Docker volumes, not /tmp:
#   PrivateTmp= is safe.
HARDENING: tuple[tuple[str, str], ...] = (
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectHostname", "yes"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("CapabilityBoundingSet", ""),
    ("UMask", "0077"),
)


class ServiceError(Exception):
    """The unit cannot be installed or removed as asked; the message says what to do."""


@dataclass(frozen=True)
class UnitSpec:
    """What a unit says: the command that runs the agent, and for whom."""

    command: Sequence[str]
    system: bool = False
    user: str = SYSTEM_USER  # system unit only: the dedicated account it runs as
    home: Path | None = None  # SPARECYCLES_HOME for the service (the system unit: /var/lib/sparecycles)
    docker_group: bool = True  # system unit: reach the Docker socket through the docker group
    environment: Mapping[str, str] = field(default_factory=dict)


def _quote(argument: str) -> str:
    """One ExecStart= argument: systemd splits on whitespace and honours double quotes and backslashes."""
    if argument and not any(c in argument for c in " \t\n\"\\'$%;"):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{escaped}"'


def _environment_line(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'Environment="{name}={escaped}"'


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text for ``spec``."""
    environment = {"PYTHONUNBUFFERED": "1", **spec.environment}
    if spec.home is not None:
        environment["SPARECYCLES_HOME"] = str(spec.home)
    if spec.system:
        # No Secret Service for a system account: keyring answers "none" at once instead of waiting on D-Bus.
        environment.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    lines = [
        "# Written by `sparecycles service install`; `sparecycles service uninstall` removes it.",
        "[Unit]",
        "Description=SpareCycles agent (rents out this machine's idle NVIDIA GPUs)",
    ]
    if spec.system:
        lines += [
            "Wants=network-online.target",
            "After=network-online.target docker.service nvidia-persistenced.service",
        ]
    lines += [
        "StartLimitIntervalSec=10min",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_quote(argument) for argument in spec.command),
        "Restart=on-failure",
        "RestartSec=15s",
        "TimeoutStopSec=60s",
        *(_environment_line(name, value) for name, value in sorted(environment.items())),
    ]
    if spec.system:
        lines += [f"User={spec.user}", f"Group={spec.user}"]
        if spec.docker_group:
            lines.append("SupplementaryGroups=docker")
        lines += [f"StateDirectory={STATE_DIRECTORY}", "StateDirectoryMode=0700"]
        lines += [f"{name}={value}" for name, value in HARDENING]
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if spec.system else 'default.target'}", ""]
    return "\n".join(lines)


def unit_dir(*, system: bool, environ: Mapping[str, str] | None = None) -> Path:
    """Where the unit file goes: ``SPARECYCLES_UNIT_DIR`` when set, else systemd's folder for admin units."""
    environ = os.environ if environ is None else environ
    override = environ.get(UNIT_DIR_VARIABLE)
    if override:
        return Path(override)
    if system:
        return SYSTEM_UNIT_DIR
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user"


def systemd_running() -> bool:
    """Whether systemd is this machine's service manager (sd_booted(): /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def systemctl_command(system: bool, *arguments: str) -> list[str]:
    return ["systemctl", *([] if system else ["--user"]), *arguments]


def describe_command(command: Sequence[str]) -> str:
    return shlex.join(command)


def run_systemctl(system: bool, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        systemctl_command(system, *arguments), capture_output=True, text=True, timeout=60, check=False
    )


@dataclass(frozen=True)
class UnitFile:
    path: Path
    system: bool

    @classmethod
    def at(cls, *, system: bool, environ: Mapping[str, str] | None = None) -> UnitFile:
        return cls(unit_dir(system=system, environ=environ) / UNIT_NAME, system)

    def write(self, text: str) -> None:
        from sparecycles.fileio import atomic_write_text

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, text, mode=0o644)
        except PermissionError:
            raise ServiceError(
                f"cannot write {self.path}: permission denied"
                + ("; a system-wide unit is installed as root: run it again with sudo" if self.system else "")
            ) from None

    def remove(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except PermissionError:
            raise ServiceError(f"cannot remove {self.path}: permission denied; run it again with sudo") from None
        return True
