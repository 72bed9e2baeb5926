"""Whether this provider takes a job: judged from the spec alone, before anything is pulled or created.

:func:`check_job` reads the raw mapping the marketplace sent and answers with a validated
:class:`JobSpec` or raises :class:`JobRefused` whose message starts with ``"refused: "`` and says
precisely why; that message goes back to the marketplace as it is. Checks run in a fixed order and
the first failing one gives the reason, so the same spec is always refused for the same reason:

1. Docker options a hostile spec may carry (privileged, host namespaces, devices, mounts,
   capabilities, security options, runtime, user…): none is a spec field, and each has its reason.
2. Any other field the spec does not have, by name.
3. Environment variables that steer the GPU runtime on the host (NVIDIA_*, CUDA_VERSION), by name.
4. The spec's own validation (types, bounds, image by digest, inputs…), naming the field.
5. The provider's limits, then its registry allow-list, then network egress.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import annotated_types
from pydantic import ValidationError

from sparecycles.protocol.jobs import (
    ImageReference,
    JobSpec,
    check_registry_host,
    is_private_host,
    parse_egress,
    runtime_env_reason,
)

_SHOWN_CHARS = 80


class JobRefused(Exception):
    """A job this provider will not run; ``str()`` (and ``reason``) is ``"refused: …"``, ``field`` names the key."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderLimits:
    """What this provider's owner allows a job, from their settings.

    ``allowed_registries`` holds ``host[:port]`` entries (``ghcr.io``, ``127.0.0.1:5000``), optionally
    narrowed to a path (``ghcr.io/acme`` allows ``ghcr.io/acme/…`` only); empty allows no registry.
    ``gpu_vram_bytes`` is the memory of the smallest GPU offered (None: not checked here).
    ``private_networks_allowed`` lets egress and input URLs name localhost or LAN addresses (a
    studio's own network, tests); a gamer's home network stays out of reach by default.
    """

    max_gpus: int
    max_cpus: float
    max_memory_bytes: int
    max_shm_bytes: int
    max_runtime_s: int
    max_output_bytes: int
    allowed_registries: tuple[str, ...] = ()
    egress_allowed: bool = False
    gpu_vram_bytes: int | None = None
    private_networks_allowed: bool = False

    def __post_init__(self) -> None:
        numbers: dict[str, float | None] = {
            "max_gpus": self.max_gpus,
            "max_cpus": self.max_cpus,
            "max_memory_bytes": self.max_memory_bytes,
            "max_shm_bytes": self.max_shm_bytes,
            "max_runtime_s": self.max_runtime_s,
            "max_output_bytes": self.max_output_bytes,
            "gpu_vram_bytes": self.gpu_vram_bytes,
        }
        for name, value in numbers.items():
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ProviderLimits.{name} = {value!r}: must be a number of 0 or more")
        registries: Any = self.allowed_registries  # from untyped settings code, a lone string is a likely slip
        if not isinstance(registries, tuple):
            raise TypeError(
                f"ProviderLimits.allowed_registries must be a tuple of registries, not {type(registries).__name__}"
            )
        for entry in self.allowed_registries:
            host, _, prefix = entry.partition("/")
            check_registry_host(host)
            if prefix.endswith("/") or "//" in prefix:
                raise ValueError(f"allowed registry {entry!r}: write it like ghcr.io or ghcr.io/acme")


# --- 1. Docker options a spec must never carry ---------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        text = ", ".join(str(key) for key in value)
    elif isinstance(value, list | tuple | set | frozenset):
        text = ", ".join(str(item) for item in value)
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str | list | tuple | dict | set) and not value)


def _mode(value: Any) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _when_present(template: str) -> Callable[[str, Any], str | None]:
    def reason(key: str, value: Any) -> str | None:
        return None if _empty(value) else template.format(key=key, value=_show(value))

    return reason


def _namespace(what: str, benign: tuple[str, ...]) -> Callable[[str, Any], str | None]:
    def reason(key: str, value: Any) -> str | None:
        if _empty(value) or _mode(value) in benign:
            return None
        if _mode(value) == "host":
            return f"refused: job asks for the host {what}"
        return f"refused: job asks for a shared {what} ({key}={_show(value)})"

    return reason


