"""Measure the agent: start-to-ready time, then CPU and memory while idle.

Start-to-ready is the time from launching `sparecycles agent --foreground` to the first 200 from
its control API. Idle use is sampled after start-up settles, from the process's own CPU times and
resident memory. Targets (issue #3): ready < 2 s, idle < 1 % of one core, < 100 MB RSS.

    python bench/agent_startup.py [--runs 5] [--idle-seconds 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from common import cpu_percent_over, machine, record, start_agent, stop_agent, table, temporary_home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    args = parser.parse_args()

    ready_times = []
    with temporary_home() as folder:
        for run in range(args.runs):
            process, _, ready = start_agent(folder / f"run{run}")
            ready_times.append(ready)
            if run < args.runs - 1:
                stop_agent(process)
        time.sleep(3)  # let start-up work (GPU discovery, first status) settle
        idle_cpu = cpu_percent_over(process.pid, args.idle_seconds)
        memory = psutil.Process(process.pid).memory_full_info()
        stop_agent(process)

    rows = [
        ("start to ready, median", f"{statistics.median(ready_times):.2f} s", "< 2 s"),
        ("start to ready, worst", f"{max(ready_times):.2f} s", "< 2 s"),
        (f"idle CPU over {args.idle_seconds:.0f} s", f"{idle_cpu:.2f} % of one core", "< 1 %"),
        ("idle resident memory (RSS)", f"{memory.rss / 1e6:.1f} MB", "< 100 MB"),
        ("idle unique memory (USS)", f"{memory.uss / 1e6:.1f} MB", "—"),
    ]
    report = (
        "## Agent start-up and idle use (`bench/agent_startup.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}.\n"
        f"{args.runs} starts, each in a fresh SPARECYCLES_HOME; ready = first 200 from `GET /v1/status`. "
        "No GPU and no display here: GPU and presence sampling run at their slow, 1 s pace.\n\n" + table(rows)
    )
    record(args.write, "agent_startup", report)


if __name__ == "__main__":
    main()
