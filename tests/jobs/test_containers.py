"""The job runtime against the real Docker engine: sandbox, lifecycle, caps, GPUs and pulls by digest."""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import secrets
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.jobs.containers import (
    REASON_OUTPUT_CAP,
    REASON_RUN_TIME,
    REASON_STOPPED,
    TOOLKIT_MESSAGE,
    ContainerRunner,
    LogBuffer,
    PullProgress,
    connect,
)
from sparecycles.agent.jobs.errors import (
    ContainerStateError,
    EngineUnreachableError,
    GpuToolkitMissingError,
    ImageDigestMismatchError,
    ImageError,
    OutputCapExceededError,
)
from sparecycles.agent.jobs.sandbox import KIB, MIB, ContainerPlan

from .conftest import LocalRegistry, remove_local_image

pytestmark = pytest.mark.docker

BUSY_LOOP = ("sh", "-c", "while :; do :; done")
CDI_SPECS = ("nvidia.yaml", "nvidia.json")


def plan(image: str, command: tuple[str, ...], **overrides: Any) -> ContainerPlan:
    fields: dict[str, Any] = {
        "job_id": "job1",
        "image": image,
        "command": command,
        "cpus": 0.5,
        "memory_bytes": 64 * MIB,
        "pids_limit": 32,
        "max_output_bytes": 1 * MIB,
    }
    return ContainerPlan(**(fields | overrides))  # fmt: skip


def test_without_a_holder_image_the_jobs_own_image_holds_its_scratch(
    docker_client: Any, busybox_image: str, docker_exec_works: None, tmp_path: Path
) -> None:
    runner = ContainerRunner(docker_client, agent_id=f"test-{secrets.token_hex(4)}", poll_interval_s=0.05)
    try:
        runner.pull(busybox_image)
        script = "echo 42 > /job/output/answer.txt"
        with runner.create(plan(busybox_image, ("sh", "-c", script))) as job:
            job.start()
            assert job.wait(run_time_limit_s=30).exit_code == 0, job.logs.text()
            (output,) = job.collect_outputs(tmp_path / "out")
        assert output.path == "answer.txt"
        assert output.sha256 == hashlib.sha256(b"42\n").hexdigest()
    finally:
        leftovers = runner.find_labelled()
        runner.remove_leftovers()
    assert not leftovers


def cpu_time_ns(job: Any) -> int:
    stats = job._runner.client.api.stats(job.id, stream=False, one_shot=True)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])


