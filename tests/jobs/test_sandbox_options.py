"""The sandbox as data: every security default is in the options, whatever the plan says."""

from __future__ import annotations

from typing import Any

import pytest

from sparecycles.agent.jobs.errors import InvalidPlanError
from sparecycles.agent.jobs.sandbox import (
    HOLDER_INPUT_DIR,
    HOLDER_OUTPUT_DIR,
    LABEL_AGENT,
    LABEL_JOB,
    LABEL_ROLE,
    MIB,
    PAGE_BYTES,
    RUNTIME_ENVIRONMENT,
    ContainerPlan,
    ScratchVolumes,
    container_options,
    holder_options,
    parse_image_reference,
)

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"127.0.0.1:5000/studio/render@{DIGEST}"
GPU_A = "GPU-12345678-1234-1234-1234-123456789abc"
GPU_B = "GPU-87654321-4321-4321-4321-cba987654321"
VOLUMES = ScratchVolumes("sparecycles-in-j1-abc", "sparecycles-out-j1-abc")


def plan(**overrides: Any) -> ContainerPlan:
    fields: dict[str, Any] = {"job_id": "j1", "image": IMAGE, "command": ("sh", "-c", "echo hi")}
    return ContainerPlan(**(fields | overrides))


def options(**overrides: Any) -> dict[str, Any]:
    return container_options(plan(**overrides), VOLUMES, agent_id="agent-7")


def test_no_network_read_only_root_no_capabilities_no_new_privileges() -> None:
    got = options()
    assert got["network_mode"] == "none"
    assert got["network_disabled"] is True
    assert got["read_only"] is True
    assert got["cap_drop"] == ["ALL"]
    assert "cap_add" not in got
    assert got["security_opt"] == ["no-new-privileges"]
    assert got["privileged"] is False
    assert got["ipc_mode"] == "private"
    assert got["runtime"] == "runc"
    assert got["init"] is True


def test_limits_come_from_the_plan_and_swap_is_off() -> None:
    got = options(
        cpus=1.5, memory_bytes=512 * MIB, shm_bytes=32 * MIB, pids_limit=64, tmp_size_bytes=8 * MIB, max_output_bytes=0
    )
    assert got["nano_cpus"] == 1_500_000_000
    assert got["mem_limit"] == 512 * MIB + PAGE_BYTES  # the output volume's one page: see the next test
    assert got["memswap_limit"] == got["mem_limit"]
    assert got["shm_size"] == 32 * MIB
    assert got["pids_limit"] == 64
    assert got["tmpfs"] == {"/tmp": f"size={8 * MIB},mode=1777,noexec,nosuid,nodev"}
    assert got["log_config"]["config"]["max-size"] == "10m"


def test_memory_limit_makes_room_for_the_output_volume() -> None:
    # tmpfs pages count against the writer's memory cgroup: without this, outputs would get the job OOM-killed.
    got = options(memory_bytes=512 * MIB, max_output_bytes=100 * MIB + 1)
    assert got["mem_limit"] == 512 * MIB + 100 * MIB + PAGE_BYTES
    assert got["memswap_limit"] == got["mem_limit"]


def test_non_root_user_by_default() -> None:
    assert options()["user"] == "65534:65534"
    assert options(user="1000:1000")["user"] == "1000:1000"


@pytest.mark.parametrize("user", ["0:0", "1000:0", "0:1000", "root", "nobody:nogroup", "1000"])
def test_root_or_named_users_are_refused(user: str) -> None:
    with pytest.raises(InvalidPlanError):
        plan(user=user)


def test_only_the_jobs_own_volumes_are_mounted_inputs_read_only() -> None:
    got = options(input_dir="/data/in", output_dir="/data/out")
    assert got["mounts"] == [
        {"Target": "/data/in", "Source": VOLUMES.input_volume, "Type": "volume", "ReadOnly": True,
         "VolumeOptions": {"NoCopy": True}},
        {"Target": "/data/out", "Source": VOLUMES.output_volume, "Type": "volume", "ReadOnly": False,
         "VolumeOptions": {"NoCopy": True}},
    ]  # fmt: skip
    for forbidden in ("volumes", "binds", "volumes_from", "devices", "pid_mode", "userns_mode", "cap_add"):
        assert forbidden not in got


def test_labels_tie_the_container_to_job_and_agent() -> None:
    labels = options()["labels"]
    assert labels[LABEL_JOB] == "j1"
    assert labels[LABEL_AGENT] == "agent-7"
    assert labels[LABEL_ROLE] == "job"


def test_environment_is_the_plans_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_OF_THE_AGENT", "do-not-leak")
    got = options(env={"EPOCHS": "3"})
    assert got["environment"] == {"EPOCHS": "3", "NVIDIA_VISIBLE_DEVICES": "void", **RUNTIME_ENVIRONMENT}


