"""A stand-in for ``python -m sparecycles.agent.benchmark.worker`` at the hardware edge: the real worker's
measuring code, result record and exit codes, driving a simulated H100 (tests/fakes/benchmark_backends.py)
read through a fake NVML, since this machine has no GPU or array library.

It is run as ``python tests/fakes/benchmark_worker.py --quick --gpu 0 --json`` (the agent's ProcessRunner
given this program in place of the worker's), and measures the GPU whose UUID
``CUDA_VISIBLE_DEVICES`` names, as the real one does. ``FAKE_BENCHMARK`` picks its behaviour:

- ``ok`` (default): measure and print the result; ``slow``: measure, then wait for SIGTERM (exit 3,
  as the real worker does when stopped); ``stubborn``: ignore SIGTERM (the agent must kill it);
  ``fail``: exit 1 with a message; ``nolib``: exit 2 as without PyTorch and CuPy.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.fakes

from sparecycles.agent.benchmark import worker
from sparecycles.agent.benchmark.measure import PLANS
from sparecycles.agent.benchmark.telemetry import NvmlTelemetry
from tests.fakes.benchmark_backends import SimulatedBackend
from tests.fakes.fake_pynvml import FakeDevice, FakeNvml

POWER_MW = 655_000


def main(argv: list[str]) -> int:
    mode = "full" if "--full" in argv else "quick"
    behaviour = os.environ.get("FAKE_BENCHMARK", "ok")
    uuid = os.environ.get("CUDA_VISIBLE_DEVICES", "GPU-unknown")
    if behaviour == "nolib":
        print(worker.NO_LIBRARY_MESSAGE, file=sys.stderr)
        return worker.EXIT_NO_LIBRARY
    if behaviour == "fail":
        print("CUDA error: an illegal memory access was encountered", file=sys.stderr)
        return worker.EXIT_FAILED
    stop = threading.Event()
    if behaviour == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    device = FakeDevice(
        name="NVIDIA H100 80GB HBM3",
        uuid=uuid,
        memory_total_bytes=81559 * 2**20,
        power_usage_mw=POWER_MW,
        temperature_c=64,
    )
    backend = SimulatedBackend(
        tflops={"fp32": 50.0, "fp16": 760.0, "bf16": 780.0},
        memory_gbps=2950.0,
        host_to_device_gbps=53.0,
        device_to_host_gbps=54.0,
        memory_bytes=79 * 2**30,
        device_name=device.name,
        device_uuid=uuid,
    )
    telemetry = NvmlTelemetry.open(uuid, nvml=FakeNvml(device, driver_version="580.159.04"))
    result = worker.benchmark(backend, PLANS[mode], cuda_index=0, telemetry=telemetry, should_stop=stop.is_set)
    if behaviour in ("slow", "stubborn"):
        print("ready", file=sys.stderr, flush=True)
        while not stop.is_set():
            time.sleep(0.05)
        return worker.EXIT_INTERRUPTED
    print(result.to_json())
    return worker.EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
