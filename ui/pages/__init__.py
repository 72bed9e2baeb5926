"""The main window's pages, in the order of its sidebar. Each page is a QWidget built from the AgentLink
(its only way to the agent) with a translated ``title``; the window shows one at a time."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from sparecycles.ui.agent_link import AgentLink

PageFactory = Callable[[AgentLink], QWidget]


def page_factories() -> list[tuple[str, PageFactory]]:
    """(name, factory) per page; imported here, not at module import, to keep start-up light."""
    from sparecycles.ui.pages.dashboard import DashboardPage
    from sparecycles.ui.pages.earnings import EarningsPage
    from sparecycles.ui.pages.schedule import SchedulePage
    from sparecycles.ui.pages.settings import SettingsPage
    from sparecycles.ui.pages.wallet import WalletPage

    return [
        ("dashboard", DashboardPage),
        ("earnings", EarningsPage),
        ("schedule", SchedulePage),
        ("wallet", WalletPage),
        ("settings", SettingsPage),
    ]