def test_what_the_gpu_runtime_reads_is_pinned_whatever_the_image_sets() -> None:
    """An image's ENV reaches the host's NVIDIA hook; the container's own environment overrides it."""
    got = options(gpu_uuids=(GPU_A,))["environment"]
    assert got["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"  # not "all": no graphics or display libraries
    assert got["NVIDIA_IMEX_CHANNELS"] == ""
    assert {got[name] for name in ("NVIDIA_GDS", "NVIDIA_GDRCOPY", "NVIDIA_MOFED", "NVIDIA_NVSWITCH")} == {"disabled"}


def test_cpu_job_gets_no_gpu_at_all() -> None:
    got = options()
    assert "device_requests" not in got
    assert got["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_gpus_by_uuid_through_device_requests() -> None:
    got = options(gpu_uuids=(GPU_A, GPU_B))
    assert got["device_requests"] == [{"driver": "nvidia", "device_ids": [GPU_A, GPU_B], "capabilities": [["gpu"]]}]
    assert got["environment"]["NVIDIA_VISIBLE_DEVICES"] == f"{GPU_A},{GPU_B}"


def test_gpus_by_uuid_through_cdi_where_the_engine_has_it() -> None:
    got = container_options(plan(gpu_uuids=(GPU_A,)), VOLUMES, agent_id="a", gpu_mode="cdi")
    assert got["device_requests"] == [
        {"driver": "cdi", "device_ids": [f"nvidia.com/gpu={GPU_A}"], "capabilities": [["gpu"]]}
    ]


@pytest.mark.parametrize("name", ["NVIDIA_VISIBLE_DEVICES", "nvidia_driver_capabilities", "CUDA_VERSION"])
def test_variables_that_steer_the_gpu_runtime_are_refused(name: str) -> None:
    with pytest.raises(InvalidPlanError, match=name):
        plan(env={name: "all"})


@pytest.mark.parametrize("gpu", ["0", "all", "GPU-1234", "gpu-12345678-1234-1234-1234-123456789abc x"])
def test_gpus_must_be_uuids(gpu: str) -> None:
    with pytest.raises(InvalidPlanError):
        plan(gpu_uuids=(gpu,))


def test_egress_network_by_name_only() -> None:
    got = options(network="sparecycles-egress-j1")
    assert got["network_mode"] == "sparecycles-egress-j1"
    assert got["network_disabled"] is False


@pytest.mark.parametrize("network", ["host", "bridge", "default", "none", "container:abc"])
def test_host_and_default_networks_are_refused(network: str) -> None:
    with pytest.raises(InvalidPlanError):
        plan(network=network)


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:latest",
        "busybox@" + DIGEST,  # no registry: write it in full
        "127.0.0.1:5000/studio/render:v1",
        "127.0.0.1:5000/studio/render@sha256:abc",
        "127.0.0.1:5000/Studio/render@" + DIGEST,
        "127.0.0.1:5000/studio/render:v1@" + DIGEST,
    ],
)
def test_images_must_be_pinned_by_digest_in_a_named_registry(image: str) -> None:
    with pytest.raises(InvalidPlanError):
        plan(image=image)


def test_image_reference_parts_and_docker_hub_spellings() -> None:
    local = parse_image_reference(IMAGE)
    assert (local.registry, local.repository, local.digest) == ("127.0.0.1:5000", "studio/render", DIGEST)
    assert local.repo_digests == {IMAGE}
    hub = parse_image_reference(f"docker.io/library/busybox@{DIGEST}")
    assert f"busybox@{DIGEST}" in hub.repo_digests
    assert parse_image_reference(f"[::1]:5000/x@{DIGEST}").registry == "[::1]:5000"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_dir", "job/input"),
        ("input_dir", "/job/../etc"),
        ("output_dir", "/"),
        ("output_dir", "/proc/x"),
        ("output_dir", "/job/input/out"),
        ("input_dir", "/job/output/in"),
        ("working_dir", "relative"),
        ("job_id", "../x"),
        ("cpus", 0),
        ("memory_bytes", 1024),
        ("pids_limit", 0),
        ("max_output_bytes", -1),
        ("command", ()),
    ],
)
def test_plans_that_break_a_rule_are_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidPlanError):
        plan(**{field: value})


def test_holder_is_hardened_too_and_mounts_both_volumes() -> None:
    holder_image = f"127.0.0.1:5000/sparecycles/holder@{DIGEST}"
    got = holder_options(plan(), VOLUMES, agent_id="agent-7", holder_image=holder_image)
    assert got["image"] == holder_image
    assert got["network_mode"] == "none"
    assert got["read_only"] is True
    assert got["cap_drop"] == ["ALL"]
    assert got["security_opt"] == ["no-new-privileges"]
    assert got["user"] == "65534:65534"
    assert got["labels"][LABEL_ROLE] == "holder"
    assert [(m["Source"], m["Target"]) for m in got["mounts"]] == [
        (VOLUMES.input_volume, HOLDER_INPUT_DIR),
        (VOLUMES.output_volume, HOLDER_OUTPUT_DIR),
    ]
    assert got["pids_limit"] <= 8
    assert got["mem_limit"] == got["memswap_limit"]
