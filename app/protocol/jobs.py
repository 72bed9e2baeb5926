"""The job spec: what a job asks of a provider, as the marketplace sends it and the agent runs it.

A spec names its image by digest, states what it needs (GPUs, GPU memory, CPUs, memory, shared
memory, run time, network egress, output size) and carries its small input files. The model alone
refuses unknown fields by name, tags instead of digests, and environment variables that would steer
the GPU runtime on the host; whether one provider takes the job (its limits, its registries, egress)
is decided by :func:`sparecycles.protocol.job_refusal.check_job`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import posixpath
import re
import socket
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

DOCKER_HUB = "docker.io"
INPUT_DIR = "/job/input"
DEFAULT_OUTPUT_DIR = "/job/output"

MAX_GPUS = 16
MIN_CPUS = 0.01
MAX_CPUS = 256.0
MIN_MEMORY_BYTES = 16 * MiB
MAX_MEMORY_BYTES = 1 * TiB
MIN_SHM_BYTES = 1 * MiB
MAX_VRAM_BYTES = 1 * TiB
MAX_RUNTIME_S = 7 * 86400
MAX_OUTPUT_BYTES = 1 * TiB
MAX_ARGS = 1024
MAX_ARGS_CHARS = 128 * KiB
MAX_ENV = 256
MAX_ENV_VALUE_CHARS = 32 * KiB
MAX_EGRESS = 32
MAX_INPUTS = 256
MAX_INLINE_INPUT_BYTES = 1 * MiB
MAX_INLINE_TOTAL_BYTES = 8 * MiB
MAX_URL_INPUT_BYTES = 16 * GiB
MAX_URL_CHARS = 2048

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BY_DIGEST = "name it by digest, like registry.example.com/team/app@sha256:<64 hex digits>"


# --- image references -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageReference:
    """An image reference by digest, split the way the Docker engine splits it."""

    registry: str  # host[:port], lower case; "docker.io" when the reference names none
    repository: str  # the path inside the registry; Docker Hub's official images get "library/"
    digest: str  # "sha256:<64 hex digits>"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """The fully qualified reference to pull: ``registry/repository@sha256:…``."""
        return f"{self.name}@{self.digest}"

    @property
    def repo_digests(self) -> frozenset[str]:
        """The spellings under which Docker lists this image in RepoDigests (Docker Hub's are shortened)."""
        names = {self.name}
        if self.registry == DOCKER_HUB:
            short = self.repository.removeprefix("library/")
            names |= {short, f"docker.io/{self.repository}"}
        return frozenset(f"{name}@{self.digest}" for name in names)


def check_registry_host(text: str) -> str:
    """``host[:port]`` of a registry, lower case (``index.docker.io`` is ``docker.io``); ValueError if malformed."""
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"{text!r} is not a registry host: '{inner}' is not an IPv6 address") from None
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not a registry host: write IPv6 hosts like [::1]:5000")
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
        if not host or len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
            raise ValueError(f"{text!r} is not a registry host: write it like ghcr.io or 127.0.0.1:5000")
    if port is not None and not (port.isdigit() and port.isascii() and 1 <= int(port) <= 65535):
        raise ValueError(f"{text!r} is not a registry host: the port must be a number from 1 to 65535")
    lowered = text.lower()
    return DOCKER_HUB if lowered == "index.docker.io" else lowered


def _split_registry(name: str) -> tuple[str, str]:
    # Docker's rule: the first component names a registry only if it has a '.' or ':', is
    # 'localhost', or has upper-case letters; otherwise the image is on Docker Hub.
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return check_registry_host(first), rest
    return DOCKER_HUB, name


