"""The desktop app's tests: pytest-qt against a real agent process (simulated GPUs, its private
marketplace) on the Xvfb display that `make test` starts (SPARECYCLES_TEST_DISPLAY). Without that display
they are skipped with the reason.

For a developer's run: `Xvfb :99 -screen 0 1280x800x24 & export SPARECYCLES_TEST_DISPLAY=:99`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningAgent, start_agent

DISPLAY = os.environ.get("SPARECYCLES_TEST_DISPLAY")
if DISPLAY:  # before pytest-qt creates the QApplication: the real X server, through xcb
    os.environ["DISPLAY"] = DISPLAY
    os.environ["QT_QPA_PLATFORM"] = "xcb"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if DISPLAY:
        return
    skip = pytest.mark.skip(reason="needs the Xvfb display that make test starts (SPARECYCLES_TEST_DISPLAY)")
    for item in items:
        if "tests/ui/" in str(item.fspath):
            item.add_marker(skip)


WORK_ANY_TIME = '[work]\nmode = "schedule"\n[schedule]\nwindows = ["daily"]\n'


@pytest.fixture
def agent_home(home: Path) -> Path:
    """A SPARECYCLES_HOME whose agent may work at any time (a schedule covering every day)."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(WORK_ANY_TIME + f'[marketplace]\nidentity_key_file = "{home / "identity.key"}"\n')
    return home


@pytest.fixture
def sim_agent(agent_home: Path) -> Iterator[RunningAgent]:
    """A real agent process with one simulated GPU."""
    agent = start_agent(agent_home, "--simulated-gpus", "1")
    yield agent
    agent.stop()


@pytest.fixture
def link(sim_agent: RunningAgent, qtbot: object) -> Iterator[object]:
    """An AgentLink connected to ``sim_agent`` (it starts no agent of its own)."""
    from sparecycles.ui.agent_link import AgentLink, LinkState

    connected = AgentLink(sim_agent.paths)
    connected.start()
    qtbot.waitUntil(lambda: connected.state is LinkState.CONNECTED and connected.status is not None, timeout=20_000)  # type: ignore[attr-defined]
    yield connected
    connected.close()
