"""A provider refuses a job from its spec alone, with a precise reason, before anything is pulled or created.

``check_job`` is pure decision code: it takes the spec as the marketplace sent it and the owner's
limits, and no Docker client or anything else that could pull an image or create a container. So
every refusal asserted here happens before any pull or container can exist; to make that visible,
sockets are unusable in this module (a Docker client would need one) and a fresh interpreter shows
that judging a job imports no Docker SDK.
"""

from __future__ import annotations

import inspect
import itertools
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.protocol.job_refusal import JobRefused, ProviderLimits, check_job, check_limits, format_bytes
from sparecycles.protocol.jobs import GiB, JobSpec, MiB

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "job.json"
DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = f"127.0.0.1:5000/sparecycles/busybox@{DIGEST}"
LIMITS = ProviderLimits(
    max_gpus=1,
    max_cpus=4,
    max_memory_bytes=16 * GiB,
    max_shm_bytes=2 * GiB,
    max_runtime_s=12 * 3600,
    max_output_bytes=10 * GiB,
    allowed_registries=("127.0.0.1:5000", "ghcr.io/acme"),
)


def _no_sockets(*args: object, **kwargs: object) -> socket.socket:
    raise AssertionError("check_job opened a socket: judging a job must not reach Docker or the network")


@pytest.fixture(autouse=True, scope="module")
def _sockets_forbidden() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", _no_sockets)
        yield


def _refusal(raw: dict[str, Any], limits: ProviderLimits = LIMITS) -> JobRefused:
    with pytest.raises(JobRefused) as raised:
        check_job(raw, limits)
    assert str(raised.value).startswith("refused: ")
    assert raised.value.reason == str(raised.value)
    return raised.value


def test_check_job_takes_only_the_spec_and_the_limits() -> None:
    assert list(inspect.signature(check_job).parameters) == ["raw", "limits"]


