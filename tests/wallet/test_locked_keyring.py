"""A keyring that is locked and cannot be unlocked (no desktop to show gnome-keyring's prompt) refuses the wallet
with a message that says what to do, and nothing is written: a real gnome-keyring in a D-Bus session of its
own, started but never unlocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
from pathlib import Path
from sparecycles.agent.wallet.registry import WalletRegistry
from sparecycles.agent.wallet.service import WalletError, WalletService
from sparecycles.agent.wallet.vault import KeyringVault
service = WalletService(WalletRegistry(Path(sys.argv[1]) / "wallets.json"), KeyringVault())
try:
    service.create("main")
except WalletError as exc:
    print("REFUSED", exc)
else:
    print("CREATED")
"""


def test_a_locked_keyring_that_cannot_be_unlocked_refuses_with_what_to_do(tmp_path: Path) -> None:
    if shutil.which("dbus-run-session") is None or shutil.which("gnome-keyring-daemon") is None:
        pytest.skip("needs dbus-run-session and gnome-keyring (installed by `make test`)")
    state = tmp_path / "state"
    state.mkdir()
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment["XDG_DATA_HOME"] = str(tmp_path / "data")  # a keyring folder of its own: no login collection
    script = tmp_path / "create.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [
            "dbus-run-session",
            "--",
            "bash",
            "-c",
            'gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; exec "$0" "$@"',
            sys.executable,
            str(script),
            str(state),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert "REFUSED" in result.stdout, result.stdout + result.stderr
    assert "could not be reached" in result.stdout
    assert "unlock it" in result.stdout
    assert "watch-only payout address" in result.stdout
    assert list(state.iterdir()) == []  # no wallets.json: nothing refers to a key that was not kept
