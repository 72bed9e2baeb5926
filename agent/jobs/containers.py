"""Run a job's container through the Docker engine: pull by digest, create, start, pause, stop, collect.

The Docker SDK is imported only inside functions, so importing this module costs nothing at agent
start-up; :func:`connect` builds the client where the composition root asks for one. Every engine
error is turned into a :class:`JobRuntimeError` whose message says what to do.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sparecycles.agent.jobs.errors import (
    ContainerStateError,
    EngineUnreachableError,
    GpuToolkitMissingError,
    ImageDigestMismatchError,
    ImageError,
    JobRuntimeError,
)
from sparecycles.agent.jobs.sandbox import (
    KIB,
    LABEL_AGENT,
    LABEL_JOB,
    LABEL_ROLE,
    ROLE_EGRESS,
    ROLE_HOLDER,
    ROLE_INPUT,
    ROLE_OUTPUT,
    ContainerPlan,
    GpuMode,
    ScratchVolumes,
    container_options,
    egress_network_name,
    job_labels,
    parse_image_reference,
)
from sparecycles.agent.jobs.scratch import InputFiles, OutputFile, Scratch
from sparecycles.protocol.jobs import ImageReference

logger = logging.getLogger(__name__)

DEFAULT_ENGINE_ADDRESS = "unix:///var/run/docker.sock"
TOOLKIT_MESSAGE = "NVIDIA Container Toolkit is not installed or not configured for Docker — see `sparecycles doctor`"
REASON_RUN_TIME = "run time limit reached"
REASON_OUTPUT_CAP = "output cap reached"
REASON_STOPPED = "stopped by the agent"

# What the engine says when it cannot hand a container a GPU: no nvidia device driver (toolkit missing),
# no nvidia runtime, or no CDI specification for the GPUs (toolkit not configured for CDI).
_TOOLKIT_MISSING = re.compile(
    r"could not select device driver .* with capabilities|unknown or invalid runtime name: nvidia"
    r"|unresolvable CDI devices",
    re.IGNORECASE,
)
_CDI_MIN_API = (1, 44)
# Each running job holds two streaming connections (its logs, its exit), besides the control calls.
_POOL_SIZE = 32


def engine_address(base_url: str | None = None) -> str:
    """Where the engine is expected: the given URL, else DOCKER_HOST, else the default socket (for messages)."""
    return base_url or os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE_ADDRESS


def unreachable_error(address: str, exc: BaseException | None = None) -> EngineUnreachableError:
    denied = isinstance(exc, PermissionError) or "permission denied" in str(exc).lower()
    if denied:
        return EngineUnreachableError(
            f"Docker engine at {address} refused this user (permission denied on its socket) — "
            "see `sparecycles doctor` for how to allow it"
        )
    return EngineUnreachableError(
        f"Docker engine not reachable at {address} — is the service running? `sudo systemctl start docker`"
    )


def connect(base_url: str | None = None, *, timeout_s: float = 60) -> Any:
    """A Docker SDK client for ``base_url`` (or the environment's), checked to answer."""
    import docker
    from docker.errors import DockerException

    address = engine_address(base_url)
    client: Any = None
    try:
        if base_url:
            client = docker.DockerClient(base_url=base_url, timeout=timeout_s, max_pool_size=_POOL_SIZE)
        else:
            client = docker.from_env(timeout=timeout_s, max_pool_size=_POOL_SIZE)
        client.ping()
    except (DockerException, OSError) as exc:
        logger.info("Docker engine at %s did not answer: %s", address, exc)
        if client is not None:  # its half-open sockets would otherwise linger until collected
            client.close()
        raise unreachable_error(address, exc) from None
    return client


def _explanation(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)


@dataclass(frozen=True)
class PullProgress:
    """One progress event of a pull: a layer's status and, while downloading, its bytes."""

    status: str
    layer: str | None
    current_bytes: int | None
    total_bytes: int | None


@dataclass(frozen=True)
class JobExit:
    """How a job's container ended: its exit code and, when the runtime stopped it, why."""

    exit_code: int
    reason: str | None
    oom_killed: bool
    run_time_s: float


@dataclass(frozen=True)
class EgressNetwork:
    """A job's internal network: no route out but its proxy, which listens on ``gateway`` (the host's side)."""

    name: str
    id: str
    subnet: str
    gateway: str


@dataclass(frozen=True)
class LabelledResource:
    """A container, volume or network this agent labelled, found again (after a crash, for instance)."""

    kind: str
    id: str
    name: str
    job_id: str
    role: str
    state: str


class LogBuffer:
    """The last ``capacity_bytes`` of a job's output (stdout and stderr interleaved); older bytes are dropped."""

    def __init__(self, capacity_bytes: int = 256 * KIB) -> None:
        self._capacity = capacity_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def append(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            if len(data) > self._capacity:
                self._dropped += len(data) - self._capacity
                data = data[-self._capacity :]
            self._chunks.append(data)
            self._size += len(data)
            while self._size > self._capacity:
                excess = self._size - self._capacity
                head = self._chunks[0]
                if len(head) <= excess:
                    self._chunks.popleft()
                    self._size -= len(head)
                    self._dropped += len(head)
                else:
                    self._chunks[0] = head[excess:]
                    self._size -= excess
                    self._dropped += excess

    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def text(self) -> str:
        return self.data().decode("utf-8", errors="replace")

    @property
    def dropped_bytes(self) -> int:
        with self._lock:
            return self._dropped


class ContainerRunner:
    """Runs jobs' containers on one Docker engine, labelled as this agent's.

    ``holder_image`` is a digest-pinned image with POSIX ``sleep`` and ``stat`` (a busybox, for instance)
    that keeps each job's scratch volumes mounted; without one, each job's own image holds its volumes
    (most images have both tools, and nothing more is pulled); ``allowed_registries`` (host[:port] names), when
    given, is the only place images may come from (an entry may narrow a registry to a path: ghcr.io/acme).
    """

    def __init__(
        self,
        client: Any,
        *,
        agent_id: str,
        holder_image: str | None = None,
        engine_address: str = DEFAULT_ENGINE_ADDRESS,
        allowed_registries: Collection[str] | None = None,
        log_buffer_bytes: int = 256 * KIB,
        poll_interval_s: float = 0.2,
        usage_poll_interval_s: float = 2.0,
        gpu_mode: GpuMode | None = None,
    ) -> None:
        if holder_image is not None:
            parse_image_reference(holder_image)
        self._client = client
        self.agent_id = agent_id
        self.holder_image = holder_image
        self.engine_address = engine_address
        self._allowed = frozenset(allowed_registries) if allowed_registries is not None else None
        self.log_buffer_bytes = log_buffer_bytes
        self.poll_interval_s = poll_interval_s
        self.usage_poll_interval_s = usage_poll_interval_s
        self._gpu_mode = gpu_mode

    @property
    def client(self) -> Any:
        return self._client

    @contextlib.contextmanager
    def engine_calls(self, action: str) -> Iterator[None]:
        """Turn what the SDK raises while doing ``action`` into errors with a message a user can act on."""
        from docker import errors as docker_errors

        try:
            yield
        except JobRuntimeError:
            raise
        except docker_errors.NotFound as exc:
            raise JobRuntimeError(f"could not {action}: {_explanation(exc)}") from exc
        except docker_errors.APIError as exc:
            raise JobRuntimeError(f"Docker refused to {action}: {_explanation(exc)}") from exc
        except (docker_errors.DockerException, OSError) as exc:
            logger.info("Docker engine call failed (%s): %s", action, exc)
            raise unreachable_error(self.engine_address, exc) from None

    # Images

    def pull(self, image: str, progress: Callable[[PullProgress], None] | None = None) -> str:
        """Make the job image named by digest present and return its ID; a local copy with that digest is reused.

        The registry must be allowed; the engine checks what it serves against the digest, and afterwards
        the image's RepoDigests must list the reference, or the image is refused.
        """
        reference = parse_image_reference(image)
        if not self._registry_allowed(reference):
            raise ImageError(f"registry {reference.registry} is not on the list of allowed registries")
        return self._ensure_image(reference, progress)

    def _ensure_image(self, reference: ImageReference, progress: Callable[[PullProgress], None] | None) -> str:
        from docker.errors import APIError

        with self.engine_calls(f"pull {reference.canonical}"):
            image_id = self._verified_image_id(reference)
            if image_id is not None:
                return image_id
            started = time.monotonic()
            try:
                for event in self._client.api.pull(reference.canonical, stream=True, decode=True):
                    if "error" in event:
                        raise _pull_failure(reference, str(event["error"]))
                    if progress is not None:
                        detail = event.get("progressDetail") or {}
                        status = str(event.get("status", ""))
                        progress(PullProgress(status, event.get("id"), detail.get("current"), detail.get("total")))
            except APIError as exc:
                raise _pull_failure(reference, _explanation(exc)) from exc
            image_id = self._verified_image_id(reference)
            if image_id is None:
                raise ImageDigestMismatchError(
                    f"the image pulled for {reference.canonical} does not carry that digest; it is not used"
                )
            logger.info("Pulled %s in %.1f s", reference.canonical, time.monotonic() - started)
            return image_id

    def _registry_allowed(self, reference: ImageReference) -> bool:
        if self._allowed is None:
            return True
        return any(entry == reference.registry or reference.name.startswith(entry + "/") for entry in self._allowed)

    def _verified_image_id(self, reference: ImageReference) -> str | None:
        """The local image's ID if its RepoDigests list this exact reference; ``None`` when not present."""
        from docker.errors import ImageNotFound, NotFound

        try:
            attrs = self._client.api.inspect_image(reference.canonical)
        except (ImageNotFound, NotFound):
            return None
        if not reference.repo_digests & set(attrs.get("RepoDigests") or []):
            return None
        return str(attrs["Id"])

    def has_image(self, image: str) -> bool:
        """Whether the job image named by digest is present with that digest (a pull would download nothing)."""
        reference = parse_image_reference(image)
        with self.engine_calls(f"look for {reference.canonical}"):
            return self._verified_image_id(reference) is not None

    def image_size_bytes(self, reference: str) -> int | None:
        """The size the engine reports for an image (shared layers counted in each), or None when absent."""
        from docker.errors import ImageNotFound, NotFound

        with self.engine_calls(f"measure {reference}"):
            try:
                return int(self._client.api.inspect_image(reference).get("Size") or 0)
            except (ImageNotFound, NotFound):
                return None

    def remove_image(self, reference: str) -> None:
        """Remove one image reference; the engine keeps the image while another tag or a container uses it."""
        from docker.errors import ImageNotFound, NotFound

        action = f"remove {reference} from the image cache"
        with self.engine_calls(action), contextlib.suppress(ImageNotFound, NotFound):
            self._client.api.remove_image(reference, force=False, noprune=False)

    # Egress networks

    def create_egress_network(self, job_id: str) -> EgressNetwork:
        """Create a job's internal network (no gateway out), labelled as the job's; its proxy listens on the gateway.

        Internal networks isolate only where the engine manages iptables (its default); an engine started
        with ``--iptables=false`` leaves a route out (README, "Job specs").
        """
        with self.engine_calls(f"create the egress network of job {job_id}"):
            network = self._client.networks.create(
                egress_network_name(job_id),
                driver="bridge",
                internal=True,
                check_duplicate=True,
                labels=job_labels(job_id, self.agent_id, ROLE_EGRESS),
            )
            try:
                return self._egress_network(network.id)
            except BaseException:
                with contextlib.suppress(Exception):
                    network.remove()
                raise

    def egress_network(self, job_id: str) -> EgressNetwork | None:
        """The job's egress network, if it still exists (crash recovery)."""
        with self.engine_calls(f"find the egress network of job {job_id}"):
            for found in self.find_labelled():
                if found.kind == "network" and found.job_id == job_id and found.role == ROLE_EGRESS:
                    return self._egress_network(found.id)
        return None

    def _egress_network(self, network_id: str) -> EgressNetwork:
        attrs = self._client.api.inspect_network(network_id)
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        ipv4 = next((item for item in configs if "." in str(item.get("Subnet", ""))), None)
        if ipv4 is None or not ipv4.get("Gateway"):
            raise JobRuntimeError(f"the job network {attrs.get('Name')} has no IPv4 gateway for its egress proxy")
        return EgressNetwork(str(attrs["Name"]), str(attrs["Id"]), str(ipv4["Subnet"]), str(ipv4["Gateway"]))

    def remove_egress_network(self, job_id: str) -> None:
        """Remove the job's egress network (after its container); nothing if it is gone already."""
        from docker.errors import NotFound

        with self.engine_calls(f"remove the egress network of job {job_id}"):
            for found in self.find_labelled():
                if found.kind == "network" and found.job_id == job_id:
                    with contextlib.suppress(NotFound):
                        self._client.api.remove_network(found.id)

    # Containers

    def create(self, plan: ContainerPlan, inputs: InputFiles | None = None) -> JobContainer:
        """Create the job's scratch (with ``inputs`` copied into ``plan.input_dir``) and its container, not started.

        The job's image must have been pulled (:meth:`pull`); the container is created from the verified
        image ID, so what runs is what was checked. On failure nothing is left behind.
        """
        reference = plan.image_reference
        with self.engine_calls(f"create the container of job {plan.job_id}"):
            image_id = self._verified_image_id(reference)
            if image_id is None:
                raise ImageError(f"image {plan.image} is not pulled yet (or not with that digest); pull it first")
            holder_image = self.holder_image or plan.image
            if self.holder_image is not None:
                self._ensure_image(parse_image_reference(self.holder_image), None)  # the agent's own choice
            gpu_mode = self._detect_gpu_mode() if plan.gpu_uuids else "nvidia"
            scratch = Scratch.create(
                self._client, plan, agent_id=self.agent_id, holder_image=holder_image, inputs=inputs
            )
            try:
                options = container_options(plan, scratch.volumes, agent_id=self.agent_id, gpu_mode=gpu_mode)
                options["image"] = image_id
                name = f"sparecycles-job-{plan.job_id}-{secrets.token_hex(3)}"
                container = self._client.containers.create(name=name, **options)
            except BaseException:
                scratch.remove()
                raise
        logger.info("Created container %s for job %s", container.short_id, plan.job_id)
        return JobContainer(self, plan, container, scratch)

    def _detect_gpu_mode(self) -> GpuMode:
        """CDI where the engine has it (API 1.44+, Docker 25) and an NVIDIA CDI specification exists; else the
        NVIDIA device driver of the Container Toolkit."""
        if self._gpu_mode is not None:
            return self._gpu_mode
        mode: GpuMode = "nvidia"
        version = str(self._client.version().get("ApiVersion", "0.0"))
        api = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        if api >= _CDI_MIN_API:
            spec_dirs = [Path(folder) for folder in self._client.info().get("CDISpecDirs") or []]
            names = ("nvidia.yaml", "nvidia.json")
            if any((folder / name).exists() for folder in spec_dirs for name in names):
                mode = "cdi"
        self._gpu_mode = mode
        return mode

    def adopt(
        self, plan: ContainerPlan, container_id: str, *, paused_s: float = 0.0, paused_since: float | None = None
    ) -> JobContainer:
        """Take charge again of a job's container that outlived the agent (crash recovery).

        Its scratch holder must still run (found by the job's labels), or the outputs are gone. A container
        that still runs is followed as if just started, its run time counted from when the engine started it,
        less ``paused_s`` (the pauses the previous agent recorded) and the pause under way since
        ``paused_since`` (wall-clock seconds) if it is still frozen; one that has ended is handed back ended,
        with its logs.
        """
        from docker.errors import NotFound

        with self.engine_calls(f"adopt the container of job {plan.job_id}"):
            try:
                container = self._client.containers.get(container_id)
            except NotFound:
                raise ContainerStateError(f"the container of job {plan.job_id} no longer exists") from None
            labels = container.attrs.get("Config", {}).get("Labels") or {}
            if labels.get(LABEL_AGENT) != self.agent_id or labels.get(LABEL_JOB) != plan.job_id:
                raise ContainerStateError(f"container {container.short_id} is not job {plan.job_id} of this agent")
            volumes: dict[str, str] = {}
            holder: Any = None
            for found in self.find_labelled():
                if found.job_id != plan.job_id:
                    continue
                if found.kind == "volume":
                    volumes[found.role] = found.id
                elif found.role == ROLE_HOLDER and found.state == "running":
                    holder = self._client.containers.get(found.id)
            if holder is None or ROLE_INPUT not in volumes or ROLE_OUTPUT not in volumes:
                raise ContainerStateError(f"the scratch area of job {plan.job_id} is gone")
            scratch = Scratch(self._client, plan, ScratchVolumes(volumes[ROLE_INPUT], volumes[ROLE_OUTPUT]))
            scratch.holder = holder
            job = JobContainer(self, plan, container, scratch)
            job._attach(container.attrs.get("State") or {}, paused_s, paused_since)
        logger.info("Adopted container %s of job %s", container.short_id, plan.job_id)
        return job

    def find_labelled(self) -> list[LabelledResource]:
        """Every container, volume and network this agent labelled, whatever their state (for crash recovery)."""
        label = f"{LABEL_AGENT}={self.agent_id}"
        found: list[LabelledResource] = []
        with self.engine_calls("list this agent's containers"):
            for summary in self._client.api.containers(all=True, filters={"label": label}):
                labels = summary.get("Labels") or {}
                names = summary.get("Names") or [""]
                found.append(
                    LabelledResource(
                        "container",
                        summary["Id"],
                        names[0].lstrip("/"),
                        labels.get(LABEL_JOB, ""),
                        labels.get(LABEL_ROLE, ""),
                        summary.get("State", ""),
                    )
                )
            volumes = self._client.api.volumes(filters={"label": label}).get("Volumes") or []
            for volume in volumes:
                labels = volume.get("Labels") or {}
                found.append(
                    LabelledResource(
                        "volume",
                        volume["Name"],
                        volume["Name"],
                        labels.get(LABEL_JOB, ""),
                        labels.get(LABEL_ROLE, ""),
                        "",
                    )
                )
            for network in self._client.api.networks(filters={"label": label}):
                labels = network.get("Labels") or {}
                found.append(
                    LabelledResource(
                        "network",
                        network["Id"],
                        network.get("Name", ""),
                        labels.get(LABEL_JOB, ""),
                        labels.get(LABEL_ROLE, ""),
                        "",
                    )
                )
        return found

    def remove_leftovers(self, job_id: str | None = None) -> int:
        """Remove this agent's labelled containers, then networks and volumes (of one job, or all); returns how many."""
        from docker.errors import NotFound

        leftovers = [found for found in self.find_labelled() if job_id is None or found.job_id == job_id]
        removed = 0
        with self.engine_calls("remove containers left over from earlier jobs"):
            for found in sorted(leftovers, key=lambda item: item.kind != "container"):  # containers first
                with contextlib.suppress(NotFound):
                    if found.kind == "container":
                        self._client.api.remove_container(found.id, force=True)
                    elif found.kind == "network":
                        self._client.api.remove_network(found.id)
                    else:
                        self._client.api.remove_volume(found.id, force=True)
                    removed += 1
        return removed


def _engine_time(text: str) -> float:
    """Seconds since the epoch of the engine's RFC 3339 time (nanoseconds cut to microseconds); now if unreadable."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        return time.time()
    zone = "+00:00" if match[3] == "Z" else match[3]
    fraction = (match[2] or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{match[1]}.{fraction}{zone}").timestamp()


def _pull_failure(reference: ImageReference, text: str) -> ImageError:
    logger.info("Pull of %s failed: %s", reference.canonical, text)
    lowered = text.lower()
    if "verification failed" in lowered or "digest mismatch" in lowered or "digest did not match" in lowered:
        return ImageDigestMismatchError(
            f"registry {reference.registry} served content that does not match the digest of "
            f"{reference.canonical}; the image is refused"
        )
    if "manifest unknown" in lowered or "not found" in lowered:
        return ImageError(f"image {reference.canonical} is not in registry {reference.registry}")
    if "unauthorized" in lowered or "denied" in lowered:
        return ImageError(f"registry {reference.registry} refused access to {reference.repository}")
    if "connection refused" in lowered or "no such host" in lowered or "timeout" in lowered or "dial tcp" in lowered:
        return ImageError(f"registry {reference.registry} is not reachable; check the network")
    return ImageError(f"could not pull {reference.canonical}: {text}")


class JobContainer:
    """One job's container and scratch: the handle the job runtime drives.

    Thread-safe for its control calls: the engine may :meth:`pause` or :meth:`stop` from its thread while
    another blocks in :meth:`wait`. Use it as a context manager so that it is removed whatever happens.
    """

    def __init__(self, runner: ContainerRunner, plan: ContainerPlan, container: Any, scratch: Scratch) -> None:
        self._runner = runner
        self.plan = plan
        self._container = container
        self.scratch = scratch
        self.logs = LogBuffer(runner.log_buffer_bytes)
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._started_at: float | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._ended_at: float | None = None
        self._exited = threading.Event()
        self._threads: list[threading.Thread] = []
        self._log_stream: Any = None
        self._removed = False

    def __enter__(self) -> JobContainer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self.remove()
            return
        try:
            self.remove()
        except JobRuntimeError as cleanup:  # keep the error that brought us here; this one goes to the log
            logger.warning("Could not remove the container of job %s: %s", self.plan.job_id, cleanup)

    @property
    def id(self) -> str:
        return str(self._container.id)

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused_since is not None

    @property
    def run_time_s(self) -> float:
        """Seconds the job has run, not counting the time it spent paused."""
        with self._lock:
            if self._started_at is None:
                return 0.0
            end = self._ended_at if self._ended_at is not None else time.monotonic()
            paused = self._paused_total + (end - self._paused_since if self._paused_since is not None else 0.0)
            return max(0.0, end - self._started_at - paused)

    def inspect(self) -> dict[str, Any]:
        """The engine's full description of the job's container (``docker inspect``)."""
        with self._runner.engine_calls(f"inspect the container of job {self.plan.job_id}"):
            return dict(self._runner.client.api.inspect_container(self.id))

    def start(self) -> None:
        """Start the job; its output starts flowing into :attr:`logs`."""
        from docker.errors import APIError

        with self._runner.engine_calls(f"start job {self.plan.job_id}"):
            try:
                self._container.start()
            except APIError as exc:
                raw = _explanation(exc)
                if self.plan.gpu_uuids and _TOOLKIT_MISSING.search(raw):
                    logger.warning("Docker could not give job %s its GPUs: %s", self.plan.job_id, raw)
                    raise GpuToolkitMissingError(TOOLKIT_MESSAGE) from None
                raise
            with self._lock:
                self._started_at = time.monotonic()
            self._log_stream = self._runner.client.api.logs(self.id, stream=True, follow=True)
        self._spawn(self._follow_logs, "logs")
        self._spawn(self._await_exit, "wait")

    def pauses(self) -> tuple[float, float | None]:
        """Seconds paused in finished pauses, and when the current pause began (wall clock), if paused:
        what a record keeps so that a re-adopted job's run time leaves them out."""
        with self._lock:
            since = self._paused_since
            wall = None if since is None else time.time() - (time.monotonic() - since)
            return self._paused_total, wall

    def _attach(self, state: dict[str, Any], paused_s: float = 0.0, paused_since: float | None = None) -> None:
        """Follow a container that was started before this handle existed (see :meth:`ContainerRunner.adopt`)."""
        started = _engine_time(str(state.get("StartedAt", "")))
        now = time.monotonic()
        self._paused_total = max(0.0, paused_s)
        if not state.get("Running"):  # it ended while nobody watched: keep what it said, report its exit
            ran = max(0.0, _engine_time(str(state.get("FinishedAt", ""))) - started)
            with self._lock:
                self._started_at, self._ended_at = now - ran, now
            self.logs.append(self._runner.client.api.logs(self.id, stream=False))
            self._exited.set()
            return
        with self._lock:
            self._started_at = now - max(0.0, time.time() - started)
            if state.get("Paused"):
                frozen_for = max(0.0, time.time() - paused_since) if paused_since is not None else 0.0
                self._paused_since = now - frozen_for
        self._log_stream = self._runner.client.api.logs(self.id, stream=True, follow=True)
        self._spawn(self._follow_logs, "logs")
        self._spawn(self._await_exit, "wait")

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=target, name=f"job-{self.plan.job_id}-{what}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _follow_logs(self) -> None:
        try:
            for chunk in self._log_stream:
                self.logs.append(chunk)
        except Exception as exc:  # the stream ends with an error when the container is removed under it
            logger.debug("Log stream of job %s ended: %s", self.plan.job_id, exc)

    def _await_exit(self) -> None:
        try:
            self._runner.client.api.wait(self.id, timeout=None)
        except Exception as exc:  # the engine went away, or the container was removed: either way it has ended
            logger.debug("Waiting for job %s ended: %s", self.plan.job_id, exc)
        with self._lock:
            self._ended_at = time.monotonic()
            if self._paused_since is not None:
                self._paused_total += self._ended_at - self._paused_since
                self._paused_since = None
        self._exited.set()

    def pause(self) -> None:
        """Freeze every process of the job (cgroup freezer): it keeps its memory and VRAM, uses no CPU or GPU."""
        with self._lock:
            if self._paused_since is not None:
                return
            self._require_running("paused")
            with self._runner.engine_calls(f"pause job {self.plan.job_id}"):
                self._container.pause()
            self._paused_since = time.monotonic()

    def unpause(self) -> None:
        with self._lock:
            if self._paused_since is None:
                return
            with self._runner.engine_calls(f"resume job {self.plan.job_id}"):
                self._container.unpause()
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None

    def _require_running(self, what: str) -> None:
        if self._started_at is None or self._exited.is_set():
            raise ContainerStateError(f"job {self.plan.job_id} is not running, so it cannot be {what}")

    def stop(self, grace_s: float = 10.0, reason: str = REASON_STOPPED) -> None:
        """Ask the job to end (SIGTERM), and kill it after ``grace_s``; a paused job is thawed to receive it.

        The first reason given is the one :meth:`wait` reports.
        """
        with self._lock:
            if self._started_at is None:
                return
            if self._reason is None and not self._exited.is_set():
                self._reason = reason
        with self._runner.engine_calls(f"stop job {self.plan.job_id}"):
            self._container.stop(timeout=max(0, math.ceil(grace_s)))
        self._exited.wait(5)

    def wait(self, run_time_limit_s: float | None = None, *, grace_s: float = 10.0) -> JobExit:
        """Block until the job ends, stopping it when it exceeds its run time (paused time not counted) or
        fills its scratch volume; return its exit code and the reason it was stopped, if it was."""
        if self._started_at is None:
            raise ContainerStateError(f"job {self.plan.job_id} was never started")
        next_usage = time.monotonic() + self._runner.usage_poll_interval_s
        while not self._exited.wait(self._runner.poll_interval_s):
            if self.paused:
                continue
            if run_time_limit_s is not None and self.run_time_s >= run_time_limit_s:
                self.stop(grace_s, REASON_RUN_TIME)
                continue
            if time.monotonic() >= next_usage:
                next_usage = time.monotonic() + self._runner.usage_poll_interval_s
                if self._scratch_full():
                    self.stop(grace_s, REASON_OUTPUT_CAP)
        state = self.inspect().get("State") or {}
        with self._lock:
            reason = self._reason
        if reason is None and self._scratch_full():
            reason = REASON_OUTPUT_CAP  # the job ended on its own, most likely on ENOSPC
            with self._lock:
                self._reason = reason
        for thread in self._threads:
            thread.join(timeout=5)
        exit_code = int(state.get("ExitCode", -1))
        logger.info("Job %s exited with %d (%s)", self.plan.job_id, exit_code, reason or "on its own")
        return JobExit(exit_code, reason, bool(state.get("OOMKilled", False)), self.run_time_s)

    def _scratch_full(self) -> bool:
        with self._runner.engine_calls(f"measure the scratch volume of job {self.plan.job_id}"):
            usage = self.scratch.usage()
        return usage.full

    def collect_outputs(
        self, dest: Path, *, max_bytes: int | None = None, max_files: int | None = None
    ) -> list[OutputFile]:
        """Copy the job's output folder to ``dest`` (an empty or new folder) and hash each file.

        Capped at the plan's output limits unless smaller ones are given; works after the job has ended,
        while the scratch still exists (until :meth:`remove`).
        """
        with self._runner.engine_calls(f"copy out the outputs of job {self.plan.job_id}"):
            return self.scratch.collect_outputs(
                dest,
                max_bytes=self.plan.max_output_bytes if max_bytes is None else max_bytes,
                max_files=self.plan.max_output_files if max_files is None else max_files,
            )

    def remove(self) -> None:
        """Remove the container (killing it if it still runs), then the scratch volume and its holder. Idempotent."""
        from docker.errors import NotFound

        if self._removed:
            return
        with self._runner.engine_calls(f"remove the container of job {self.plan.job_id}"):
            with contextlib.suppress(NotFound):
                self._container.remove(force=True)
            if self._log_stream is not None:
                with contextlib.suppress(Exception):
                    self._log_stream.close()
            self.scratch.remove()
        self._removed = True
        for thread in self._threads:
            thread.join(timeout=5)
