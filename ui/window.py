"""The main window: a sidebar of pages beside the page shown, the agent's banner above them, and the
"agent stopped" panel in their place when it died. Closing it keeps the app in the tray (when there is
one); quitting asks whether the agent should stop too."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from PySide6.QtCore import QCoreApplication, QSize, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import sparecycles
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.agent_panel import AgentBanner, AgentStoppedPanel
from sparecycles.ui.pages import PageFactory

STOP_WAIT_MS = 5000  # quit anyway when the agent does not confirm its shutdown by then


class QuitChoice(Enum):
    STOP_AGENT = "stop_agent"
    LEAVE_RUNNING = "leave_running"
    CANCEL = "cancel"


def ask_quit_choice(parent: QWidget) -> QuitChoice:
    """The real question, as a message box (tests inject their answer instead)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(parent.tr("Quit SpareCycles"))
    box.setText(parent.tr("Stop the SpareCycles agent too?"))
    box.setInformativeText(
        parent.tr("Left running, it keeps renting out your GPUs when they are idle, without this window.")
    )
    stop = box.addButton(parent.tr("Stop the agent"), QMessageBox.ButtonRole.DestructiveRole)
    leave = box.addButton(parent.tr("Leave it running"), QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(leave)
    box.exec()
    clicked = box.clickedButton()
    if clicked is stop:
        return QuitChoice.STOP_AGENT
    if clicked is leave:
        return QuitChoice.LEAVE_RUNNING
    return QuitChoice.CANCEL


def _page_label(name: str) -> str:
    labels = {
        "dashboard": QCoreApplication.translate("MainWindow", "Dashboard"),
        "earnings": QCoreApplication.translate("MainWindow", "Earnings"),
        "schedule": QCoreApplication.translate("MainWindow", "Schedule"),
        "wallet": QCoreApplication.translate("MainWindow", "Wallet"),
        "settings": QCoreApplication.translate("MainWindow", "Settings"),
        "fleet": QCoreApplication.translate("MainWindow", "Studio fleet"),
    }
    return labels.get(name, name.replace("_", " ").capitalize())


class MainWindow(QMainWindow):
    """Pages are built when first shown (the first one at once), so the window paints without waiting on
    any page's imports. ``tray_available`` decides what closing does; ``ask_quit`` and ``quit_app`` are the
    question and the exit, injectable for tests. ``first_painted`` is emitted once, after the first paint."""

    first_painted = Signal()
    _painted = False

    def __init__(
        self,
        link: AgentLink,
        pages: list[tuple[str, PageFactory]],
        *,
        tray_available: bool,
        ask_quit: Callable[[QWidget], QuitChoice] = ask_quit_choice,
        quit_app: Callable[[], None] = QApplication.quit,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.link = link
        self.tray_available = tray_available
        self._ask_quit = ask_quit
        self._quit_app = quit_app
        self._quitting = False
        self.onboarding: QWidget | None = None  # the first start's onboarding wizard, while open
        self._onboarded = False
        self.setWindowTitle(self.tr("SpareCycles {version}").format(version=sparecycles.__version__))
        self.resize(1000, 680)

        self.banner = AgentBanner()
        self.stopped_panel = AgentStoppedPanel(link)
        self.sidebar = QListWidget()
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFixedWidth(170)
        self.sidebar.setSpacing(4)
        self.stack = QStackedWidget()
        self._factories: dict[str, PageFactory] = {}
        self._names: list[str] = []
        self._pages: dict[str, QWidget] = {}
        for name, factory in pages:
            self._factories[name] = factory
            self._names.append(name)
            self.sidebar.addItem(QListWidgetItem(_page_label(name)))
            self.stack.addWidget(QWidget())  # replaced by the page when first shown
        self.sidebar.currentRowChanged.connect(self._show_row)

        self.body = QWidget()
        body_layout = QHBoxLayout(self.body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(self.sidebar)
        body_layout.addWidget(self.stack, 1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.stopped_panel, 1)
        layout.addWidget(self.body, 1)
        self.setCentralWidget(central)

        app_menu = self.menuBar().addMenu(self.tr("&SpareCycles"))
        self.quit_action = app_menu.addAction(self.tr("&Quit"))
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.request_quit)

        link.state_changed.connect(lambda state, message: self.show_agent_state(LinkState(state), message))
        self.show_agent_state(link.state, link.message)
        if self._names:
            self.sidebar.setCurrentRow(0)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            QTimer.singleShot(0, self.first_painted.emit)  # after this paint reaches the screen

    # -- pages ---------------------------------------------------------------------------------------

    def page(self, name: str) -> QWidget:
        """The page called ``name``, built now if it was not yet."""
        if name not in self._pages:
            row = self._names.index(name)
            page = self._factories[name](self.link)
            placeholder = self.stack.widget(row)
            self.stack.insertWidget(row, page)
            if placeholder is not None:
                self.stack.removeWidget(placeholder)
                placeholder.deleteLater()
            self._pages[name] = page
            title = getattr(page, "title", None)
            if isinstance(title, str) and title:
                self.sidebar.item(row).setText(title)
        return self._pages[name]

    def show_page(self, name: str) -> QWidget:
        self.sidebar.setCurrentRow(self._names.index(name))
        return self.page(name)

    def _show_row(self, row: int) -> None:
        if 0 <= row < len(self._names):
            self.stack.setCurrentWidget(self.page(self._names[row]))

    def open_dashboard(self) -> None:
        """The tray's "Open dashboard" (and a click on the icon)."""
        if "dashboard" in self._names:
            self.show_page("dashboard")
        self.bring_to_front()

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    # -- the agent's life -------------------------------------------------------------------------------

    def show_agent_state(self, state: LinkState, message: str) -> None:
        stopped = state in (LinkState.DIED, LinkState.FAILED)
        self.banner.show_state(state)
        if stopped:
            self.stopped_panel.show_state(state, message)
        self.stopped_panel.setVisible(stopped)
        self.body.setVisible(not stopped)

    def onboard_when_connected(self, open_wizard: Callable[[AgentLink, QWidget], QWidget | None]) -> None:
        """Once the agent first answers, ``open_wizard(link, self)`` (the onboarding on a first start): its
        steps read the agent's status, so it waits for the link instead of opening on an empty one."""

        def connected(state: str, _message: str) -> None:
            if LinkState(state) is LinkState.CONNECTED and self.onboarding is None and not self._onboarded:
                self._onboarded = True
                self.onboarding = open_wizard(self.link, self)

        if self.link.state is LinkState.CONNECTED:
            connected(LinkState.CONNECTED.value, "")
        else:
            self.link.state_changed.connect(connected)

    # -- closing and quitting -----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._quitting:
            event.accept()
            return
        if self.tray_available:
            event.ignore()
            self.hide()  # the tray icon stays; its menu brings the window back or quits
            return
        self.request_quit()  # without a tray, closing the window is quitting
        event.setAccepted(self._quitting)

    def request_quit(self) -> bool:
        """Quit, asking first whether to stop the agent (unless it is not running); False if cancelled."""
        if self.link.state in (LinkState.DIED, LinkState.FAILED):
            return self.finish_quit(QuitChoice.LEAVE_RUNNING)
        return self.finish_quit(self._ask_quit(self))

    def finish_quit(self, choice: QuitChoice) -> bool:
        """Act on the answer to "stop the agent too?"."""
        if choice is QuitChoice.CANCEL:
            return False
        if choice is QuitChoice.STOP_AGENT:
            self.banner.label.setText(self.tr("Stopping the SpareCycles agent…"))
            self.banner.show()
            self.link.stop_agent(lambda _result: self._exit())
            QTimer.singleShot(STOP_WAIT_MS, self._exit)
        else:
            self._exit()
        return True

    def _exit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.close()
        self._quit_app()
