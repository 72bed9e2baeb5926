"""On a machine with a real NVIDIA GPU: the ledger's energy path against real NVML, idle and under load.

It reads GPU 0 through the agent's own NVML backend once a second for an idle phase, a load phase (a
bf16 matrix-multiply loop through PyTorch, as a stand-in for a job, attributed to the job "load") and a
second idle phase, feeding the readings to the real EnergyRecorder and LedgerStore, as the agent does.
It prints, per phase, the energy NVML's total-energy counter gives, the energy the power samples
integrate to (the fallback for GPUs without the counter), and the mean power; then the ledger's
per-job totals. Needs PyTorch with CUDA for the load; without it only idle is measured.

    python bench/gpu_energy_check.py [--idle-s 10] [--load-s 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sparecycles.agent.ledger.energy import integrate_power
from sparecycles.agent.ledger.recorder import EnergyRecorder
from sparecycles.agent.ledger.store import LedgerStore
from sparecycles.agent.ledger.tariffs import TariffHistory
from sparecycles.agent.sensors.gpu.nvml import NvmlGpuBackend


def load(stop: threading.Event) -> str:
    try:
        import torch  # optional: only this check needs it
    except ImportError:
        return "no PyTorch: no load phase"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA device: no load phase"
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    while not stop.is_set():
        for _ in range(20):
            a @ b  # the work is the point
        torch.cuda.synchronize()
    return "bf16 8192^3 matrix products"


def main() -> None:  # noqa: PLR0915 - a linear script
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-s", type=int, default=10)
    parser.add_argument("--load-s", type=int, default=20)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()

    backend = NvmlGpuBackend()
    discovery = backend.discover()
    if not discovery.gpus:
        raise SystemExit(f"no GPU: {discovery.reason}")
    gpu = discovery.gpus[0]
    folder = Path(tempfile.mkdtemp())
    store = LedgerStore.open(folder / "ledger.sqlite3", ZoneInfo("UTC"))
    recorder = EnergyRecorder(boot_id=Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    tariffs = TariffHistory()
    phases: list[dict[str, Any]] = []
    stop = threading.Event()
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(load(stop)))

    for name, seconds, job in (
        ("idle", arguments.idle_s, None),
        ("load", arguments.load_s, "load"),
        ("idle-after", arguments.idle_s, None),
    ):
        if name == "load":
            worker.start()
            time.sleep(2)  # PyTorch's start-up (CUDA context, allocations) before the measured phase
        if name == "idle-after":
            stop.set()
            worker.join()
            time.sleep(2)
        first: int | None = None
        last: int | None = None
        power: list[tuple[float, float]] = []
        began = time.monotonic()
        for _ in range(seconds + 1):
            [sample] = [s for s in backend.sample(lambda _pid: False) if s.index == gpu.index]
            now = datetime.now(UTC)
            intervals = recorder.observe(now, [sample], {sample.uuid: job})
            if intervals:
                store.record_energy(intervals, tariffs)
                recorder.committed(intervals, [sample], {sample.uuid: job})
            if sample.energy_total_mj is not None:
                first = sample.energy_total_mj if first is None else first
                last = sample.energy_total_mj
            if sample.power_draw_w is not None:
                power.append((time.monotonic() - began, sample.power_draw_w))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began) % 1.0))
        span = power[-1][0] - power[0][0] if len(power) > 1 else 0.0
        counter_j = (last - first) / 1000 if first is not None and last is not None else None
        integrated_j = integrate_power(power)
        phases.append(
            {
                "phase": name,
                "seconds": round(span, 2),
                "counter_j": counter_j,
                "integrated_j": round(integrated_j, 1),
                "mean_w": round(integrated_j / span, 1) if span else None,
                "max_w": max((w for _, w in power), default=None),
                "counter_vs_samples_percent": round(100 * (counter_j - integrated_j) / integrated_j, 2)
                if counter_j is not None and integrated_j
                else None,
            }
        )
    with store.engine.connect() as connection:
        per_job = {
            (key or "idle"): round(mj / 1000, 1)
            for key, mj in connection.exec_driver_sql(
                "SELECT job_key, SUM(energy_mj) FROM energy_daily GROUP BY job_key"
            )
        }
    report = {
        "gpu": gpu.name,
        "driver": gpu.driver_version,
        "power_limits_w": vars(gpu.power_limits),
        "energy_counter": phases[0]["counter_j"] is not None,
        "load": result[0] if result else "not run",
        "phases": phases,
        "ledger_joules_by_job": per_job,
    }
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if arguments.json:
        arguments.json.write_text(text + "\n")
    backend.close()
    store.close()


if __name__ == "__main__":
    main()