def test_judging_a_job_loads_no_docker_client() -> None:
    code = (
        "import sys\n"
        "from sparecycles.protocol.job_refusal import JobRefused, ProviderLimits, check_job\n"
        "limits = ProviderLimits(max_gpus=1, max_cpus=1, max_memory_bytes=1 << 30, max_shm_bytes=1 << 26,\n"
        "                        max_runtime_s=60, max_output_bytes=1 << 20)\n"
        f"try:\n    check_job({{'image': {IMAGE!r}, 'privileged': True}}, limits)\n"
        "except JobRefused as exc:\n    print(exc)\n"
        "print(sorted(m for m in ('docker', 'requests', 'PySide6', 'sparecycles.agent') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["refused: job asks for privileged mode", "[]"]


# --- 1. Docker options a spec must never carry -------------------------------------------------------

ASKS = "refused: job asks "
HOSTILE: list[tuple[dict[str, Any], str]] = [
    ({"privileged": True}, ASKS + "for privileged mode"),
    ({"network_mode": "host"}, ASKS + "for host network"),
    ({"network": "HOST"}, ASKS + "for host network"),
    ({"network_mode": "container:db"}, ASKS + "to share another container's network (network_mode=container:db)"),
    ({"network_mode": "bridge"},
     ASKS + "for network bridge (network_mode); a job lists the host:port it needs in egress"),
    ({"pid_mode": "host"}, ASKS + "for the host PID namespace"),
    ({"pid": "container:abc"}, ASKS + "for a shared PID namespace (pid=container:abc)"),
    ({"ipc_mode": "host"}, ASKS + "for the host IPC namespace"),
    ({"ipc": "shareable"}, ASKS + "for a shared IPC namespace (ipc=shareable)"),
    ({"uts_mode": "host"}, ASKS + "for the host UTS namespace"),
    ({"cgroupns_mode": "host"}, ASKS + "for the host cgroup namespace"),
    ({"devices": ["/dev/nvidia0:/dev/nvidia0:rwm"]}, ASKS + "for device access (devices)"),
    ({"device_requests": [{"count": -1, "capabilities": [["gpu"]]}]}, ASKS + "for device access (device_requests)"),
    ({"device_cgroup_rules": ["c 195:* rwm"]}, ASKS + "for device access (device_cgroup_rules)"),
    ({"volumes": {"/": {"bind": "/host", "mode": "rw"}}}, ASKS + "for a bind mount / volume (volumes)"),
    ({"mounts": [{"type": "bind", "source": "/", "target": "/host"}]}, ASKS + "for a bind mount / volume (mounts)"),
    ({"binds": ["/var/run/docker.sock:/var/run/docker.sock"]}, ASKS + "for a bind mount / volume (binds)"),
    ({"volumes_from": ["other"]}, ASKS + "for a bind mount / volume (volumes_from)"),
    ({"tmpfs": {"/run": "exec"}}, ASKS + "for its own tmpfs mounts (tmpfs)"),
    ({"cap_add": ["SYS_ADMIN"]}, ASKS + "for added capabilities (SYS_ADMIN)"),
    ({"cap_add": "NET_RAW"}, ASKS + "for added capabilities (NET_RAW)"),
    ({"capabilities": ["SYS_PTRACE", "NET_ADMIN"]}, ASKS + "for added capabilities (SYS_PTRACE, NET_ADMIN)"),
    ({"security_opt": ["seccomp=unconfined"]}, ASKS + "to override security options (seccomp=unconfined)"),
    ({"security_opt": ["apparmor=unconfined", "no-new-privileges=false"]},
     ASKS + "to override security options (apparmor=unconfined, no-new-privileges=false)"),
    ({"runtime": "runc"}, ASKS + "for a different runtime (runc)"),
    ({"runtime": "nvidia"}, ASKS + "for a different runtime (nvidia)"),
    ({"userns_mode": "host"}, ASKS + "to leave the user namespace (userns_mode=host)"),
    ({"user": "root"}, ASKS + "to run as root (user=root)"),
    ({"user": "0"}, ASKS + "to run as root (user=0)"),
    ({"user": 0}, ASKS + "to run as root (user=0)"),
    ({"user": "0:0"}, ASKS + "to run as root (user=0:0)"),
    ({"user": "1000"}, ASKS + "to choose its user (user=1000); jobs run as the provider's unprivileged user"),
    ({"sysctls": {"net.ipv4.ip_forward": "1"}}, ASKS + "to set kernel parameters (sysctls: net.ipv4.ip_forward)"),
    ({"group_add": ["docker"]}, ASKS + "for extra groups (group_add: docker)"),
    ({"cgroup_parent": "/"}, ASKS + "for a different cgroup parent (cgroup_parent=/)"),
    ({"oom_kill_disable": True}, ASKS + "to disable the OOM killer"),
    ({"pids_limit": -1}, ASKS + "to change the process limit (pids_limit=-1)"),
    ({"ulimits": [{"name": "nofile", "soft": 1048576}]}, ASKS + "to change resource limits (ulimits)"),
    ({"read_only": False}, ASKS + "for a writable root filesystem (read_only=false)"),
    ({"extra_hosts": {"marketplace": "10.0.0.1"}}, ASKS + "to add host-name entries (extra_hosts)"),
    # The Engine API's PascalCase, nested under HostConfig, and the CLI's kebab-case are caught too.
    ({"Privileged": True}, ASKS + "for privileged mode"),
    ({"HostConfig": {"NetworkMode": "host"}}, ASKS + "for host network"),
    ({"HostConfig": {"Binds": ["/:/host"]}}, ASKS + "for a bind mount / volume (HostConfig.Binds)"),
    ({"host_config": {"CapAdd": ["SYS_ADMIN"]}}, ASKS + "for added capabilities (SYS_ADMIN)"),
    ({"cap-add": ["SYS_ADMIN"]}, ASKS + "for added capabilities (SYS_ADMIN)"),
    ({"security-opt": ["seccomp=unconfined"]}, ASKS + "to override security options (seccomp=unconfined)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "reason"), HOSTILE, ids=[f"{i}-{min(extra)}" for i, (extra, _) in enumerate(HOSTILE)]
)
def test_a_job_asking_for_more_is_refused_with_the_reason(extra: dict[str, Any], reason: str) -> None:
    refusal = _refusal({"image": IMAGE, **extra})
    assert str(refusal) == reason
    assert refusal.field is not None
    assert refusal.field.split(".")[0] in extra


@pytest.mark.parametrize(
    "extra",
    [{"privileged": False}, {"network_mode": "none"}, {"ipc_mode": "private"}, {"cap_add": []},
     {"read_only": True}, {"cap_drop": ["ALL"]}, {"user": ""}],
)  # fmt: skip
def test_harmless_docker_options_are_still_unknown_fields(extra: dict[str, Any]) -> None:
    (key,) = extra
    assert str(_refusal({"image": IMAGE, **extra})).startswith(f"refused: unknown field '{key}';")


# --- 2. and 3. unknown fields and runtime-steering environment, by name --------------------------------


def test_an_unknown_field_is_refused_by_name() -> None:
    refusal = _refusal({"image": IMAGE, "gpu_count": 1})
    assert str(refusal).startswith("refused: unknown field 'gpu_count'; a job spec has: image, entrypoint, command")
    assert refusal.field == "gpu_count"


def test_all_unknown_fields_are_named_in_order() -> None:
    assert str(_refusal({"zeta": 1, "image": IMAGE, "alpha": 2})).startswith("refused: unknown fields 'alpha', 'zeta';")


def test_an_unknown_field_inside_an_input_is_refused_by_name() -> None:
    item = {"path": "a", "url": "https://example.com/a", "sha256": "a" * 64, "size_bytes": 1, "chmod": "4755"}
    assert str(_refusal({"image": IMAGE, "inputs": [item]})) == "refused: unknown field 'inputs.0.chmod'"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_* variables choose GPUs and driver features on the host"),
        ("NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_* variables choose GPUs and driver features on the host"),
        ("NVIDIA_REQUIRE_CUDA", "NVIDIA_* variables choose GPUs and driver features on the host"),
        ("NVIDIA_MIG_MONITOR_DEVICES", "NVIDIA_* variables choose GPUs and driver features on the host"),
        ("Nvidia_Visible_Devices", "NVIDIA_* variables choose GPUs and driver features on the host"),
        ("CUDA_VERSION", "the NVIDIA runtime treats a job with CUDA_VERSION as a legacy image"),
    ],
)
def test_runtime_steering_environment_is_refused_by_name(name: str, why: str) -> None:
    refusal = _refusal({"image": IMAGE, "gpus": 1, "env": {"HOME": "/tmp", name: "all"}})
    assert str(refusal).startswith(f"refused: job sets {name}, which steers the GPU runtime on the host ({why}")
    assert refusal.field == f"env.{name}"


