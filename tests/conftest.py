"""Shared fixtures: an isolated SPARECYCLES_HOME, the installed CLI, and a real running agent."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sparecycles.control.endpoint import AgentEndpoint, EndpointFileError, read_endpoint
from sparecycles.paths import AppPaths

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "sparecycles")


BUNDLE_VARIABLE = "SPARECYCLES_TEST_BUNDLE"


@pytest.fixture(scope="session")
def bundle() -> str:
    """The PyInstaller bundle's executable, which `make test` builds (`make bundle`) and names in
    SPARECYCLES_TEST_BUNDLE; tests run it as users would run the downloaded app."""
    path = os.environ.get(BUNDLE_VARIABLE)
    if not path:
        pytest.skip(f"no bundle: `make bundle`, then {BUNDLE_VARIABLE}=dist/sparecycles/sparecycles")
    _wait_for_the_bundle_build()
    assert Path(path).is_file(), f"{BUNDLE_VARIABLE}={path} names no file"
    assert os.access(path, os.X_OK), f"{BUNDLE_VARIABLE}={path} is not executable"
    return str(Path(path).resolve())


def _wait_for_the_bundle_build(timeout_s: float = 900) -> None:
    """`make test` builds the bundle while the suite runs: wait for its exit code (in
    SPARECYCLES_TEST_BUNDLE_STATUS) where it names one."""
    status_file = os.environ.get("SPARECYCLES_TEST_BUNDLE_STATUS")
    if not status_file:
        return
    status = Path(status_file)
    deadline = time.monotonic() + timeout_s
    while not status.exists() or not status.read_text().strip():
        assert time.monotonic() < deadline, f"the bundle did not build within {timeout_s:.0f} s"
        time.sleep(1)
    if status.read_text().strip() != "0":
        log = Path(os.environ.get("SPARECYCLES_TEST_BUNDLE_LOG", "/dev/null"))
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.is_file() else ""
        pytest.fail(f"the bundle did not build:\n{tail}")


def _uses_the_bundle(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("command") == "bundle":
        return True
    return "bundle" in getattr(item, "fixturenames", ())


@pytest.fixture(params=["installed", "bundle"])
def command(request: pytest.FixtureRequest) -> str:
    """The ``sparecycles`` command under test: the installed console script, then the bundle's executable."""
    return CLI if request.param == "installed" else str(request.getfixturevalue("bundle"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty SPARECYCLES_HOME: config, state and logs of one test's agent."""
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def paths(home: Path) -> AppPaths:
    return AppPaths.from_environment({"SPARECYCLES_HOME": str(home)})


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["SPARECYCLES_HOME"] = str(home)
    env.update(extra)
    return env


def run_cli(
    home: Path, *args: str, timeout: float = 60, cli: str = CLI, **env: str
) -> subprocess.CompletedProcess[str]:
    """``sparecycles ARGS`` in ``home`` (``cli``: another build of the command, such as the bundle's)."""
    return subprocess.run(
        [cli, *args], env=agent_env(home, **env), capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class RunningAgent:
    process: subprocess.Popen[bytes]
    paths: AppPaths
    endpoint: AgentEndpoint
    console_file: Path

    @property
    def console(self) -> str:
        """What the agent printed to its terminal (it runs with --foreground)."""
        return self.console_file.read_text(errors="replace")

    @property
    def url(self) -> str:
        return self.endpoint.base_url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.endpoint.token}"}

    def stop(self, timeout: float = 30) -> int:  # generous: a loaded CI machine stops agents slowly
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def wait_for_endpoint(
    paths: AppPaths, process: subprocess.Popen[bytes], console_file: Path, timeout: float = 30
) -> AgentEndpoint:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"agent exited with {process.returncode}: {console_file.read_text()}")
        with contextlib.suppress(EndpointFileError):
            endpoint = read_endpoint(paths.agent_lock_file)
            if endpoint and endpoint.pid == process.pid and endpoint.port:
                with contextlib.suppress(httpx.HTTPError):
                    response = httpx.get(
                        f"{endpoint.base_url}/v1/status",
                        headers={"Authorization": f"Bearer {endpoint.token}"},
                        timeout=1,
                    )
                    if response.status_code == 200:
                        return endpoint
        time.sleep(0.05)
    raise AssertionError("agent did not become ready")


def start_agent(home: Path, *arguments: str, cli: str = CLI, **env: str) -> RunningAgent:
    """`sparecycles agent --foreground [arguments]` in ``home``, once its API answers."""
    paths = AppPaths.from_environment({"SPARECYCLES_HOME": str(home)})
    console_file = home.parent / f"agent-console-{time.monotonic_ns()}.txt"
    with console_file.open("wb") as console:
        process = subprocess.Popen(
            [cli, "agent", "--foreground", *arguments],
            env=agent_env(home, **env),
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    return RunningAgent(process, paths, wait_for_endpoint(paths, process, console_file), console_file)


@pytest.fixture
def agent(home: Path) -> Iterator[RunningAgent]:
    running = start_agent(home)
    yield running
    running.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests of the bundle last (`make test` builds it meanwhile); skip tests marked `gpu` where NVML sees
    no NVIDIA GPU, saying why."""
    items[:] = [item for item in items if not _uses_the_bundle(item)] + [
        item for item in items if _uses_the_bundle(item)
    ]
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    from sparecycles.agent.sensors.gpu import NvmlGpuInventory

    discovery = NvmlGpuInventory().discover()
    if discovery.available:
        return
    skip = pytest.mark.skip(reason=f"needs an NVIDIA GPU: {discovery.reason}")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each marketplace test runs on SQLite and on PostgreSQL (a database of its own, dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'market.db'}"
        return
    admin_url = os.environ.get("SPARECYCLES_TEST_POSTGRES")
    if not admin_url:
        pytest.skip("no PostgreSQL here: `make test` starts Debian's cluster and sets SPARECYCLES_TEST_POSTGRES")
    from sqlalchemy import create_engine, text

    name = f"market_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()
