"""Shared pieces of the benchmark scripts: start an agent, describe the machine, record figures."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import psutil

from sparecycles.control.endpoint import AgentEndpoint, EndpointFileError, read_endpoint

# The `sparecycles` command the benchmarks start: the one installed beside this Python, unless
# SPARECYCLES_BENCH_CLI names another (a wrapper that runs a working tree's code, say).
CLI = os.environ.get("SPARECYCLES_BENCH_CLI") or str(Path(sys.executable).parent / "sparecycles")


def start_agent(
    home: Path, arguments: Sequence[str] = (), env: dict[str, str] | None = None, command: str = CLI
) -> tuple[subprocess.Popen[bytes], AgentEndpoint, float]:
    """Start `sparecycles agent --foreground` in ``home`` (``command``: another build, such as the bundle);
    return it, its endpoint and seconds to ready."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment["SPARECYCLES_HOME"] = str(home)
    environment.update(env or {})
    started = time.perf_counter()
    process = subprocess.Popen(
        [command, "agent", "--foreground", *arguments],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lock = home / "state" / "agent.lock"
    with httpx.Client(timeout=1, trust_env=False) as client:
        while time.perf_counter() - started < 30:
            if process.poll() is not None:
                raise SystemExit(f"the agent exited with {process.returncode}")
            with contextlib.suppress(EndpointFileError):
                endpoint = read_endpoint(lock)
                if endpoint and endpoint.pid == process.pid and endpoint.port:
                    with contextlib.suppress(httpx.HTTPError):
                        response = client.get(
                            f"{endpoint.base_url}/v1/status", headers={"Authorization": f"Bearer {endpoint.token}"}
                        )
                        if response.status_code == 200:
                            return process, endpoint, time.perf_counter() - started
            time.sleep(0.005)
    raise SystemExit("the agent did not become ready within 30 s")


def stop_agent(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(10)


@contextlib.contextmanager
def temporary_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def cpu_percent_over(pid: int, seconds: float) -> float:
    """Percent of one core the process used over ``seconds`` (user + system time)."""
    process = psutil.Process(pid)
    before, wall_before = process.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    after, wall_after = process.cpu_times(), time.perf_counter()
    busy = (after.user - before.user) + (after.system - before.system)
    return 100 * busy / (wall_after - wall_before)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, no GPU"
    )


def table(rows: Sequence[tuple[str, str, str]]) -> str:
    lines = ["| measure | result | target |", "|---|---|---|"]
    lines += [f"| {measure} | {result} | {target} |" for measure, result, target in rows]
    return "\n".join(lines)


def record(path: Path | None, key: str, report: str) -> None:
    """Print ``report`` and, with a path, replace (or append) this benchmark's section there."""
    begin, end = f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"
    section = f"{begin}\n{report}\n{end}"
    print(section)
    if path is None:
        return
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
