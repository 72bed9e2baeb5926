"""A real `sparecycles market serve` process for the tests that need one (TLS, backups under load), and the
operator's commands on the same data folder."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import CLI, agent_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MarketProcess:
    """One marketplace server on ``folder``/data, its operator key in ``folder``/operator.key."""

    folder: Path
    port: int = field(default_factory=free_port)
    data_dir: Path | None = None  # default: folder/data
    process: subprocess.Popen[bytes] | None = None
    verify: ssl.SSLContext | bool = True
    db_url: str | None = None  # default: SQLite in the data folder
    serve_arguments: tuple[str, ...] = ()  # what every start() passes to `market serve`

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def data(self) -> Path:
        return self.data_dir or self.folder / "data"

    @property
    def stderr_file(self) -> Path:
        return self.folder / f"server-{self.port}.err"

    @property
    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace")

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def options(self) -> list[str]:
        database = ["--db", self.db_url] if self.db_url else []
        return ["--data-dir", str(self.data), "--key-file", str(self.folder / "operator.key"), *database]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`sparecycles market ARGS --data-dir …` (backup and restore need no operator key)."""
        return subprocess.run(
            [CLI, "market", *args, "--data-dir", str(self.data)],
            env=agent_env(self.folder),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def operator(self, *args: str) -> str:
        """An operator's command (`add-requester`, `credit`, …) that must succeed; what it printed."""
        result = subprocess.run(
            [CLI, "market", *args, *self.options()],
            env=agent_env(self.folder),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def start(self, *arguments: str, scheme: str = "http") -> None:
        """Start the server and wait until GET /v1/info answers over ``scheme``."""
        with self.stderr_file.open("ab") as stderr:
            self.process = subprocess.Popen(
                [CLI, "market", "serve", "--port", str(self.port), *self.options(), *self.serve_arguments, *arguments],
                env=agent_env(self.folder),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(scheme)}/v1/info", timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.stderr
            time.sleep(0.1)
        raise AssertionError(f"the marketplace did not start: {self.stderr}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