def test_cpu_job_end_to_end_outputs_come_back_with_their_sha256(
    runner: ContainerRunner, pulled_image: str, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    data = os.urandom(200_000)
    (inputs / "data.bin").write_bytes(data)
    (inputs / "sub" / "note.txt").write_text("hello from the studio\n")
    script = (
        "set -e; id -u > /job/output/uid.txt; "
        "sha256sum /job/input/data.bin | cut -d' ' -f1 > /job/output/input.sha256; "
        "mkdir /job/output/sub; tr a-z A-Z < /job/input/sub/note.txt > /job/output/sub/NOTE.txt; "
        "head -c 300000 /dev/urandom > /job/output/random.bin; "
        "(touch /rootfs 2>/dev/null && echo writable || echo read-only) > /job/output/rootfs.txt; "
        "(touch /job/input/x 2>/dev/null && echo writable || echo read-only) > /job/output/inputs.txt; "
        "ls /sys/class/net > /job/output/net.txt; echo done"
    )
    with runner.create(plan(pulled_image, ("sh", "-c", script)), inputs) as job:
        job.start()
        ended = job.wait(run_time_limit_s=30)
        assert (ended.exit_code, ended.reason, ended.oom_killed) == (0, None, False), job.logs.text()
        assert job.logs.text() == "done\n"
        outputs = job.collect_outputs(tmp_path / "out")
    out = tmp_path / "out"
    assert [o.path for o in outputs] == [
        "input.sha256", "inputs.txt", "net.txt", "random.bin", "rootfs.txt", "sub/NOTE.txt", "uid.txt"
    ]  # fmt: skip
    for output in outputs:
        content = (out / output.path).read_bytes()
        assert output.sha256 == hashlib.sha256(content).hexdigest()
        assert output.size_bytes == len(content)
    assert (out / "input.sha256").read_text().strip() == hashlib.sha256(data).hexdigest()
    assert (out / "sub" / "NOTE.txt").read_text() == "HELLO FROM THE STUDIO\n"
    assert (out / "uid.txt").read_text() == "65534\n"
    assert (out / "rootfs.txt").read_text() == "read-only\n"
    assert (out / "inputs.txt").read_text() == "read-only\n"
    assert (out / "net.txt").read_text() == "lo\n"
    assert (out / "random.bin").stat().st_size == 300_000


def test_running_job_container_is_sandboxed(runner: ContainerRunner, pulled_image: str) -> None:
    with runner.create(plan(pulled_image, ("sleep", "30"), pids_limit=48, memory_bytes=96 * MIB)) as job:
        job.start()
        info = job.inspect()
        assert info["State"]["Running"] is True
        host = info["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert info["NetworkSettings"]["Networks"] == {}
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert not host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["Privileged"] is False
        assert host["PidsLimit"] == 48
        assert host["Memory"] == 96 * MIB + 1 * MIB  # memory plus the output volume, whose pages it is charged
        assert host["MemorySwap"] == host["Memory"]
        assert host["NanoCpus"] == 500_000_000
        assert host["Runtime"] == "runc"
        assert not host["Binds"]
        assert not host["Devices"]
        assert not host.get("DeviceRequests")
        assert host["Tmpfs"] == {"/tmp": f"size={256 * MIB},mode=1777,noexec,nosuid,nodev"}
        user = info["Config"]["User"]
        assert user == "65534:65534"
        assert not user.startswith("0:")
        volumes = job.scratch.volumes
        mounts = sorted((m["Type"], m["Name"], m["Destination"], m["RW"]) for m in info["Mounts"])
        assert mounts == [
            ("volume", volumes.input_volume, "/job/input", False),
            ("volume", volumes.output_volume, "/job/output", True),
        ]
        assert info["Config"]["Labels"]["dev.sparecycles.job"] == "job1"
        assert info["Config"]["Labels"]["dev.sparecycles.agent"] == runner.agent_id
        assert info["Config"]["Env"].count("NVIDIA_VISIBLE_DEVICES=void") == 1
        assert info["Config"]["Env"].count("NVIDIA_DRIVER_CAPABILITIES=compute,utility") == 1
        job.stop(grace_s=0)


def has_gpu_runtime(docker_client: Any) -> bool:
    """The engine can hand out NVIDIA GPUs somehow: the nvidia runtime, its hook on PATH, or a CDI spec."""
    info = docker_client.info()
    cdi = any(Path(folder, name).exists() for folder in info.get("CDISpecDirs") or [] for name in CDI_SPECS)
    return "nvidia" in (info.get("Runtimes") or {}) or bool(shutil.which("nvidia-container-runtime-hook")) or cdi


def test_gpu_job_without_the_toolkit_says_so_and_leaves_nothing(
    docker_client: Any, runner: ContainerRunner, pulled_image: str, caplog: pytest.LogCaptureFixture
) -> None:
    if has_gpu_runtime(docker_client):
        pytest.skip("this engine has the NVIDIA runtime or CDI, so the toolkit-missing error cannot happen here")
    gpu_plan = plan(pulled_image, ("true",), gpu_uuids=("GPU-12345678-1234-1234-1234-123456789abc",))
    caplog.set_level(logging.INFO, logger="sparecycles.agent.jobs")
    with runner.create(gpu_plan) as job, pytest.raises(GpuToolkitMissingError) as raised:
        job.start()
    assert str(raised.value) == TOOLKIT_MESSAGE
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert "could not select device driver" not in str(raised.value)
    assert 'could not select device driver "nvidia" with capabilities: [[gpu]]' in caplog.text
    assert runner.find_labelled() == []


def test_pause_freezes_a_busy_job_and_unpause_resumes_it(runner: ContainerRunner, pulled_image: str) -> None:
    with runner.create(plan(pulled_image, BUSY_LOOP)) as job:
        job.start()
        time.sleep(0.3)
        job.pause()
        state = job.inspect()["State"]
        assert (state["Status"], state["Paused"]) == ("paused", True)
        assert job.paused
        frozen = cpu_time_ns(job)
        time.sleep(0.5)
        assert cpu_time_ns(job) - frozen < 5_000_000  # no CPU at all while frozen (5 ms of slack)
        job.unpause()
        state = job.inspect()["State"]
        assert (state["Status"], state["Paused"]) == ("running", False)
        thawed = cpu_time_ns(job)
        time.sleep(0.5)
        assert cpu_time_ns(job) - thawed > 50_000_000  # a busy loop at half a CPU burns far more than 50 ms
        job.stop(grace_s=5)
        ended = job.wait()
        assert (ended.exit_code, ended.reason) == (143, REASON_STOPPED)  # SIGTERM, forwarded by docker-init
        with pytest.raises(ContainerStateError):
            job.pause()


def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace(runner: ContainerRunner, pulled_image: str) -> None:
    stubborn = ("sh", "-c", "trap '' TERM; while :; do :; done")
    with runner.create(plan(pulled_image, stubborn)) as job:
        job.start()
        time.sleep(0.2)
        started = time.monotonic()
        job.stop(grace_s=1, reason="stopped: game running")
        assert time.monotonic() - started >= 0.9
        ended = job.wait()
        assert (ended.exit_code, ended.reason) == (137, "stopped: game running")


def test_a_paused_job_can_be_stopped(runner: ContainerRunner, pulled_image: str) -> None:
    with runner.create(plan(pulled_image, BUSY_LOOP)) as job:
        job.start()
        job.pause()
        job.stop(grace_s=5)
        assert job.wait().exit_code == 143


def test_run_time_limit_stops_the_job_and_paused_time_does_not_count(
    runner: ContainerRunner, pulled_image: str
) -> None:
    with runner.create(plan(pulled_image, ("sleep", "60"))) as job:
        started = time.monotonic()
        job.start()
        job.pause()
        time.sleep(1.0)
        job.unpause()
        ended = job.wait(run_time_limit_s=0.8, grace_s=2)
        assert ended.reason == REASON_RUN_TIME
        assert ended.exit_code == 143
        assert 0.8 <= ended.run_time_s < 5
        assert time.monotonic() - started >= 1.8


def test_job_writing_past_its_output_cap_is_stopped_with_that_reason(
    runner: ContainerRunner, pulled_image: str, tmp_path: Path
) -> None:
    # dd fails with ENOSPC at the cap; the job then carries on as if nothing happened.
    script = "dd if=/dev/zero of=/job/output/big bs=64k count=100; echo carrying on; while :; do sleep 1; done"
    with runner.create(plan(pulled_image, ("sh", "-c", script), max_output_bytes=256 * KIB)) as job:
        job.start()
        ended = job.wait(run_time_limit_s=30, grace_s=1)
        assert ended.reason == REASON_OUTPUT_CAP
        assert "No space left on device" in job.logs.text()
        outputs = job.collect_outputs(tmp_path / "out")
        assert [(o.path, o.size_bytes) for o in outputs] == [("big", 256 * KIB)]
        with pytest.raises(OutputCapExceededError):
            job.collect_outputs(tmp_path / "smaller", max_bytes=100 * KIB)
        assert not (tmp_path / "smaller").exists()


def test_outputs_do_not_get_the_job_killed_for_memory(runner: ContainerRunner, pulled_image: str) -> None:
    script = "head -c 40000000 /dev/zero > /job/output/big"
    with runner.create(
        plan(pulled_image, ("sh", "-c", script), memory_bytes=32 * MIB, max_output_bytes=48 * MIB)
    ) as job:
        job.start()
        ended = job.wait(run_time_limit_s=30)
        assert (ended.exit_code, ended.reason, ended.oom_killed) == (0, None, False)


def test_job_that_ends_on_enospc_reports_the_output_cap(runner: ContainerRunner, pulled_image: str) -> None:
    script = "head -c 2000000 /dev/zero > /job/output/big"
    with runner.create(plan(pulled_image, ("sh", "-c", script), max_output_bytes=128 * KIB)) as job:
        job.start()
        ended = job.wait(run_time_limit_s=30)
        assert (ended.exit_code, ended.reason) == (1, REASON_OUTPUT_CAP)


def test_pull_by_digest_from_the_local_registry(
    docker_client: Any, runner: ContainerRunner, busybox_image: str, local_registry: LocalRegistry
) -> None:
    remove_local_image(docker_client, busybox_image)
    events: list[PullProgress] = []
    image_id = runner.pull(busybox_image, events.append)
    digest = busybox_image.split("@")[1]
    assert any(event.status.startswith("Pulling from") for event in events)
    # The layer may be shared with an image already here ("Already exists"); the manifest is fetched regardless.
    assert any(event.status in ("Pull complete", "Already exists") for event in events)
    assert any(event.status.startswith("Status: Downloaded newer image") for event in events)
    attrs = docker_client.api.inspect_image(busybox_image)
    assert attrs["Id"] == image_id
    assert busybox_image in attrs["RepoDigests"]
    assert f"GET /v2/sparecycles-test/busybox/manifests/{digest}" in local_registry.log
    assert runner.pull(busybox_image, events.append) == image_id  # present: no second download


class LyingRegistry(http.server.ThreadingHTTPServer):
    """Answers every manifest request with the real image's manifest, whatever digest was asked for."""

    manifest = b""


class _LyingHandler(http.server.BaseHTTPRequestHandler):
    server: LyingRegistry

    def do_GET(self) -> None:
        body = b"{}" if self.path == "/v2/" else self.server.manifest
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def lying_registry(busybox_image: str, local_registry: LocalRegistry) -> Iterator[str]:
    digest = busybox_image.split("@")[1]
    request = urllib.request.Request(
        f"http://{local_registry.host}/v2/sparecycles-test/busybox/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    server = LyingRegistry(("127.0.0.1", 0), _LyingHandler)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        server.manifest = response.read()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_content_that_does_not_match_the_digest_is_refused(runner: ContainerRunner, lying_registry: str) -> None:
    wanted = "sha256:" + hashlib.sha256(b"what the job asked for").hexdigest()
    with pytest.raises(ImageDigestMismatchError, match="does not match the digest"):
        runner.pull(f"{lying_registry}/sparecycles-test/busybox@{wanted}")


def test_image_not_in_the_registry(runner: ContainerRunner, local_registry: LocalRegistry) -> None:
    missing = f"{local_registry.host}/sparecycles-test/busybox@sha256:{'0' * 64}"
    with pytest.raises(ImageError, match="is not in registry"):
        runner.pull(missing)


def test_registry_not_on_the_allow_list_is_refused_before_any_pull(
    docker_client: Any, busybox_image: str, local_registry: LocalRegistry
) -> None:
    narrow = ContainerRunner(
        docker_client,
        agent_id="allow-list",
        holder_image=busybox_image,
        allowed_registries=["ghcr.io", f"{local_registry.host}/someone-else"],
    )
    before = local_registry.log.count("GET /v2/")
    with pytest.raises(ImageError, match="not on the list of allowed registries"):
        narrow.pull(busybox_image)
    assert local_registry.log.count("GET /v2/") == before


def test_the_pulled_image_must_list_the_digest() -> None:
    digest = "sha256:" + "cd" * 32

    class Api:
        def inspect_image(self, reference: str) -> dict[str, Any]:
            return {"Id": "sha256:" + "ee" * 32, "RepoDigests": [f"127.0.0.1:5000/other@{digest}"]}

        def pull(self, reference: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
            yield {"status": "Digest: " + digest}

    class Client:
        api = Api()

    lax = ContainerRunner(Client(), agent_id="a", holder_image=f"127.0.0.1:5000/holder@{digest}")
    with pytest.raises(ImageDigestMismatchError, match="does not carry that digest"):
        lax.pull(f"127.0.0.1:5000/studio/render@{digest}")


def test_create_needs_the_image_pulled_first(runner: ContainerRunner, local_registry: LocalRegistry) -> None:
    never_pulled = f"{local_registry.host}/sparecycles-test/busybox@sha256:{'1' * 64}"
    with pytest.raises(ImageError, match="not pulled yet"):
        runner.create(plan(never_pulled, ("true",)))


def test_labelled_leftovers_are_found_and_removed(runner: ContainerRunner, pulled_image: str) -> None:
    job = runner.create(plan(pulled_image, ("true",), job_id="crashed"))
    found = runner.find_labelled()
    assert sorted((item.kind, item.role, item.job_id) for item in found) == [
        ("container", "holder", "crashed"),
        ("container", "job", "crashed"),
        ("volume", "input", "crashed"),
        ("volume", "output", "crashed"),
    ]
    assert runner.remove_leftovers("crashed") == 4
    assert runner.find_labelled() == []
    job.remove()  # idempotent, whatever is already gone


def test_engine_not_reachable_is_said_plainly(busybox_image: str, tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/docker.sock"
    expected = f"Docker engine not reachable at {address} — is the service running? `sudo systemctl start docker`"
    with pytest.raises(EngineUnreachableError) as raised:
        connect(address)
    assert str(raised.value) == expected
    import docker

    offline = ContainerRunner(
        docker.DockerClient(base_url=address, version="1.41"),
        agent_id="a",
        holder_image=busybox_image,
        engine_address=address,
    )
    with pytest.raises(EngineUnreachableError) as raised:
        offline.pull(busybox_image)
    assert str(raised.value) == expected


def test_log_buffer_keeps_the_last_bytes() -> None:
    buffer = LogBuffer(capacity_bytes=10)
    buffer.append(b"0123456789")
    buffer.append(b"abc")
    assert buffer.data() == b"3456789abc"
    assert buffer.dropped_bytes == 3
    buffer.append(b"x" * 25)
    assert buffer.data() == b"x" * 10
    assert buffer.dropped_bytes == 28
