"""Measure the agent: start-to-ready time, then CPU and memory while idle.

Start-to-ready is the time from launching `sparecycles agent --foreground` to the first 200 from
its control API. Idle use is sampled after start-up settles, from the process's own CPU times and
resident memory. Targets (issue #3): ready < 2 s, idle < 1 % of one core, < 100 MB RSS.

    python bench/agent_startup.py [--runs 5] [--idle-seconds 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from sparecycles.control.endpoint import EndpointFileError, read_endpoint

CLI = str(Path(sys.executable).parent / "sparecycles")
BEGIN, END = "<!-- bench:agent_startup:begin -->", "<!-- bench:agent_startup:end -->"


def start_agent(home: Path) -> tuple[subprocess.Popen[bytes], float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["SPARECYCLES_HOME"] = str(home)
    started = time.perf_counter()
    process = subprocess.Popen(
        [CLI, "agent", "--foreground"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    lock = home / "state" / "agent.lock"
    with httpx.Client(timeout=1, trust_env=False) as client:
        while time.perf_counter() - started < 30:
            if process.poll() is not None:
                raise SystemExit(f"the agent exited with {process.returncode}")
            try:
                endpoint = read_endpoint(lock)
            except EndpointFileError:
                endpoint = None
            if endpoint and endpoint.pid == process.pid and endpoint.port:
                try:
                    response = client.get(
                        f"{endpoint.base_url}/v1/status", headers={"Authorization": f"Bearer {endpoint.token}"}
                    )
                    if response.status_code == 200:
                        return process, time.perf_counter() - started
                except httpx.HTTPError:
                    pass
            time.sleep(0.005)
    raise SystemExit("the agent did not become ready within 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(10)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, no GPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--write", type=Path, help="update this markdown file's agent start-up section")
    args = parser.parse_args()

    ready_times = []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            home = Path(folder) / f"run{run}"
            process, ready = start_agent(home)
            ready_times.append(ready)
            if run < args.runs - 1:
                stop(process)
        # The last agent stays up for the idle measurement.
        agent = psutil.Process(process.pid)
        time.sleep(3)  # let start-up work (GPU discovery, first status) settle
        cpu_before, wall_before = agent.cpu_times(), time.perf_counter()
        time.sleep(args.idle_seconds)
        cpu_after, wall_after = agent.cpu_times(), time.perf_counter()
        busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        idle_cpu_percent = 100 * busy / (wall_after - wall_before)
        memory = agent.memory_full_info()
        stop(process)

    rows = [
        ("start to ready, median", f"{statistics.median(ready_times):.2f} s", "< 2 s"),
        ("start to ready, worst", f"{max(ready_times):.2f} s", "< 2 s"),
        (f"idle CPU over {args.idle_seconds:.0f} s", f"{idle_cpu_percent:.2f} % of one core", "< 1 %"),
        ("idle resident memory (RSS)", f"{memory.rss / 1e6:.1f} MB", "< 100 MB"),
        ("idle unique memory (USS)", f"{memory.uss / 1e6:.1f} MB", "—"),
    ]
    table = "\n".join(["| measure | result | target |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)])
    report = (
        f"{BEGIN}\n## Agent start-up and idle use (`bench/agent_startup.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}.\n"
        f"{args.runs} starts, each in a fresh SPARECYCLES_HOME; ready = first 200 from `GET /v1/status`.\n\n"
        f"{table}\n{END}"
    )
    print(report)
    if args.write:
        text = args.write.read_text() if args.write.exists() else "# Benchmarks\n"
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + report + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n" + report + "\n"
        args.write.write_text(text)


if __name__ == "__main__":
    main()