@given(name=st.from_regex(r"[Nn][Vv][Ii][Dd][Ii][Aa]_[A-Za-z0-9_]{0,20}", fullmatch=True), value=st.text(max_size=20))
def test_any_nvidia_variable_in_any_case_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(JobRefused, match=f"^refused: job sets {name}, which steers the GPU runtime"):
        check_job({"image": IMAGE, "env": {name: value}}, LIMITS)


def test_variables_read_only_inside_the_container_are_allowed() -> None:
    env = {"CUDA_VISIBLE_DEVICES": "0", "LD_PRELOAD": "/opt/x.so", "CUDA_HOME": "/usr/local/cuda"}
    assert check_job({"image": IMAGE, "gpus": 1, "env": env}, LIMITS).env == env


# --- 4. the spec's own validation, naming the field ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"image": None}, "refused: image = None: Input should be a valid string"),
        ({"image": "busybox:1.36"}, "refused: image: 'busybox:1.36' names the image by tag (:1.36); tags can change, "
                                    "so name it by digest, like registry.example.com/team/app@sha256:<64 hex digits>"),
        ({"gpus": "all"}, "refused: gpus = 'all': Input should be a valid integer (allowed: 0 to 16)"),
        ({"memory_bytes": 1}, "refused: memory_bytes = 1: Input should be greater than or equal to 16777216 "
                              "(allowed: 16 MiB to 1 TiB)"),
        ({"inputs": [{"path": "../../etc/cron.d/x", "url": "https://e.com/x", "sha256": "a" * 64, "size_bytes": 1}]},
         "refused: inputs.0.path = '../../etc/cron.d/x': must stay inside the input folder /job/input: "
         "'..' is not allowed"),
        ({"min_vram_bytes": GiB}, "refused: min_vram_bytes needs gpus of 1 or more (a CPU-only job has no GPU memory)"),
    ],
)  # fmt: skip
def test_invalid_values_are_refused_naming_the_field(extra: dict[str, Any], reason: str) -> None:
    assert str(_refusal({"image": IMAGE, **extra})) == reason