def _network(key: str, value: Any) -> str | None:
    if _empty(value) or _mode(value) == "none":
        return None
    if _mode(value) == "host":
        return "refused: job asks for host network"
    if _mode(value).startswith("container:"):
        return f"refused: job asks to share another container's network ({key}={_show(value)})"
    return f"refused: job asks for network {_show(value)} ({key}); a job lists the host:port it needs in egress"


def _user(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    name = str(value).partition(":")[0].strip().lower()
    if name in ("root", "0"):
        return f"refused: job asks to run as root ({key}={_show(value)})"
    return f"refused: job asks to choose its user ({key}={_show(value)}); jobs run as the provider's unprivileged user"


def _writable_root(key: str, value: Any) -> str | None:
    return f"refused: job asks for a writable root filesystem ({key}=false)" if value is False else None


def _pids_limit(key: str, value: Any) -> str | None:
    return None if value is None else f"refused: job asks to change the process limit ({key}={_show(value)})"


def _privileged(key: str, value: Any) -> str | None:
    return None if _empty(value) else "refused: job asks for privileged mode"


def _oom_kill_disable(key: str, value: Any) -> str | None:
    return None if _empty(value) else "refused: job asks to disable the OOM killer"


# In order of precedence; keys are compared without case, '_' or '-', so snake_case (Docker SDK),
# PascalCase (Engine API) and kebab-case (CLI flags) all match.
_HOSTILE_KEYS: tuple[tuple[frozenset[str], Callable[[str, Any], str | None]], ...] = (
    (frozenset({"privileged"}), _privileged),
    (frozenset({"networkmode", "network", "net", "networks"}), _network),
    (frozenset({"pidmode", "pid"}), _namespace("PID namespace", ())),
    (frozenset({"ipcmode", "ipc"}), _namespace("IPC namespace", ("private", "none"))),
    (frozenset({"utsmode", "uts"}), _namespace("UTS namespace", ())),
    (frozenset({"cgroupnsmode", "cgroupns"}), _namespace("cgroup namespace", ("private",))),
    (
        frozenset({"usernsmode", "userns"}),
        _when_present("refused: job asks to leave the user namespace ({key}={value})"),
    ),
    (
        frozenset({"devices", "device", "devicerequests", "devicecgrouprules"}),
        _when_present("refused: job asks for device access ({key})"),
    ),
    (
        frozenset({"volumes", "volume", "mounts", "mount", "binds", "bind", "volumesfrom", "volumedriver"}),
        _when_present("refused: job asks for a bind mount / volume ({key})"),
    ),
    (frozenset({"tmpfs"}), _when_present("refused: job asks for its own tmpfs mounts ({key})")),
    (frozenset({"capadd", "capabilities"}), _when_present("refused: job asks for added capabilities ({value})")),
    (
        frozenset({"securityopt", "securityopts", "securityoptions", "seccomp", "apparmor"}),
        _when_present("refused: job asks to override security options ({value})"),
    ),
    (frozenset({"runtime"}), _when_present("refused: job asks for a different runtime ({value})")),
    (frozenset({"user"}), _user),
    (frozenset({"groupadd", "groups"}), _when_present("refused: job asks for extra groups ({key}: {value})")),
    (frozenset({"sysctls", "sysctl"}), _when_present("refused: job asks to set kernel parameters ({key}: {value})")),
    (frozenset({"cgroupparent"}), _when_present("refused: job asks for a different cgroup parent ({key}={value})")),
    (frozenset({"oomkilldisable"}), _oom_kill_disable),
    (frozenset({"pidslimit"}), _pids_limit),
    (frozenset({"ulimits"}), _when_present("refused: job asks to change resource limits ({key})")),
    (frozenset({"readonly", "readonlyrootfs"}), _writable_root),
    (frozenset({"extrahosts", "addhost"}), _when_present("refused: job asks to add host-name entries ({key})")),
)
_WRAPPERS = frozenset({"hostconfig"})  # the Engine API nests most of the above under HostConfig


def _normalize(key: str) -> str:
    return re.sub(r"[\s_-]", "", key).lower()


def _hostile(raw: Mapping[str, Any]) -> JobRefused | None:
    candidates: list[tuple[int, str, Any]] = []
    sources: list[tuple[str, Any]] = [("", raw)]
    sources += [(f"{key}.", value) for key, value in raw.items() if _normalize(key) in _WRAPPERS]
    for prefix, mapping in sources:
        if not isinstance(mapping, Mapping):
            continue
        for key, value in mapping.items():
            if not isinstance(key, str):
                continue
            normalized = _normalize(key)
            for rank, (names, _) in enumerate(_HOSTILE_KEYS):
                if normalized in names:
                    candidates.append((rank, prefix + key, value))
    for rank, path, value in sorted(candidates, key=lambda c: (c[0], c[1])):
        reason = _HOSTILE_KEYS[rank][1](path, value)
        if reason is not None:
            return JobRefused(reason, path)
    return None


# --- 2. and 3. unknown fields, runtime-steering environment ----------------------------------------


def _unknown(raw: Mapping[str, Any]) -> JobRefused | None:
    unknown = sorted(str(key) for key in raw if key not in JobSpec.model_fields)
    if not unknown:
        return None
    names = ", ".join(f"'{name}'" for name in unknown)
    plural = "s" if len(unknown) > 1 else ""
    allowed = ", ".join(JobSpec.model_fields)
    return JobRefused(f"refused: unknown field{plural} {names}; a job spec has: {allowed}", unknown[0])


def _runtime_env(raw: Mapping[str, Any]) -> JobRefused | None:
    env = raw.get("env")
    if not isinstance(env, Mapping):
        return None  # validation names what is wrong with it
    for name in sorted(key for key in env if isinstance(key, str)):
        why = runtime_env_reason(name)
        if why is not None:
            return JobRefused(
                f"refused: job sets {name}, which steers the GPU runtime on the host ({why})", f"env.{name}"
            )
    return None


# --- 4. the spec's own validation ------------------------------------------------------------------


def _allowed(field: str) -> str:
    info = JobSpec.model_fields.get(field)
    if info is None:
        return ""
    low = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in info.metadata if isinstance(m, annotated_types.Le)), None)
    if not (isinstance(low, int | float) and isinstance(high, int | float)):
        return ""
    if field.endswith("_bytes"):
        return f" (allowed: {format_bytes(int(low))} to {format_bytes(int(high))})"
    return f" (allowed: {low} to {high})"


