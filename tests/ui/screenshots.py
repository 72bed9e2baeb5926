"""The README's screenshots, made by the real GUI against a real agent (simulated GPU, a job running in
Docker, known leases in its ledger), in light and dark. Not part of the test suite (its name does not start
with ``test_``): docs/screenshots/make.sh runs it on a fresh Xvfb display and writes docs/screenshots/.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from PySide6.QtCore import QDate
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.ui.agent_link import LinkState
from sparecycles.ui.main import build_app
from sparecycles.ui.onboarding import OnboardingWizard
from sparecycles.ui.schedule_cells import cells_from_rules
from sparecycles.ui.theme import apply_theme
from tests.conftest import start_agent
from tests.jobs.conftest import (  # noqa: F401 - fixtures
    LocalRegistry,
    busybox_image,
    docker_client,
    docker_exec_works,
    local_registry,
)
from tests.test_ledger_cli import EXAMPLE_TARIFF, write_known_leases

OUT = Path(os.environ.get("SPARECYCLES_SCREENSHOTS", Path(__file__).resolve().parents[2] / "docs" / "screenshots"))
SIZE = (1180, 760)


def test_screenshots(home: Path, local_registry: LocalRegistry, busybox_image: str, qtbot: QtBot) -> None:  # noqa: F811
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '[work]\nmode = "schedule"\n[schedule]\nwindows = ["weekdays 18:00-08:00", "Sat-Sun"]\n'
        f'[jobs]\nallowed_registries = ["{local_registry.host}"]\n'
        f'[marketplace]\nidentity_key_file = "{home / "identity.key"}"\n'
    )
    agent = start_agent(home, "--simulated-gpus", "1")
    write_known_leases(agent, home)  # October 2026: the earnings page shows two weeks of figures
    try:
        with ControlClient(agent.endpoint) as client:
            client.set_tariff(EXAMPLE_TARIFF.read_text())
            client.set_token_rate(Decimal("0.5"), "EUR")
            client.update_settings({"schedule": {"windows": ["daily"]}})  # so the job may run now
            client.wallet_call("POST", "/watch", {"name": "hardware-wallet", "address": Account.create().address})
            client.wallet_call("POST", "/hardware-wallet/use")
            # A CPU job: a simulated GPU cannot be given to a container (Docker would ask for NVIDIA's runtime).
            spec = {"image": busybox_image, "command": ["sleep", "600"], "cpus": 1.0, "max_runtime_s": 900}
            client.submit_job(spec)
        OUT.mkdir(parents=True, exist_ok=True)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        for theme in ("light", "dark"):
            apply_theme(app, theme)
            shoot_theme(agent.paths, theme, qtbot)
    finally:
        agent.stop()


def shoot_theme(paths: Any, theme: str, qtbot: QtBot) -> None:
    link, window, _tray = build_app(paths, start_agent=None, tray_available=False)
    window.resize(*SIZE)
    window.show()
    link.start()
    qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED and link.status is not None, timeout=30_000)
    for page in ("dashboard", "earnings", "schedule", "wallet"):
        window.show_page(page)
        if page == "schedule":  # a studio's nights and weekends, painted (not saved: the job keeps running)
            schedule: Any = window.page("schedule")
            qtbot.wait(1500)
            schedule.when.grid.set_cells(cells_from_rules(["Mon-Fri 19:00-08:00", "Sat-Sun"]))
        if page == "earnings":  # the known leases are in October 2026
            earnings: Any = window.page("earnings")
            earnings.since.setDate(QDate(2026, 10, 1))
            earnings.by.setCurrentIndex(earnings.by.findData("week"))
            earnings.reload()
        qtbot.wait(2500)  # the page's first answers from the agent
        window.grab().save(str(OUT / f"{page}-{theme}.png"))
    wizard = OnboardingWizard(link)
    wizard.resize(820, 600)
    wizard.show()
    qtbot.wait(1500)
    wizard.grab().save(str(OUT / f"onboarding-{theme}.png"))
    wizard.close()
    window.hide()  # not close(): without a tray that asks whether to quit
    link.close()
