"""Job container latencies on this machine: start with a cached image, pause (freeze), stop.

A local registry on loopback serves the offline busybox test image (as the test suite does); the
image is pulled once, then every trial creates a sandboxed job container (scratch volumes and
holder included) and starts it, freezes it, thaws it and stops it, through the agent's
``ContainerRunner``. Targets (issue #5): pause p99 < 100 ms, start p50 < 1 s.

    python bench/job_latency.py [--trials 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import machine, record, table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sparecycles.agent.jobs.containers import ContainerRunner, connect
from sparecycles.agent.jobs.inputs import InputCache
from sparecycles.agent.jobs.runtime import JobRecordStore, JobRuntime, Lease
from sparecycles.agent.jobs.sandbox import ContainerPlan
from sparecycles.protocol.jobs import JobSpec
from tests.jobs.conftest import REGISTRY, TEST_REPOSITORY, busybox_rootfs, remove_local_image

# Exits at once on SIGTERM, as a well-behaved job does: the stop measures Docker, not the grace.
BUSY_JOB = ("sh", "-c", "trap 'exit 0' TERM; while :; do :; done")


def start_registry(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = folder / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
    )
    process = subprocess.Popen(
        [str(REGISTRY), "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                return process, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("docker-registry did not start")


def push_test_image(client: object, host: str) -> str:
    repository = f"{host}/{TEST_REPOSITORY}"
    api = client.api  # type: ignore[attr-defined]
    api.import_image_from_data(busybox_rootfs(), repository=repository, tag="latest")
    digest = None
    for event in api.push(repository, tag="latest", stream=True, decode=True):
        digest = (event.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise SystemExit("the registry did not report the pushed image's digest")
    remove_local_image(client, f"{repository}:latest")
    return f"{repository}@{digest}"


async def lease_to_running(runner: ContainerRunner, image: str, folder: Path, trials: int) -> list[float]:
    """Seconds from handing the runtime a lease to its job's state "running" (image cached)."""
    running: dict[str, float] = {}
    arrived = asyncio.Event()

    def on_event(kind: str, data: dict[str, object]) -> None:  # called on the loop's thread
        if kind == "job_state" and data["state"] == "running":
            running.setdefault(str(data["job_id"]), time.perf_counter())
            arrived.set()

    runtime = JobRuntime(
        lambda: runner,
        InputCache(folder / "inputs"),
        JobRecordStore(folder / "jobs.json"),
        outputs_root=folder / "outputs",
        on_event=on_event,
        stop_grace_s=5,
        poll_interval_s=0.1,
    )
    spec = JobSpec.model_validate({"image": image, "command": list(BUSY_JOB), "max_runtime_s": 60})
    latencies = []
    for trial in range(trials):
        job_id = f"lease-{trial}"
        began = time.perf_counter()
        task = asyncio.create_task(
            runtime.run(Lease(job_id=job_id, spec=spec, expires_at=datetime.now(UTC) + timedelta(minutes=5)))
        )
        while job_id not in running:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), timeout=60)
        latencies.append(running[job_id] - began)
        runtime.stop_all("benchmark done")
        await task
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()

    client = connect()
    starts, pauses, unpauses, stops = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        registry, host = start_registry(Path(folder))
        try:
            image = push_test_image(client, host)
            runner = ContainerRunner(client, agent_id=f"bench-{secrets.token_hex(4)}", holder_image=image)
            runner.pull(image)  # cached from here on: the trials measure starts with a cached image
            try:
                for trial in range(args.trials):
                    plan = ContainerPlan(job_id=f"bench-{trial}", image=image, command=BUSY_JOB)
                    began = time.perf_counter()
                    with runner.create(plan) as job:
                        job.start()
                        starts.append(time.perf_counter() - began)
                        time.sleep(0.2)
                        began = time.perf_counter()
                        job.pause()
                        pauses.append(time.perf_counter() - began)
                        began = time.perf_counter()
                        job.unpause()
                        unpauses.append(time.perf_counter() - began)
                        began = time.perf_counter()
                        job.stop(grace_s=5)
                        job.wait()
                        stops.append(time.perf_counter() - began)
                leases = asyncio.run(lease_to_running(runner, image, Path(folder), args.trials))
            finally:
                runner.remove_leftovers()
                remove_local_image(client, image)
        finally:
            registry.terminate()
            registry.wait(10)

    def row(name: str, values: list[float], target: str) -> tuple[str, str, str]:
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        return (name, f"p50 {p50:.0f} ms, p99 {p99:.0f} ms", target)

    rows = [
        row("lease accepted → job running (JobRuntime, cached image)", leases, "p50 < 1 s"),
        row("start, cached image (create incl. scratch + start)", starts, "—"),
        row("pause (docker pause returns: frozen)", pauses, "p99 < 100 ms"),
        row("unpause", unpauses, "—"),
        row("stop of a busy job that exits on SIGTERM (until exited)", stops, "—"),
    ]
    report = (
        "## Job container latencies (`bench/job_latency.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}; Docker engine 20.10 (cgroup v1 freezer).\n"
        f"{args.trials} trials with the offline busybox image from a loopback registry, pulled once beforehand. "
        'The first row counts from handing the job runtime a lease to its "running" state (digest check, '
        "scratch volumes, holder, container, start); the second only the runner's create and start. Lease "
        "handling at the marketplace is not included (the marketplace issue).\n\n" + table(rows)
    )
    record(args.write, "job_latency", report)


if __name__ == "__main__":
    main()