def _describe(error: Mapping[str, Any]) -> JobRefused:
    loc = tuple(error["loc"])
    field = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        return JobRefused(f"refused: unknown field '{field}'", field)
    if error["type"] == "missing":
        return JobRefused(f"refused: {field} is missing", field)
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if not loc:
        return JobRefused(f"refused: {message}")
    if isinstance(value, Mapping):
        return JobRefused(f"refused: {field}: {message}", field)
    shown = repr(value)
    if isinstance(value, str) and shown in message:  # the validator already quotes the value
        return JobRefused(f"refused: {field}: {message}", field)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[: _SHOWN_CHARS - 1] + "…"
    allowed = _allowed(str(loc[0])) if len(loc) == 1 else ""
    return JobRefused(f"refused: {field} = {shown}: {message}{allowed}", field)


# --- 5. the provider's limits, registries and egress -------------------------------------------------


def format_bytes(size: int) -> str:
    """``17179869184`` → ``"16 GiB"``; at most one decimal, binary units as the limits are set."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _format_seconds(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def _count(number: float, noun: str) -> str:
    text = f"{number:g}"
    return f"{text} {noun}" if number == 1 else f"{text} {noun}s"


def _beyond_limits(spec: JobSpec, limits: ProviderLimits) -> JobRefused | None:
    if spec.gpus > limits.max_gpus:
        allows = f"allows at most {limits.max_gpus}" if limits.max_gpus else "offers no GPUs"
        return JobRefused(f"refused: job asks for {_count(spec.gpus, 'GPU')}, this provider {allows}", "gpus")
    if spec.gpus and limits.gpu_vram_bytes is not None and spec.min_vram_bytes > limits.gpu_vram_bytes:
        return JobRefused(
            f"refused: job needs {format_bytes(spec.min_vram_bytes)} of GPU memory, "
            f"this provider's GPUs have {format_bytes(limits.gpu_vram_bytes)}",
            "min_vram_bytes",
        )
    if spec.cpus > limits.max_cpus:
        return JobRefused(
            f"refused: job asks for {_count(spec.cpus, 'CPU')}, this provider allows at most {limits.max_cpus:g}",
            "cpus",
        )
    asked_and_allowed = (
        ("memory_bytes", "{} memory", spec.memory_bytes, limits.max_memory_bytes, format_bytes),
        ("shm_bytes", "{} shared memory", spec.shm_bytes, limits.max_shm_bytes, format_bytes),
        ("max_runtime_s", "a run time of {}", spec.max_runtime_s, limits.max_runtime_s, _format_seconds),
        ("max_output_bytes", "{} of output", spec.max_output_bytes, limits.max_output_bytes, format_bytes),
    )
    for field, what, asked, most, show in asked_and_allowed:
        if asked > most:
            return JobRefused(
                f"refused: job asks for {what.format(show(asked))}, this provider allows at most {show(most)}", field
            )
    return None


def _registry_allows(entry: str, ref: ImageReference) -> tuple[bool, bool]:
    """(host matches, path matches) of one allow-list entry."""
    host, _, prefix = entry.partition("/")
    if check_registry_host(host) != ref.registry:
        return False, False
    return True, not prefix or ref.repository == prefix or ref.repository.startswith(f"{prefix}/")


def _outside_registries(spec: JobSpec, limits: ProviderLimits) -> JobRefused | None:
    ref = spec.image_reference
    matches = [_registry_allows(entry, ref) for entry in limits.allowed_registries]
    if any(host and path for host, path in matches):
        return None
    allowed = ", ".join(limits.allowed_registries) or "none"
    if any(host for host, _ in matches):
        return JobRefused(
            f"refused: image {ref.registry}/{ref.repository} is outside your allowed registries ({allowed})", "image"
        )
    return JobRefused(
        f"refused: image from registry {ref.registry}, not in your allowed registries ({allowed})", "image"
    )


def _egress(spec: JobSpec, limits: ProviderLimits) -> JobRefused | None:
    if spec.egress and not limits.egress_allowed:
        return JobRefused(
            f"refused: job needs network egress ({', '.join(spec.egress)}) and this provider does not allow egress",
            "egress",
        )
    if limits.private_networks_allowed:
        return None
    for entry in spec.egress:
        if is_private_host(parse_egress(entry)[0]):
            return JobRefused(
                f"refused: job asks for network egress to {entry}, on the provider's own network or loopback; "
                "only public hosts may be reached",
                "egress",
            )
    for index, item in enumerate(spec.inputs):
        host = None if item.url is None else urlsplit(item.url).hostname
        if host is not None and is_private_host(host):
            return JobRefused(
                f"refused: input {item.path} is fetched from {host}, on the provider's own network or loopback; "
                "only public hosts may be reached",
                f"inputs.{index}.url",
            )
    return None


def check_limits(spec: JobSpec, limits: ProviderLimits) -> None:
    """Refuse a valid spec this provider does not take: limits, then registries, then egress."""
    for check in (_beyond_limits, _outside_registries, _egress):
        refusal = check(spec, limits)
        if refusal is not None:
            raise refusal


def check_job(raw: Mapping[str, Any], limits: ProviderLimits) -> JobSpec:
    """The validated spec of a job this provider takes, or :class:`JobRefused` with the first reason.

    Pure: it takes the spec as sent and the owner's limits, nothing that could pull or start.
    """
    if not isinstance(raw, Mapping):
        raise JobRefused(f"refused: a job spec must be a JSON object, not {type(raw).__name__}")
    if not all(isinstance(key, str) for key in raw):
        raise JobRefused("refused: a job spec's field names must be strings")
    for stage in (_hostile, _unknown, _runtime_env):
        refusal = stage(raw)
        if refusal is not None:
            raise refusal
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise _describe(exc.errors()[0]) from None
    check_limits(spec, limits)
    return spec
