"""The sandbox every job container gets, as data: a validated plan and the Docker options it becomes.

Nothing here talks to Docker. :func:`container_options` turns a :class:`ContainerPlan` into the
keyword arguments of the Docker SDK's ``containers.create``, with every default of the security
rules (ARCHITECTURE.md, "Security defaults") applied and none of them optional, so the rules are
checked by unit tests with plain values.
"""

from __future__ import annotations

import mmap
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from sparecycles.agent.jobs.errors import InvalidPlanError
from sparecycles.protocol.jobs import ImageReference, parse_image, runtime_env_reason

INPUT_DIR = "/job/input"
OUTPUT_DIR = "/job/output"
HOLDER_INPUT_DIR = "/scratch/input"
HOLDER_OUTPUT_DIR = "/scratch/output"
"""Where the scratch holder mounts the job's input and output volumes (see scratch.py)."""

DEFAULT_USER = "65534:65534"
"""nobody:nogroup on Debian and most images; any numeric uid:gid other than root will do."""

LABEL_JOB = "dev.sparecycles.job"
LABEL_AGENT = "dev.sparecycles.agent"
LABEL_ROLE = "dev.sparecycles.role"
LABEL_IMAGE = "dev.sparecycles.image"
ROLE_JOB = "job"
ROLE_HOLDER = "holder"
ROLE_INPUT = "input"
ROLE_OUTPUT = "output"
ROLE_EGRESS = "egress"

GpuMode = Literal["nvidia", "cdi"]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
PAGE_BYTES = mmap.PAGESIZE

_LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "1"}}
_HOLDER_MEMORY_BYTES = 32 * MIB
_HOLDER_PIDS = 8
_HOLDER_NANO_CPUS = 100_000_000
_HOLDER_SLEEP_S = "2147483647"
# Networks a job may never join: the host's, the default bridge (the open internet), none by name.
_FORBIDDEN_NETWORKS = frozenset({"host", "bridge", "default", "none"})
_SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
_CONTAINER_TMP = "/tmp"  # noqa: S108 - the container's own /tmp, a private tmpfs

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_USER = re.compile(r"([0-9]{1,10}):([0-9]{1,10})")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GPU_UUID = re.compile(r"(?:GPU|MIG)-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_NETWORK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def parse_image_reference(reference: str) -> ImageReference:
    """Accept only ``host[:port]/repository@sha256:<64 hex>``: a registry named in full, pinned by digest.

    The spelling rules are the job spec's (:func:`sparecycles.protocol.jobs.parse_image`); a plan also
    insists on the canonical spelling, so what is pulled is exactly what was checked.
    """
    try:
        parsed = parse_image(reference)
    except ValueError as exc:
        raise InvalidPlanError(str(exc)) from None
    if parsed.canonical != reference:
        raise InvalidPlanError(f"image {reference!r} is not written in full: name it as {parsed.canonical}")
    return parsed


def parse_user(user: str) -> tuple[int, int]:
    """A numeric ``uid:gid`` that is not root; names are refused because the image's /etc/passwd could map them to 0."""
    match = _USER.fullmatch(user)
    if match is None:
        raise InvalidPlanError(f"user {user!r} must be a numeric uid:gid such as {DEFAULT_USER}")
    uid, gid = int(match[1]), int(match[2])
    if uid == 0 or gid == 0:
        raise InvalidPlanError(f"user {user!r} is root or in the root group; jobs never run as root")
    return uid, gid


@dataclass(frozen=True)
class ContainerPlan:
    """Everything the runtime needs to start one job's container; validated when built.

    ``command`` and ``entrypoint`` of ``None`` keep the image's own. ``network`` is ``None`` for no
    network at all, or the name of the egress-only network the job was allowed. ``input_dir`` is
    mounted read-only, ``output_dir`` writable and capped at ``max_output_bytes`` and
    ``max_output_files`` (files and folders).
    """

    job_id: str
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    gpu_uuids: tuple[str, ...] = ()
    cpus: float = 1.0
    memory_bytes: int = 2 * GIB
    shm_bytes: int = 64 * MIB
    pids_limit: int = 256
    tmp_size_bytes: int = 256 * MIB
    max_output_bytes: int = 1 * GIB
    max_output_files: int = 10_000
    input_dir: str = INPUT_DIR
    output_dir: str = OUTPUT_DIR
    working_dir: str | None = None
    user: str = DEFAULT_USER
    network: str | None = None

    def __post_init__(self) -> None:
        if not _JOB_ID.fullmatch(self.job_id):
            raise InvalidPlanError(f"job id {self.job_id!r} must be 1-63 letters, digits, '.', '_' or '-'")
        parse_image_reference(self.image)
        parse_user(self.user)
        for name in ("command", "entrypoint"):
            value = getattr(self, name)
            if value is not None:
                if not value or not all(isinstance(part, str) and "\0" not in part for part in value):
                    raise InvalidPlanError(f"{name} must be a non-empty list of strings, or left out")
                object.__setattr__(self, name, tuple(value))
        self._check_env()
        self._check_gpus()
        self._check_limits()
        self._check_paths()
        if self.network is not None and (
            not _NETWORK.fullmatch(self.network) or self.network.lower() in _FORBIDDEN_NETWORKS
        ):
            raise InvalidPlanError(
                f"network {self.network!r} is not allowed: a job gets no network, or its own egress-only network"
            )

    def _check_env(self) -> None:
        env = dict(self.env)
        for key, value in env.items():
            if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
                raise InvalidPlanError(f"environment variable name {key!r} is not valid")
            if not isinstance(value, str) or "\0" in value:
                raise InvalidPlanError(f"environment variable {key} must be a string without NUL characters")
            why = runtime_env_reason(key)
            if why is not None:
                raise InvalidPlanError(f"environment variable {key} is not allowed: {why}")
        object.__setattr__(self, "env", MappingProxyType(env))

    def _check_gpus(self) -> None:
        uuids = tuple(self.gpu_uuids)
        for uuid in uuids:
            if not isinstance(uuid, str) or not _GPU_UUID.fullmatch(uuid):
                raise InvalidPlanError(
                    f"GPU {uuid!r} is not an NVIDIA GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
                )
        if len(set(uuids)) != len(uuids):
            raise InvalidPlanError("a GPU is listed twice")
        object.__setattr__(self, "gpu_uuids", uuids)

    def _check_limits(self) -> None:
        if not self.cpus > 0:
            raise InvalidPlanError("cpus must be more than 0")
        if self.memory_bytes < 16 * MIB:
            raise InvalidPlanError("memory must be at least 16 MiB")
        for name in ("shm_bytes", "pids_limit", "tmp_size_bytes", "max_output_files"):
            if getattr(self, name) <= 0:
                raise InvalidPlanError(f"{name} must be more than 0")
        if self.max_output_bytes < 0:
            raise InvalidPlanError("max_output_bytes must not be negative")

    def _check_paths(self) -> None:
        for name in ("input_dir", "output_dir"):
            path = getattr(self, name)
            if not _is_clean_absolute(path) or path == "/" or _under_any(path, _SYSTEM_FOLDERS):
                raise InvalidPlanError(
                    f"{name} {path!r} must be a plain absolute folder, not / or under /proc, /sys, /dev"
                )
        if _under_any(self.input_dir, (self.output_dir,)) or _under_any(self.output_dir, (self.input_dir,)):
            raise InvalidPlanError("input_dir and output_dir must be separate folders, neither inside the other")
        if self.working_dir is not None and not _is_clean_absolute(self.working_dir):
            raise InvalidPlanError(f"working_dir {self.working_dir!r} must be an absolute path")

    @property
    def uid(self) -> int:
        return parse_user(self.user)[0]

    @property
    def gid(self) -> int:
        return parse_user(self.user)[1]

    @property
    def image_reference(self) -> ImageReference:
        return parse_image_reference(self.image)


def round_to_pages(size_bytes: int) -> int:
    """Whole memory pages, at least one: tmpfs sizes are counted in pages, and a size of 0 means no limit."""
    return max(PAGE_BYTES, -(-size_bytes // PAGE_BYTES) * PAGE_BYTES)


def output_volume_bytes(plan: ContainerPlan) -> int:
    """The size of the job's output tmpfs: its output cap, in whole pages."""
    return round_to_pages(plan.max_output_bytes)


def memory_limit_bytes(plan: ContainerPlan) -> int:
    """The job's memory limit: its own memory plus its output volume.

    tmpfs pages are charged to the memory cgroup of the process that writes them, so without the
    addition a job writing its outputs would be killed for memory before reaching its output cap.
    The RAM a job can hold is the same bound either way: memory plus outputs.
    """
    return plan.memory_bytes + output_volume_bytes(plan)


def _is_clean_absolute(path: str) -> bool:
    return path.startswith("/") and posixpath.normpath(path) == path and "\0" not in path


def _under_any(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


@dataclass(frozen=True)
class ScratchVolumes:
    """The names of a job's two scratch volumes: inputs (read-only to the job) and outputs (capped)."""

    input_volume: str
    output_volume: str


def job_labels(job_id: str, agent_id: str, role: str) -> dict[str, str]:
    """The labels that tie a container, volume or network to its job and this agent (crash recovery finds them)."""
    return {LABEL_JOB: job_id, LABEL_AGENT: agent_id, LABEL_ROLE: role}


def egress_network_name(job_id: str) -> str:
    """The name of a job's own internal network, whose only way out is its egress proxy."""
    return f"sparecycles-egress-{job_id}"


def volume_mount(volume: str, target: str, *, read_only: bool) -> dict[str, Any]:
    """A mount of one of the job's own volumes; jobs never get a host path."""
    return {
        "Target": target,
        "Source": volume,
        "Type": "volume",
        "ReadOnly": read_only,
        "VolumeOptions": {"NoCopy": True},
    }


def gpu_device_requests(gpu_uuids: tuple[str, ...], mode: GpuMode) -> list[dict[str, Any]]:
    """The GPUs the lease granted, by UUID: through the NVIDIA device driver, or CDI where the engine has it."""
    if not gpu_uuids:
        return []
    if mode == "cdi":
        ids = [f"nvidia.com/gpu={uuid}" for uuid in gpu_uuids]
        return [{"driver": "cdi", "device_ids": ids, "capabilities": [["gpu"]]}]
    return [{"driver": "nvidia", "device_ids": list(gpu_uuids), "capabilities": [["gpu"]]}]


def _hardening(user: str, labels: dict[str, str], network: str | None) -> dict[str, Any]:
    """The options every container of ours gets, the job's and its scratch holder's alike."""
    return {
        "user": user,
        "labels": labels,
        "network_mode": network or "none",
        "network_disabled": network is None,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "ipc_mode": "private",
        # runc, not a host's default "nvidia" runtime, which hands GPUs to any image whose environment asks.
        "runtime": "runc",
        "log_config": _LOG_CONFIG,
        "restart_policy": {"Name": "no"},
    }


# What the NVIDIA runtime's hook, on the host, reads from a container's environment besides the GPUs to hand
# over, pinned for every job. A job spec may not set NVIDIA_* (app/protocol/jobs.py), but the requester picks
# the image, and an image's own ENV reaches the hook too: NVIDIA_DRIVER_CAPABILITIES=all would bring the
# graphics, video and display driver libraries in, IMEX channels, MIG control files and the GDS, GDRCopy,
# MOFED and NVSwitch devices are more of the host's devices. The container's environment overrides the image's.
RUNTIME_ENVIRONMENT = {
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    "NVIDIA_IMEX_CHANNELS": "",
    "NVIDIA_MIG_CONFIG_DEVICES": "",
    "NVIDIA_MIG_MONITOR_DEVICES": "",
    "NVIDIA_GDS": "disabled",
    "NVIDIA_GDRCOPY": "disabled",
    "NVIDIA_MOFED": "disabled",
    "NVIDIA_NVSWITCH": "disabled",
}


def container_options(
    plan: ContainerPlan, scratch: ScratchVolumes, *, agent_id: str, gpu_mode: GpuMode = "nvidia"
) -> dict[str, Any]:
    """The ``containers.create`` keyword arguments for a job: the plan inside the sandbox, nothing from outside."""
    environment = dict(plan.env) | RUNTIME_ENVIRONMENT
    # Set for CPU jobs too: CUDA images carry NVIDIA_VISIBLE_DEVICES=all; "void" means no GPU whatever the runtime.
    environment["NVIDIA_VISIBLE_DEVICES"] = ",".join(plan.gpu_uuids) if plan.gpu_uuids else "void"
    labels = job_labels(plan.job_id, agent_id, ROLE_JOB) | {LABEL_IMAGE: plan.image}
    options: dict[str, Any] = {
        "image": plan.image,
        "command": list(plan.command) if plan.command is not None else None,
        "environment": environment,
        **_hardening(plan.user, labels, plan.network),
        "tmpfs": {_CONTAINER_TMP: f"size={plan.tmp_size_bytes},mode=1777,noexec,nosuid,nodev"},
        "pids_limit": plan.pids_limit,
        "mem_limit": memory_limit_bytes(plan),
        "memswap_limit": memory_limit_bytes(plan),
        "nano_cpus": round(plan.cpus * 1e9),
        "shm_size": plan.shm_bytes,
        "mounts": [
            volume_mount(scratch.input_volume, plan.input_dir, read_only=True),
            volume_mount(scratch.output_volume, plan.output_dir, read_only=False),
        ],
        # docker-init as PID 1 forwards SIGTERM to the job (a shell as PID 1 would ignore it) and reaps zombies.
        "init": True,
        # When the machine runs out of memory, the kernel should end the stranger's job before the user's game.
        "oom_score_adj": 500,
    }
    if plan.entrypoint is not None:
        options["entrypoint"] = list(plan.entrypoint)
    if plan.working_dir is not None:
        options["working_dir"] = plan.working_dir
    if plan.gpu_uuids:
        options["device_requests"] = gpu_device_requests(plan.gpu_uuids, gpu_mode)
    return options


def holder_options(plan: ContainerPlan, scratch: ScratchVolumes, *, agent_id: str, holder_image: str) -> dict[str, Any]:
    """The scratch holder: a tiny idle container that keeps the job's tmpfs volumes mounted (see scratch.py).

    It runs ``sleep`` from ``holder_image`` (any image with POSIX ``sleep`` and ``stat``), as the job's
    user, with no network and smaller limits than any job.
    """
    parse_image_reference(holder_image)
    return {
        "image": holder_image,
        "entrypoint": ["sleep"],
        "command": [_HOLDER_SLEEP_S],
        "environment": {"NVIDIA_VISIBLE_DEVICES": "void"},
        **_hardening(plan.user, job_labels(plan.job_id, agent_id, ROLE_HOLDER), None),
        "pids_limit": _HOLDER_PIDS,
        "mem_limit": _HOLDER_MEMORY_BYTES,
        "memswap_limit": _HOLDER_MEMORY_BYTES,
        "nano_cpus": _HOLDER_NANO_CPUS,
        "mounts": [
            volume_mount(scratch.input_volume, HOLDER_INPUT_DIR, read_only=False),
            volume_mount(scratch.output_volume, HOLDER_OUTPUT_DIR, read_only=False),
        ],
    }
