"""Measure the desktop app: cold launch to first paint, and its memory while 4 simulated GPUs stream live
updates to the dashboard.

First paint is the time from launching a fresh Python process (the app's imports included) to the main
window's first paint event; the app is started by a small driver that runs the ``sparecycles`` command line
itself (``sparecycles.__main__.main()`` with no arguments, as the menu entry does), with an event filter on the
application that notes that paint. Runs either against an agent
started beforehand (``--simulated-gpus 4``), or, with ``--spawn``, letting the GUI start its own agent as a
first launch does. Memory is the GUI process's resident set, sampled over ``--duration`` seconds while the
dashboard shows the live readings. Targets (issue #12): first paint < 1.5 s; < 200 MB RSS; no growth over
10 minutes.

    DISPLAY=:99 python bench/gui_startup.py [--runs 5] [--duration 600] [--spawn] [--write docs/benchmarks.md]

Run it under the Python that has the app (``PYTHONPATH=.dev`` for a working tree).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from common import machine, record, start_agent, stop_agent, table, temporary_home

# Runs in the GUI's own process: note the main window's first paint (time since the epoch) on stdout.
DRIVER = """
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
from sparecycles.ui import window

class FirstPaint(QObject):
    done = False
    def eventFilter(self, watched, event):
        if not self.done and event.type() == QEvent.Type.Paint and isinstance(watched, window.MainWindow):
            self.done = True
            print(f"first-paint {time.time():.6f}", flush=True)
        return False

spy = FirstPaint()
app.installEventFilter(spy)
sys.argv = ["sparecycles"]
from sparecycles.__main__ import main
main()  # the bare command, as the console script runs it: the desktop app, reusing this QApplication
"""


# With --malloc-trim: hand freed heap back to the system every so often (an experiment on native growth).
TRIMMER = """
import ctypes
from PySide6.QtCore import QTimer
_libc = ctypes.CDLL("libc.so.6")
_trim = QTimer()
_trim.timeout.connect(lambda: _libc.malloc_trim(0))
_trim.start(int({every_s} * 1000))
"""


def launch_gui(home: Path, malloc_trim_s: float | None = None) -> tuple[subprocess.Popen[str], float]:
    """Start the GUI in ``home``; return it and the seconds from launch to its first paint."""
    environment = dict(os.environ, SPARECYCLES_HOME=str(home), QT_QPA_PLATFORM="xcb")
    driver = DRIVER
    if malloc_trim_s:
        driver = driver.replace("spy = FirstPaint()", TRIMMER.format(every_s=malloc_trim_s) + "spy = FirstPaint()")
    launched = time.time()
    gui = subprocess.Popen(
        [sys.executable, "-c", driver], env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert gui.stdout is not None
    line = gui.stdout.readline()
    if not line.startswith("first-paint"):
        gui.kill()
        raise SystemExit(f"the GUI exited before painting (code {gui.wait()})")
    return gui, float(line.split()[1]) - launched


def stop_gui(gui: subprocess.Popen[str]) -> None:
    gui.send_signal(signal.SIGTERM)
    try:
        gui.wait(10)
    except subprocess.TimeoutExpired:
        gui.kill()
        gui.wait()


def stop_spawned_agent(home: Path) -> None:
    """The agent a GUI started outlives it (by design): stop it through its pid in the lock file."""
    from sparecycles.control.endpoint import read_endpoint

    endpoint = read_endpoint(home / "state" / "agent.lock")
    if endpoint is not None and psutil.pid_exists(endpoint.pid):
        os.kill(endpoint.pid, signal.SIGTERM)
        psutil.Process(endpoint.pid).wait(10)


def sample_rss(pid: int, seconds: float, every: float) -> list[tuple[float, float]]:
    """(seconds since the start, RSS in MB) every ``every`` seconds."""
    process = psutil.Process(pid)
    samples = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) <= seconds:
        samples.append((elapsed, process.memory_info().rss / 1e6))
        time.sleep(every)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cold launches to time")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of live updates for the memory test")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--spawn", action="store_true", help="no agent beforehand: the GUI starts its own")
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    parser.add_argument(
        "--malloc-trim", type=float, default=None, help="an experiment: malloc_trim(0) in the GUI every SECONDS"
    )
    parser.add_argument("--samples", type=Path, help="also write the (seconds, MB) samples here, as JSON")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        raise SystemExit("needs a display: DISPLAY=:99 with an Xvfb running")

    paints = []
    with temporary_home() as folder:
        for run in range(args.runs):
            home = folder / f"run{run}"
            agent = None if args.spawn else start_agent(home, ["--simulated-gpus", "4"])[0]
            gui, paint = launch_gui(home, args.malloc_trim)
            paints.append(paint)
            print(f"launch {run + 1}: first paint after {paint:.3f} s", flush=True)
            last = run == args.runs - 1
            if last:
                time.sleep(5)  # the dashboard fills in, pages settle
                samples = sample_rss(gui.pid, args.duration, args.every)
            stop_gui(gui)
            if agent is not None:
                stop_agent(agent)
            else:
                stop_spawned_agent(home)

    if args.samples is not None:
        args.samples.write_text(json.dumps(samples))
    first, peak, final = samples[0][1], max(rss for _, rss in samples), samples[-1][1]
    half = len(samples) // 2
    # Caches (fonts, text layouts, Python's own pools) fill in the first minutes; a leak keeps growing after.
    steady = samples[half:]
    steady_growth = steady[-1][1] - steady[0][1]
    slope_mb_per_hour = statistics.linear_regression([t for t, _ in steady], [rss for _, rss in steady]).slope * 3600
    early = statistics.mean(rss for _, rss in samples[: max(half, 1)])
    late = statistics.mean(rss for _, rss in samples[half:])
    agent_kind = "started by the GUI (first launch)" if args.spawn else "started beforehand, 4 simulated GPUs"
    rows = [
        ("first paint, median", f"{statistics.median(paints):.2f} s", "< 1.5 s"),
        ("first paint, worst", f"{max(paints):.2f} s", "< 1.5 s"),
        (f"RSS after {args.duration:.0f} s of live updates", f"{final:.1f} MB", "< 200 MB"),
        ("RSS peak", f"{peak:.1f} MB", "< 200 MB"),
        (
            "RSS growth (second half vs first half, mean)",
            f"{late - early:+.1f} MB (first sample {first:.1f} MB)",
            "—",
        ),
        (
            "RSS growth over the second half (its last sample less its first; slope)",
            f"{steady_growth:+.1f} MB ({slope_mb_per_hour:+.1f} MB/hour)",
            "none",
        ),
    ]
    report = (
        "## Desktop app: first paint and memory (`bench/gui_startup.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}, Xvfb.\n"
        f"{args.runs} cold launches (a fresh Python process each, the app's imports included), agent "
        f"{agent_kind}; memory sampled every {args.every:.0f} s while the dashboard shows the live readings "
        "(one status a second).\n\n" + table(rows)
    )
    record(args.write, "gui_startup", report)


if __name__ == "__main__":
    main()
