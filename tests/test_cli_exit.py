"""The agent's process ends with os._exit once stopped (app/cli.py ``_exit_at_once``), skipping only the
interpreter's teardown of its modules: what Python's own exit does first must still happen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, logging, sys, threading, time
from pathlib import Path
from sparecycles.cli import _exit_at_once

folder = Path(sys.argv[1])
def finishing():  # a job's control thread still stopping a container
    time.sleep(0.5)
    (folder / "thread-done").write_text("yes")
threading.Thread(target=finishing, name="job-x-control").start()
atexit.register(lambda: (folder / "atexit-ran").write_text("yes"))
logging.basicConfig(filename=folder / "agent.log", level=logging.INFO)
logging.getLogger("agent").info("SpareCycles agent stopped")
sys.stdout.write("last words")  # no newline: still buffered when the process ends
_exit_at_once(7)
"""


def test_the_agents_exit_waits_for_its_threads_runs_exit_handlers_and_flushes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 7, result.stderr
    assert (tmp_path / "thread-done").read_text() == "yes"  # waited for, as the interpreter's exit does
    assert (tmp_path / "atexit-ran").read_text() == "yes"
    assert "SpareCycles agent stopped" in (tmp_path / "agent.log").read_text()
    assert result.stdout == "last words"
