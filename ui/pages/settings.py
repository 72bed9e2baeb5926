"""The settings page: the marketplace, prices, what jobs may do on this PC (network, disk), which GPUs are
shared, and the app's own look; plus a way back into each onboarding step.

Agent settings are saved through the AgentLink in one change, so a refused value (with the agent's reason,
shown here) leaves everything as it was. The theme and start-at-login are the GUI's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sparecycles.control.models import StatusDocument
from sparecycles.sizes import parse_size
from sparecycles.ui import theme
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.notifications import NotificationKind, NotificationPreferences, kind_label
from sparecycles.ui.onboarding import OnboardingWizard, Step
from sparecycles.ui.widgets.settings_call import AgentSettingsForm

GIB = 1024**3
ThemeApplier = Callable[[QApplication, Any], object]


class SettingsPage(AgentSettingsForm, QWidget):
    def __init__(
        self, link: AgentLink, parent: QWidget | None = None, *, apply_theme: ThemeApplier | None = None
    ) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Settings")
        self._apply_theme: ThemeApplier = apply_theme or theme.apply_theme
        self._notifications = NotificationPreferences(link.paths.config_dir)
        self._disabled_gpus: list[str] = []
        self.wizard: OnboardingWizard | None = None

        body = QWidget()
        layout = QVBoxLayout(body)
        for box in (self._market_box(), self._jobs_box(), self._gpus_box(), self._app_box(), self._steps_box()):
            layout.addWidget(box)
        self.save_button = QPushButton(self.tr("Save"))
        self.save_button.clicked.connect(self.save)
        self.message = QLabel()
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        link.status_changed.connect(self._show_gpus)
        self._show_gpus(link.status)
        self.start_reading()

    def _market_box(self) -> QGroupBox:
        self.private_market = QRadioButton(self.tr("The private marketplace on this computer"))
        self.remote_market = QRadioButton(self.tr("The marketplace at:"))
        market_choice = QButtonGroup(self)
        market_choice.addButton(self.private_market)
        market_choice.addButton(self.remote_market)
        self.market_url = QLineEdit()
        self.market_url.setPlaceholderText("https://")
        self.market_url.textEdited.connect(lambda _text: self.remote_market.setChecked(True))
        self.margin = QDoubleSpinBox()
        self.margin.setRange(0, 10_000)
        self.margin.setDecimals(1)
        self.margin.setSuffix(" %")
        self.floor = QLineEdit()
        self.floor.setToolTip(self.tr("In the payout token's base units per GPU-hour; 0: no floor beyond power."))
        box = QGroupBox(self.tr("Marketplace and prices"))
        form = QFormLayout(box)
        form.addRow(self.private_market)
        form.addRow(self.remote_market, self.market_url)
        form.addRow(self.tr("Margin above electricity:"), self.margin)
        form.addRow(self.tr("Lowest price per GPU-hour:"), self.floor)
        return box

    def _jobs_box(self) -> QGroupBox:
        self.egress = QComboBox()
        self.egress.addItem(self.tr("Never"), "never")
        self.egress.addItem(self.tr("Only the addresses a job declares"), "per_job")
        self.private_networks = QCheckBox(self.tr("Let jobs reach this computer's own networks (a studio's servers)"))
        self.image_cache = QSpinBox()
        self.image_cache.setRange(1, 10 * 1024)
        self.image_cache.setSuffix(" GiB")
        box = QGroupBox(self.tr("What jobs may do"))
        form = QFormLayout(box)
        form.addRow(self.tr("Network:"), self.egress)
        form.addRow(self.private_networks)
        form.addRow(self.tr("Disk for job images:"), self.image_cache)
        return box

    def _gpus_box(self) -> QGroupBox:
        self.gpu_box = QGroupBox(self.tr("GPUs to share"))
        self.gpu_layout = QVBoxLayout(self.gpu_box)
        self.gpu_checks: dict[int, QCheckBox] = {}
        return self.gpu_box

    def _app_box(self) -> QGroupBox:
        self.start_at_login = QCheckBox(self.tr("Start SpareCycles when I log in"))
        self.start_at_login.setToolTip(self.tr("An autostart entry for your desktop session, written by the agent."))
        self.theme = QComboBox()
        self.theme.addItem(self.tr("Follow the system"), "system")
        self.theme.addItem(self.tr("Light"), "light")
        self.theme.addItem(self.tr("Dark"), "dark")
        chosen = theme.saved_theme(self.link.paths.config_dir)
        self.theme.setCurrentIndex(max(self.theme.findData(chosen), 0))
        self.theme.currentIndexChanged.connect(self._theme_chosen)
        box = QGroupBox(self.tr("This app"))
        form = QFormLayout(box)
        form.addRow(self.start_at_login)
        form.addRow(self.tr("Theme:"), self.theme)
        self.notification_checks: dict[NotificationKind, QCheckBox] = {}
        for kind in NotificationKind:
            check = QCheckBox(kind_label(kind))
            check.setChecked(self._notifications.enabled(kind))
            check.toggled.connect(lambda on, chosen_kind=kind: self._notifications.set_enabled(chosen_kind, on))
            self.notification_checks[kind] = check
            form.addRow(self.tr("Notify:") if len(self.notification_checks) == 1 else "", check)
        return box

    def _steps_box(self) -> QGroupBox:
        box = QGroupBox(self.tr("Setup steps"))
        layout = QHBoxLayout(box)
        self.step_buttons: dict[Step, QPushButton] = {}
        for step, name in self._step_names().items():
            button = QPushButton(name)
            button.clicked.connect(lambda _checked=False, chosen_step=step: self.open_step(chosen_step))
            self.step_buttons[step] = button
            layout.addWidget(button)
        layout.addStretch(1)
        return box

    def _step_names(self) -> dict[Step, str]:
        return {
            Step.WELCOME: self.tr("Welcome"),
            Step.MACHINE: self.tr("This computer"),
            Step.MARKETPLACE: self.tr("Marketplace"),
            Step.PAYOUT: self.tr("Payouts"),
            Step.TARIFF: self.tr("Electricity"),
            Step.WORK: self.tr("When to work"),
            Step.BENCHMARK: self.tr("Benchmark"),
        }

    # -- agent settings -----------------------------------------------------------------------------

    def load(self, settings: dict[str, Any]) -> None:
        market = settings.get("marketplace", {})
        url = market.get("url")
        (self.remote_market if url else self.private_market).setChecked(True)
        self.market_url.setText(url or "")
        self.floor.setText(str(market.get("price_floor_per_gpu_hour", 0)))
        self.margin.setValue(float(settings.get("ledger", {}).get("margin", 0.2)) * 100)
        jobs = settings.get("jobs", {})
        self.egress.setCurrentIndex(max(self.egress.findData(jobs.get("egress", "never")), 0))
        self.private_networks.setChecked(bool(jobs.get("private_networks", False)))
        self.image_cache.setValue(max(1, round(parse_size(str(jobs.get("image_cache", "50GiB"))) / GIB)))
        self.start_at_login.setChecked(bool(settings.get("general", {}).get("start_at_login", False)))
        self._disabled_gpus = [str(entry) for entry in settings.get("gpu", {}).get("disabled", [])]
        self._show_gpus(self.link.status)
        for check in self.gpu_checks.values():
            self._check_gpu(check)
        self.shown_as_loaded()

    def read_problem(self, message: str) -> str:
        return self.tr("Could not read the settings from the agent: {}").format(message)

    def _show_gpus(self, status: StatusDocument | None) -> None:
        """A box for each GPU the agent reports; only a new box is ticked from the settings, so the user's
        choice stays until Save (status documents come about once a second)."""
        gpus = status.gpus if status is not None else []
        known = {gpu.index for gpu in gpus}
        for index in list(self.gpu_checks):
            if index not in known:
                self.gpu_checks.pop(index).deleteLater()
        for gpu in gpus:
            check = self.gpu_checks.get(gpu.index)
            if check is None:
                check = QCheckBox(self.tr("GPU {index}: {name}").format(index=gpu.index, name=gpu.name))
                check.setProperty("index", gpu.index)
                check.setProperty("uuid", gpu.uuid)
                self._check_gpu(check)
                self.gpu_checks[gpu.index] = check
                self.gpu_layout.addWidget(check)
        if not gpus and not self.gpu_checks:
            self.gpu_box.setTitle(self.tr("GPUs to share (none found)"))
        else:
            self.gpu_box.setTitle(self.tr("GPUs to share"))

    def _check_gpu(self, check: QCheckBox) -> None:
        """Ticked unless the settings' ``gpu.disabled`` names the GPU (by index or UUID)."""
        check.setChecked(not set(self._entries_of(check)) & set(self._disabled_gpus))

    @staticmethod
    def _entries_of(check: QCheckBox) -> tuple[str, str]:
        return str(check.property("index")), str(check.property("uuid"))

    def _floor_value(self) -> int | str:
        """A whole number as such; anything else as typed, so the agent's refusal says what is allowed."""
        text = self.floor.text().strip()
        try:
            return int(text)
        except ValueError:
            return text

    def _disabled_now(self) -> list[str]:
        """``gpu.disabled`` as the boxes say: the settings' entries as written while they still hold (a GPU not
        shown now, one still unticked), then the index of each GPU unticked here."""
        ticked = {entry for check in self.gpu_checks.values() if check.isChecked() for entry in self._entries_of(check)}
        disabled = [entry for entry in self._disabled_gpus if entry not in ticked]
        for index, check in sorted(self.gpu_checks.items()):
            if not check.isChecked() and not set(self._entries_of(check)) & set(disabled):
                disabled.append(str(index))
        return disabled

    def values(self) -> dict[str, dict[str, Any]]:
        """Everything the page shows of the agent's settings, as settings."""
        return {
            "general": {"start_at_login": self.start_at_login.isChecked()},
            "marketplace": {
                "url": self.market_url.text().strip() if self.remote_market.isChecked() else None,
                "price_floor_per_gpu_hour": self._floor_value(),
            },
            "ledger": {"margin": round(self.margin.value() / 100, 4)},
            "jobs": {
                "egress": self.egress.currentData(),
                "private_networks": self.private_networks.isChecked(),
                "image_cache": f"{self.image_cache.value()}GiB",
            },
            "gpu": {"disabled": self._disabled_now()},
        }

    # -- the app's own --------------------------------------------------------------------------------

    def _theme_chosen(self) -> None:
        choice = str(self.theme.currentData())
        theme.save_theme(self.link.paths.config_dir, choice)  # type: ignore[arg-type]
        app = QApplication.instance()
        if isinstance(app, QApplication):
            self._apply_theme(app, choice)

    def open_step(self, step: Step) -> OnboardingWizard:
        """The onboarding wizard again, at ``step`` (the user may go on from there, or close it)."""
        if self.wizard is not None:
            self.wizard.close()
        self.wizard = OnboardingWizard(self.link, self, start_at=step)
        self.wizard.finished.connect(lambda _result: self.reload())
        self.wizard.show()
        return self.wizard
