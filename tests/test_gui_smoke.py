"""With a display, the bare `sparecycles` command starts the agent and opens a real window: the installed
command, and the PyInstaller bundle's executable (whose agent must be the bundle itself, started through
``sys.executable``, with Qt's platform plugins inside the bundle)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from sparecycles.control.endpoint import EndpointFileError, read_endpoint
from tests.conftest import agent_env, run_cli

DISPLAY = os.environ.get("SPARECYCLES_TEST_DISPLAY")


@pytest.mark.skipif(not DISPLAY or not shutil.which("xdotool"), reason="needs the Xvfb display that make test starts")
def test_bare_command_opens_the_window_and_starts_the_agent(home: Path, command: str) -> None:
    assert DISPLAY is not None
    env = agent_env(home, DISPLAY=DISPLAY, QT_QPA_PLATFORM="xcb")
    gui = subprocess.Popen([command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        window_ids = ""
        deadline = time.monotonic() + 60
        while not window_ids and time.monotonic() < deadline:
            search = subprocess.run(
                ["xdotool", "search", "--name", "^SpareCycles"], env=env, capture_output=True, text=True, check=False
            )
            window_ids = search.stdout.strip()
            time.sleep(0.2)
        assert window_ids, "no SpareCycles window appeared"
        # The window comes first; its link starts the agent meanwhile.
        endpoint = None
        while endpoint is None and time.monotonic() < deadline:
            with contextlib.suppress(EndpointFileError):
                endpoint = read_endpoint(home / "state" / "agent.lock")
            time.sleep(0.1)
        assert endpoint is not None, "the window's link started no agent"
        assert endpoint.pid != gui.pid  # the agent is its own process and outlives the window
        agent_command_line = psutil.Process(endpoint.pid).cmdline()
        assert agent_command_line[-2:] == ["agent", "--foreground"]
        if not command.endswith("/bin/sparecycles"):  # the bundle started itself, not some Python
            assert psutil.Process(endpoint.pid).exe() == command
    finally:
        gui.send_signal(signal.SIGTERM)
        gui.wait(timeout=10)
    answered = run_cli(home, "status", cli=command)
    while answered.returncode != 0 and time.monotonic() < deadline:  # the agent may still be starting
        time.sleep(0.2)
        answered = run_cli(home, "status", cli=command)
    assert answered.returncode == 0, answered.stderr  # it outlived the window
    run_cli(home, "stop", cli=command)