def parse_image(image: str) -> ImageReference:
    """Split ``[registry[:port]/]repo[/more]@sha256:<64 hex>``; ValueError says what is wrong and how to write it."""
    name, at, digest = image.rpartition("@")
    if not at:
        name, digest = image, ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.partition(":")[2]
        if not digest:
            raise ValueError(f"{image!r} names the image by tag (:{tag}); tags can change, so {_BY_DIGEST}")
        raise ValueError(f"{image!r} has both a tag (:{tag}) and a digest; drop the tag, the digest alone names it")
    if not digest:
        raise ValueError(f"{image!r} has no digest; {_BY_DIGEST}")
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"{digest!r} is not a digest; write sha256: followed by 64 lower-case hex digits")
    if not name or len(name) > 255:
        raise ValueError(f"{image!r} has no valid image name before the digest (1 to 255 characters)")
    registry, path = _split_registry(name)
    if not all(_PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise ValueError(
            f"{image!r} is not a valid image name: repository names are lower-case letters and digits, "
            "separated by '.', '_', '__' or '-', with '/' between parts, after an optional registry host[:port]/"
        )
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return ImageReference(registry=registry, repository=path, digest=digest)


def image_registry(image: str) -> str:
    """The registry an image reference pulls from, by Docker's rules (``docker.io`` when none is named)."""
    return parse_image(image).registry


def image_digest(image: str) -> str:
    """The ``sha256:…`` digest of an image reference."""
    return parse_image(image).digest


# --- network egress ------------------------------------------------------------------------------


def parse_egress(entry: str) -> tuple[str, int]:
    """``(host, port)`` of a ``host:port`` egress entry (IPv6 as ``[addr]:port``); ValueError if malformed."""
    if entry.startswith("["):
        inner, bracket, rest = entry[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{entry!r} is not host:port; write IPv6 addresses like [2001:db8::1]:443")
        host, port_text = inner, rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{entry!r}: '{host}' is not an IPv6 address") from None
    else:
        host, colon, port_text = entry.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{entry!r} is not host:port; write it like example.com:443")
        if ":" in host:
            raise ValueError(f"{entry!r}: write IPv6 addresses in brackets, like [2001:db8::1]:443")
        _check_host_name(entry, host)
    if not (port_text.isdigit() and port_text.isascii() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return host.lower(), int(port_text)


def _check_host_name(entry: str, host: str) -> None:
    if "*" in host:
        raise ValueError(f"{entry!r}: wildcards are not allowed; list each host the job needs")
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{entry!r}: '{host}' is neither a host name nor an IPv4 address")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return
    # The resolver reads "127.1", "0x7f.1" or "2130706433" as addresses; only the plain form can be judged.
    try:
        socket.inet_aton(host)
    except OSError:
        looks_numeric = labels[-1].isdigit()
    else:
        looks_numeric = True
    if looks_numeric:
        raise ValueError(f"{entry!r}: '{host}' is neither a host name nor a plain IPv4 address a.b.c.d")


def is_private_host(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an address literal outside the public internet (LAN, loopback…)."""
    lowered = host.lower().strip("[]")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(lowered).is_global
    except ValueError:
        return False


# --- environment ---------------------------------------------------------------------------------


def runtime_env_reason(name: str) -> str | None:
    """Why setting ``name`` would steer the GPU runtime on the host, or None if it stays inside the container.

    The NVIDIA container runtime reads the container's environment on the host: NVIDIA_VISIBLE_DEVICES,
    NVIDIA_DRIVER_CAPABILITIES, NVIDIA_REQUIRE_*, NVIDIA_MIG_* and the rest choose which GPUs and
    driver features a container gets, and CUDA_VERSION without NVIDIA_REQUIRE_CUDA marks a "legacy"
    image, which gets every GPU. Variables read only inside the container (CUDA_VISIBLE_DEVICES,
    LD_PRELOAD…) cannot reach beyond the devices the runtime already granted, so they are allowed.
    """
    upper = name.upper()
    if upper.startswith("NVIDIA_"):
        return "NVIDIA_* variables choose GPUs and driver features on the host and can expose every GPU"
    if upper == "CUDA_VERSION":
        return "the NVIDIA runtime treats a job with CUDA_VERSION as a legacy image and can expose every GPU"
    return None


def _env(env: dict[str, str]) -> dict[str, str]:
    if len(env) > MAX_ENV:
        raise ValueError(f"has {len(env)} variables; at most {MAX_ENV} are allowed")
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name) or len(name) > 256:
            raise ValueError(f"{name!r} is not a variable name: letters, digits and _, not starting with a digit")
        why = runtime_env_reason(name)
        if why is not None:
            raise ValueError(f"{name} steers the GPU runtime on the host ({why})")
        if "\x00" in value:
            raise ValueError(f"the value of {name} contains a NUL character")
        if len(value) > MAX_ENV_VALUE_CHARS:
            raise ValueError(f"the value of {name} is longer than {MAX_ENV_VALUE_CHARS} characters")
    return env


# --- field validators -----------------------------------------------------------------------------


def _image(value: str) -> str:
    parse_image(value)
    return value


def _args(args: list[str]) -> list[str]:
    if any("\x00" in arg for arg in args):
        raise ValueError("an argument contains a NUL character")
    if sum(len(arg) for arg in args) > MAX_ARGS_CHARS:
        raise ValueError(f"the arguments are longer than {MAX_ARGS_CHARS} characters in all")
    return args


def _egress(entries: list[str]) -> list[str]:
    normalized: list[str] = []
    for entry in entries:
        host, port = parse_egress(entry)
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if text in normalized:
            raise ValueError(f"{entry!r} is listed twice")
        normalized.append(text)
    return normalized


def _output_dir(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError("must be an absolute path in the container, like /job/output")
    if posixpath.normpath(path) != path or "\x00" in path or len(path) > 255:
        raise ValueError("must be a plain absolute path: no '.', '..', '//' or trailing '/'")
    if path == "/" or any(path == top or path.startswith(f"{top}/") for top in ("/proc", "/sys", "/dev")):
        raise ValueError("must not be / or lie under /proc, /sys or /dev")
    if path == INPUT_DIR or path.startswith(f"{INPUT_DIR}/") or INPUT_DIR.startswith(f"{path}/"):
        raise ValueError(f"must not overlap the input folder {INPUT_DIR}")
    return path


def _input_path(path: str) -> str:
    if not path:
        raise ValueError("is empty")
    if path.startswith("/"):
        raise ValueError(f"must be relative to the input folder {INPUT_DIR}, not absolute")
    if "\\" in path:
        raise ValueError("must use '/' between folders, not '\\'")
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise ValueError("contains control characters")
    parts = path.split("/")
    if ".." in parts:
        raise ValueError(f"must stay inside the input folder {INPUT_DIR}: '..' is not allowed")
    if any(part in ("", ".") for part in parts):
        raise ValueError("must not have empty or '.' parts (no '//', './' or trailing '/')")
    if len(path) > 1024 or any(len(part.encode()) > 255 for part in parts):
        raise ValueError("is too long (at most 1024 characters, 255 bytes per part)")
    return path


def _sha256(value: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError("must be 64 hex digits (the SHA-256 of the file)")
    return value.lower()


def _content_base64(value: str) -> str:
    if len(value) > 4 * -(-MAX_INLINE_INPUT_BYTES // 3):
        raise ValueError("inline content is larger than 1 MiB; give a url and its sha256 instead")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    if len(decoded) > MAX_INLINE_INPUT_BYTES:
        raise ValueError("inline content is larger than 1 MiB; give a url and its sha256 instead")
    return value


def _url(value: str) -> str:
    if len(value) > MAX_URL_CHARS or any(char.isspace() or ord(char) < 32 for char in value):
        raise ValueError(f"must be an http:// or https:// URL without spaces, at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if ":" not in parts.hostname:
        _check_host_name(value, parts.hostname)
    else:
        try:
            ipaddress.IPv6Address(parts.hostname)
        except ValueError:
            raise ValueError(f"'{parts.hostname}' is not an IPv6 address") from None
    return value


Args = Annotated[list[str], Field(min_length=1, max_length=MAX_ARGS), AfterValidator(_args)]


# --- models --------------------------------------------------------------------------------------


class _Model(BaseModel):
    """A protocol object: unknown fields are refused by name, values are not coerced, nothing changes later."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class JobInput(_Model):
    """One input file, placed at ``/job/input/<path>`` before the job starts and checked against its SHA-256."""

    path: Annotated[str, AfterValidator(_input_path)] = Field(
        description="Where the file goes, relative to /job/input (no '..', not absolute), e.g. 'data/train.csv'."
    )
    sha256: Annotated[str, AfterValidator(_sha256)] = Field(
        description="SHA-256 of the file's bytes, 64 hex digits; checked for inline content and downloads alike."
    )
    content_base64: Annotated[str, AfterValidator(_content_base64)] | None = Field(
        None, description="The file itself, base64-encoded (at most 1 MiB decoded); or give url instead."
    )
    url: Annotated[str, AfterValidator(_url)] | None = Field(
        None, description="An http(s) URL the agent downloads the file from; needs size_bytes."
    )
    size_bytes: int | None = Field(
        None, ge=0, le=MAX_URL_INPUT_BYTES, description="Size of the file; required with url, checked if inline."
    )

    def content(self) -> bytes | None:
        """The inline bytes (already checked against ``sha256``), or None for a file given by URL."""
        return None if self.content_base64 is None else base64.b64decode(self.content_base64)

    @model_validator(mode="after")
    def _one_source_checked(self) -> JobInput:
        if (self.content_base64 is None) == (self.url is None):
            raise ValueError("give either content_base64 (inline, up to 1 MiB) or url, exactly one of them")
        data = self.content()
        if data is None:
            if self.size_bytes is None:
                raise ValueError("size_bytes is required for an input given by url")
            return self
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError(f"the inline content of {self.path} does not match its sha256")
        if self.size_bytes is not None and self.size_bytes != len(data):
            raise ValueError(f"size_bytes is {self.size_bytes} but the inline content of {self.path} has {len(data)}")
        return self


class JobSpec(_Model):
    """Everything a job asks of a provider; the agent derives the container's whole configuration from it.

    There is deliberately no field for privileges, mounts, devices, capabilities, namespaces or the
    runtime: the sandbox decides those, always the same way.
    """

    image: Annotated[str, AfterValidator(_image)] = Field(
        description="The image by digest: [registry[:port]/]repo[/more]@sha256:<64 hex digits>. A tag alone is refused."
    )
    entrypoint: Args | None = Field(None, description="Replaces the image's ENTRYPOINT (unset: keep the image's).")
    command: Args | None = Field(None, description="Replaces the image's CMD (unset: keep the image's).")
    env: Annotated[dict[str, str], AfterValidator(_env)] = Field(
        default_factory=dict, description="Environment variables; NVIDIA_* and CUDA_VERSION are refused."
    )
    gpus: int = Field(0, ge=0, le=MAX_GPUS, description="Number of GPUs; 0 for a CPU-only job.")
    min_vram_bytes: int = Field(0, ge=0, le=MAX_VRAM_BYTES, description="GPU memory each GPU must have.")
    cpus: float = Field(1.0, ge=MIN_CPUS, le=MAX_CPUS, allow_inf_nan=False, description="CPU time, in CPUs.")
    memory_bytes: int = Field(2 * GiB, ge=MIN_MEMORY_BYTES, le=MAX_MEMORY_BYTES, description="Memory limit.")
    shm_bytes: int = Field(
        64 * MiB, ge=MIN_SHM_BYTES, le=MAX_MEMORY_BYTES, description="Size of /dev/shm (counts towards memory)."
    )
    max_runtime_s: int = Field(3600, ge=1, le=MAX_RUNTIME_S, description="The job is stopped after this long.")
    egress: Annotated[list[str], Field(max_length=MAX_EGRESS), AfterValidator(_egress)] = Field(
        default_factory=list, description="host:port the job must reach; empty (the default) means no network."
    )
    inputs: list[JobInput] = Field(
        default_factory=list, max_length=MAX_INPUTS, description=f"Files placed under {INPUT_DIR} before start."
    )
    output_dir: Annotated[str, AfterValidator(_output_dir)] = Field(
        DEFAULT_OUTPUT_DIR, description="Absolute path in the container whose files are the job's result."
    )
    max_output_bytes: int = Field(
        1 * GiB, ge=0, le=MAX_OUTPUT_BYTES, description="The result may not be larger than this."
    )

    @property
    def image_reference(self) -> ImageReference:
        return parse_image(self.image)

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.gpus == 0 and self.min_vram_bytes > 0:
            raise ValueError("min_vram_bytes needs gpus of 1 or more (a CPU-only job has no GPU memory)")
        if self.shm_bytes > self.memory_bytes:
            raise ValueError(f"shm_bytes ({self.shm_bytes}) must not exceed memory_bytes ({self.memory_bytes})")
        seen: set[str] = set()
        for path in sorted(item.path for item in self.inputs):
            parts = path.split("/")
            clash = next((p for p in ("/".join(parts[:i]) for i in range(1, len(parts) + 1)) if p in seen), None)
            if clash is not None:
                raise ValueError(f"inputs '{clash}' and '{path}' collide; each input needs its own file path")
            seen.add(path)
        inline = sum(len(data) for item in self.inputs if (data := item.content()) is not None)
        if inline > MAX_INLINE_TOTAL_BYTES:
            raise ValueError("inline inputs are larger than 8 MiB in all; give the larger ones by url")
        return self
