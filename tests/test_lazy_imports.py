"""The agent and the CLI start without loading the heavy libraries (web3, Docker SDK, Qt)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("web3", "docker", "PySide6")


@pytest.mark.parametrize(
    "module",
    ["sparecycles.agent.daemon", "sparecycles.cli", "sparecycles.agent.chain.client", "sparecycles.agent.chain.vault"],
)
def test_start_up_modules_do_not_import_heavy_libraries(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_cli_loads_no_client_or_process_library_before_a_command_needs_one() -> None:
    """Every command, `--version` and `--help` included, pays for what the CLI module imports: the HTTP
    clients (httpx, with its own CLI's click and rich.progress), psutil and the marketplace's database stack
    load only in the commands that use them."""
    later = ("httpx", "psutil", "sqlalchemy", "eth_account", "sparecycles.control.client", "sparecycles.requester")
    code = f"import sys, sparecycles.cli; print(' '.join(m for m in {later!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