def test_a_missing_image_is_named() -> None:
    refusal = _refusal({"command": ["true"]})
    assert str(refusal) == "refused: image is missing"
    assert refusal.field == "image"


@pytest.mark.parametrize("raw", [["image"], "image", None])
def test_a_spec_that_is_not_an_object_is_refused(raw: Any) -> None:
    assert str(_refusal(raw)).startswith("refused: a job spec must be a JSON object")


def test_a_huge_value_is_shortened_in_the_reason() -> None:
    reason = str(_refusal({"image": IMAGE, "output_dir": "x" * 10_000}))
    assert len(reason) < 300


# --- 5. the provider's limits, registries and egress ---------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"gpus": 2}, "refused: job asks for 2 GPUs, this provider allows at most 1"),
        ({"cpus": 8}, "refused: job asks for 8 CPUs, this provider allows at most 4"),
        ({"cpus": 4.5}, "refused: job asks for 4.5 CPUs, this provider allows at most 4"),
        ({"memory_bytes": 64 * GiB}, "refused: job asks for 64 GiB memory, this provider allows at most 16 GiB"),
        ({"shm_bytes": 3 * GiB, "memory_bytes": 8 * GiB},
         "refused: job asks for 3 GiB shared memory, this provider allows at most 2 GiB"),
        ({"max_runtime_s": 2 * 86400}, "refused: job asks for a run time of 2d, this provider allows at most 12h"),
        ({"max_runtime_s": 12 * 3600 + 90},
         "refused: job asks for a run time of 12h1m30s, this provider allows at most 12h"),
        ({"max_output_bytes": 100 * GiB},
         "refused: job asks for 100 GiB of output, this provider allows at most 10 GiB"),
        ({"gpus": 1, "min_vram_bytes": 24 * GiB},
         "refused: job needs 24 GiB of GPU memory, this provider's GPUs have 8 GiB"),
    ],
)  # fmt: skip
def test_a_job_above_the_providers_limits_is_refused(extra: dict[str, Any], reason: str) -> None:
    limits = ProviderLimits(**{**_limits_kwargs(), "gpu_vram_bytes": 8 * GiB})
    refusal = _refusal({"image": IMAGE, **extra}, limits)
    assert str(refusal) == reason
    assert refusal.field in extra


def _limits_kwargs() -> dict[str, Any]:
    return {name: getattr(LIMITS, name) for name in LIMITS.__dataclass_fields__}


def test_a_gpu_job_on_a_provider_without_gpus() -> None:
    limits = ProviderLimits(**{**_limits_kwargs(), "max_gpus": 0})
    assert (
        str(_refusal({"image": IMAGE, "gpus": 1}, limits))
        == "refused: job asks for 1 GPU, this provider offers no GPUs"
    )


