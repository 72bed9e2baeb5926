"""The main window's pages, in the order of its sidebar. Each page is a QWidget built from the AgentLink
(its only way to the agent) with a translated ``title``; the window shows one at a time."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from sparecycles.ui.agent_link import AgentLink

PageFactory = Callable[[AgentLink], QWidget]


def _dashboard(link: AgentLink) -> QWidget:
    from sparecycles.ui.pages.dashboard import DashboardPage

    return DashboardPage(link)


def _earnings(link: AgentLink) -> QWidget:
    from sparecycles.ui.pages.earnings import EarningsPage  # pyqtgraph and NumPy: a fifth of a second

    return EarningsPage(link)


def _schedule(link: AgentLink) -> QWidget:
    from sparecycles.ui.pages.schedule import SchedulePage

    return SchedulePage(link)


def _wallet(link: AgentLink) -> QWidget:
    from sparecycles.ui.pages.wallet import WalletPage  # segno, for the QR code

    return WalletPage(link)


def _settings(link: AgentLink) -> QWidget:
    from sparecycles.ui.pages.settings import SettingsPage

    return SettingsPage(link)


def _fleet(link: AgentLink) -> QWidget:
    from sparecycles.ui.pages.fleet import FleetPage

    return FleetPage(link)


def page_factories() -> list[tuple[str, PageFactory]]:
    """(name, factory) per page. Each page's module is imported when the page is first built, so the
    window paints without waiting on pages the user has not opened (the charts' pyqtgraph above all)."""
    return [
        ("dashboard", _dashboard),
        ("earnings", _earnings),
        ("schedule", _schedule),
        ("wallet", _wallet),
        ("settings", _settings),
        ("fleet", _fleet),
    ]
