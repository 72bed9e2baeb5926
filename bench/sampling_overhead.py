"""What the agent's sensing costs: CPU with 8 SIMULATED GPUs sampled once a second.

Two situations, each measured from the agent process's own CPU times after start-up settles:
waiting (no display, so presence is unknown and sampled slowly), and working under an idle Xvfb
(presence polled every 100 ms to hand the GPU back fast). Target (issue #4): < 1 % of one core.

    python bench/sampling_overhead.py [--seconds 60] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from common import cpu_percent_over, machine, record, start_agent, stop_agent, table, temporary_home
from input_latency import start_xvfb

from sparecycles.control.client import ControlClient


def measure(seconds: float, env: dict[str, str], config: str) -> tuple[float, str]:
    with temporary_home() as home:
        (home / "config").mkdir()
        (home / "config" / "config.toml").write_text(config)
        process, endpoint, _ = start_agent(home, ["--simulated-gpus", "8"], env)
        try:
            time.sleep(8)  # start-up, and the idle threshold passing
            with ControlClient(endpoint) as client:
                state = client.status().state.value
            return cpu_percent_over(process.pid, seconds), state
        finally:
            stop_agent(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()

    waiting_cpu, waiting_state = measure(args.seconds, {}, '[work]\nmode = "idle"\n')
    xvfb, display = start_xvfb()
    try:
        working_cpu, working_state = measure(
            args.seconds, {"DISPLAY": display}, '[work]\nmode = "idle"\nidle_threshold = "5s"\n'
        )
    finally:
        xvfb.terminate()
    rows = [
        (
            f"8 GPUs, agent {waiting_state} (presence unknown, 1 s sampling)",
            f"{waiting_cpu:.2f} % of one core",
            "< 1 %",
        ),
        (f"8 GPUs, agent {working_state} (X11 presence every 100 ms)", f"{working_cpu:.2f} % of one core", "—"),
    ]
    report = (
        "## Sampling overhead (`bench/sampling_overhead.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}.\n"
        f"CPU of the agent process over {args.seconds:.0f} s with 8 SIMULATED GPUs sampled every second, "
        "the game/process scan every 2 s, and presence as stated.\n\n" + table(rows)
    )
    record(args.write, "sampling_overhead", report)


if __name__ == "__main__":
    main()