def test_jobs_exactly_at_the_limits_pass() -> None:
    raw = {"image": IMAGE, "gpus": 1, "cpus": 4, "memory_bytes": 16 * GiB, "shm_bytes": 2 * GiB,
           "max_runtime_s": 12 * 3600, "max_output_bytes": 10 * GiB}  # fmt: skip
    assert check_job(raw, LIMITS).gpus == 1


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (f"busybox@{DIGEST}", "refused: image from registry docker.io, not in your allowed registries "
                              "(127.0.0.1:5000, ghcr.io/acme)"),
        (f"localhost:5000/x@{DIGEST}", "refused: image from registry localhost:5000, not in your allowed registries "
                                       "(127.0.0.1:5000, ghcr.io/acme)"),
        (f"ghcr.io/evil/x@{DIGEST}", "refused: image ghcr.io/evil/x is outside your allowed registries "
                                     "(127.0.0.1:5000, ghcr.io/acme)"),
        (f"ghcr.io/acmecorp/x@{DIGEST}", "refused: image ghcr.io/acmecorp/x is outside your allowed registries "
                                         "(127.0.0.1:5000, ghcr.io/acme)"),
    ],
)  # fmt: skip
def test_an_image_from_a_registry_outside_the_allow_list_is_refused(image: str, reason: str) -> None:
    refusal = _refusal({"image": image})
    assert str(refusal) == reason
    assert refusal.field == "image"


@pytest.mark.parametrize(
    "image",
    [f"127.0.0.1:5000/a/b@{DIGEST}", f"ghcr.io/acme/trainer@{DIGEST}", f"GHCR.io/acme/team/x@{DIGEST}"],
)
def test_an_image_from_an_allowed_registry_passes(image: str) -> None:
    assert check_job({"image": image}, LIMITS).image == image


def test_no_registries_allowed_means_none() -> None:
    limits = ProviderLimits(**{**_limits_kwargs(), "allowed_registries": ()})
    reason = "refused: image from registry 127.0.0.1:5000, not in your allowed registries (none)"
    assert str(_refusal({"image": IMAGE}, limits)) == reason


def test_docker_hub_entries_match_implicit_references() -> None:
    limits = ProviderLimits(**{**_limits_kwargs(), "allowed_registries": ("index.docker.io/library",)})
    assert check_job({"image": f"busybox@{DIGEST}"}, limits).image_reference.repository == "library/busybox"
    assert "outside your allowed registries" in str(_refusal({"image": f"acme/x@{DIGEST}"}, limits))


def test_egress_is_refused_when_the_provider_never_allows_it() -> None:
    refusal = _refusal({"image": IMAGE, "egress": ["example.com:443", "pypi.org:443"]})
    assert str(refusal) == (
        "refused: job needs network egress (example.com:443, pypi.org:443) and this provider does not allow egress"
    )
    assert refusal.field == "egress"


def test_egress_is_allowed_when_the_owner_allows_it() -> None:
    limits = ProviderLimits(**{**_limits_kwargs(), "egress_allowed": True})
    assert check_job({"image": IMAGE, "egress": ["example.com:443"]}, limits).egress == ["example.com:443"]


@pytest.mark.parametrize(
    "entry", ["192.168.1.1:80", "169.254.169.254:80", "localhost:8080", "[::1]:443", "10.1.2.3:22"]
)
def test_egress_into_the_providers_own_network_is_refused(entry: str) -> None:
    limits = ProviderLimits(**{**_limits_kwargs(), "egress_allowed": True})
    reason = (
        f"refused: job asks for network egress to {entry}, on the provider's own network or loopback; "
        "only public hosts may be reached"
    )
    assert str(_refusal({"image": IMAGE, "egress": [entry]}, limits)) == reason
    opened = ProviderLimits(**{**_limits_kwargs(), "egress_allowed": True, "private_networks_allowed": True})
    assert check_job({"image": IMAGE, "egress": [entry]}, opened).egress == [entry]


def test_inputs_from_the_providers_own_network_are_refused() -> None:
    item = {"path": "w.bin", "url": "http://192.168.0.10:8000/w.bin", "sha256": "a" * 64, "size_bytes": 1}
    refusal = _refusal({"image": IMAGE, "inputs": [item]})
    assert str(refusal) == (
        "refused: input w.bin is fetched from 192.168.0.10, on the provider's own network or loopback; "
        "only public hosts may be reached"
    )
    assert refusal.field == "inputs.0.url"
    opened = ProviderLimits(**{**_limits_kwargs(), "private_networks_allowed": True})
    assert check_job({"image": IMAGE, "inputs": [item]}, opened).inputs[0].url == item["url"]


def test_check_limits_judges_a_spec_already_validated() -> None:
    spec = JobSpec.model_validate({"image": IMAGE, "memory_bytes": 32 * GiB})
    with pytest.raises(JobRefused, match=r"^refused: job asks for 32 GiB memory"):
        check_limits(spec, LIMITS)


# --- order: one reason, always the same ------------------------------------------------------------------

LAYERED: list[tuple[str, Any, str]] = [
    ("privileged", True, "refused: job asks for privileged mode"),
    ("cap_add", ["SYS_ADMIN"], "refused: job asks for added capabilities (SYS_ADMIN)"),
    ("foo", 1, "refused: unknown field 'foo'"),
    ("env", {"NVIDIA_VISIBLE_DEVICES": "all"}, "refused: job sets NVIDIA_VISIBLE_DEVICES"),
    ("cpus", "many", "refused: cpus = 'many'"),
    ("memory_bytes", 64 * GiB, "refused: job asks for 64 GiB memory"),
    ("image", f"docker.io/x/y@{DIGEST}", "refused: image from registry docker.io"),
    ("egress", ["example.com:443"], "refused: job needs network egress"),
]


def test_the_first_problem_in_a_fixed_order_gives_the_reason() -> None:
    for index, (_, _, reason) in enumerate(LAYERED):
        raw: dict[str, Any] = {"image": IMAGE} | {key: value for key, value, _ in LAYERED[index:]}
        assert str(_refusal(raw)).startswith(reason)


def test_the_reason_does_not_depend_on_the_order_of_the_keys() -> None:
    items = [("image", IMAGE), ("runtime", "runc"), ("devices", ["/dev/sda"]), ("volumes", ["/:/h"]), ("zzz", 1)]
    reasons = {str(_refusal(dict(order))) for order in itertools.permutations(items)}
    assert reasons == {"refused: job asks for device access (devices)"}


# --- the owner's limits themselves, and a runnable example ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"max_memory_bytes": -1}, ValueError),
        ({"max_cpus": float("nan")}, ValueError),
        ({"allowed_registries": ("https://ghcr.io",)}, ValueError),
        ({"allowed_registries": ("ghcr.io/acme/",)}, ValueError),
        ({"allowed_registries": "ghcr.io"}, TypeError),
    ],
)
def test_malformed_limits_are_refused(change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=r"ProviderLimits|registry|host"):
        ProviderLimits(**{**_limits_kwargs(), **change})


def test_sizes_are_shown_in_binary_units() -> None:
    assert [format_bytes(n) for n in (0, 512, 1536, 64 * MiB, 16 * GiB, 3 * GiB // 2, 2048 * GiB)] == [
        "0 B", "512 B", "1.5 KiB", "64 MiB", "16 GiB", "1.5 GiB", "2 TiB"
    ]  # fmt: skip


def test_the_example_job_passes_a_small_cpu_only_provider() -> None:
    raw = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    limits = ProviderLimits(
        max_gpus=0,
        max_cpus=1,
        max_memory_bytes=512 * MiB,
        max_shm_bytes=64 * MiB,
        max_runtime_s=600,
        max_output_bytes=16 * MiB,
        allowed_registries=("docker.io/library",),
    )
    spec = check_job(raw, limits)
    assert spec.gpus == 0
    assert spec.image_reference.canonical.startswith("docker.io/library/busybox@sha256:")
    assert spec.inputs[0].content() == b"Hello from SpareCycles!\n"
    assert any("/job/input/message.txt" in arg for arg in spec.command or [])
    assert spec.egress == []
