"""The schedule editor: when the GPUs may work (the mode, the idle threshold, the painted week), what
always pauses them (the game and app list), and how hot or hungry they may get.

Everything is read from and saved to the agent's settings ([work], [schedule], [games], [gpu]) through
the AgentLink; a value the agent refuses is shown with its reason and nothing is half-saved.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sparecycles.control.models import StatusDocument
from sparecycles.durations import parse_duration
from sparecycles.schedule import ScheduleError
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.schedule_cells import cells_from_rules, rules_from_cells
from sparecycles.ui.widgets.settings_call import AgentSettingsForm, changed_fields
from sparecycles.ui.widgets.week_grid import WeekGrid

NO_POWER_LIMIT = 29  # the power spin box's "no limit" position, just under the agent's lowest (30 %)


class WorkWhenEditor(QWidget):
    """The mode, the idle threshold and the painted week: shared by this page and the onboarding wizard."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = QComboBox()
        for value, label in (
            ("idle", self.tr("When I am away from the computer")),
            ("schedule", self.tr("Only in the painted hours")),
            ("idle_or_schedule", self.tr("When I am away, or in the painted hours")),
            ("idle_in_schedule", self.tr("When I am away, but only in the painted hours")),
        ):
            self.mode.addItem(label, value)
        self.idle_minutes = QSpinBox()
        self.idle_minutes.setRange(1, 24 * 60)
        self.idle_minutes.setSuffix(self.tr(" min"))
        self.grid = WeekGrid()
        self.rules_label = QLabel()
        self.rules_label.setWordWrap(True)
        self.grid.changed.connect(self._show_rules)
        self.shown: dict[str, dict[str, Any]] | None = None  # the values as loaded; None until the agent's arrive
        form = QFormLayout()
        form.addRow(self.tr("Work:"), self.mode)
        form.addRow(self.tr("Away after:"), self.idle_minutes)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(QLabel(self.tr("Hours to work (drag to paint, start on a painted hour to erase):")))
        layout.addWidget(self.grid)
        layout.addWidget(self.rules_label)
        self._show_rules()

    def load(self, settings: dict[str, Any]) -> None:
        work = settings.get("work", {})
        index = self.mode.findData(work.get("mode", "idle"))
        self.mode.setCurrentIndex(max(index, 0))
        self.idle_minutes.setValue(max(1, round(parse_duration(str(work.get("idle_threshold", "10m"))) / 60)))
        try:
            self.grid.set_cells(cells_from_rules(settings.get("schedule", {}).get("windows", [])))
        except ScheduleError as exc:
            self.grid.set_cells([])  # the agent's windows stay as they are unless hours are painted here
            self.rules_label.setText(self.tr("The schedule could not be shown: {}").format(exc))
        else:
            self._show_rules()
        self.shown = self.values()

    def values(self) -> dict[str, dict[str, Any]]:
        """Everything the editor shows, as settings."""
        return {
            "work": {"mode": self.mode.currentData(), "idle_threshold": f"{self.idle_minutes.value()}m"},
            "schedule": {"windows": rules_from_cells(self.grid.cells())},
        }

    def _show_rules(self) -> None:
        rules = rules_from_cells(self.grid.cells())
        self.rules_label.setText(
            self.tr("Scheduled: {}").format("; ".join(rules)) if rules else self.tr("No hours painted.")
        )

    def changes(self) -> dict[str, dict[str, Any]]:
        """What the user changed since the settings loaded (nothing before they did: see ``shown``)."""
        return changed_fields(self.values(), self.shown) if self.shown is not None else {}


class SchedulePage(AgentSettingsForm, QWidget):
    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Schedule")
        self.when = WorkWhenEditor()
        self.use_builtin_games = QCheckBox(self.tr("Pause for the built-in list of games"))
        self.games = QPlainTextEdit()
        self.games.setPlaceholderText(self.tr("One program per line, e.g. blender.exe"))
        self.games.setMaximumHeight(90)
        self.use_builtin_games.toggled.connect(lambda on: self.games.setEnabled(not on))
        self.save_button = QPushButton(self.tr("Save"))
        self.save_button.clicked.connect(self.save)
        self.message = QLabel()
        self.message.setWordWrap(True)

        when_box = QGroupBox(self.tr("When to work"))
        QVBoxLayout(when_box).addWidget(self.when)
        games_box = QGroupBox(self.tr("Programs that always pause work"))
        games_layout = QVBoxLayout(games_box)
        games_layout.addWidget(self.use_builtin_games)
        games_layout.addWidget(self.games)
        gpu_box = self._limits_box()
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.save_button)
        self.studio_note = QLabel()
        self.studio_note.setWordWrap(True)
        self.studio_note.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.studio_note)
        layout.addWidget(when_box)
        row = QHBoxLayout()
        row.addWidget(games_box, 1)
        row.addWidget(gpu_box, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addStretch(1)
        link.status_changed.connect(self.show_studio)
        if link.status is not None:
            self.show_studio(link.status)
        self.start_reading()

    def _limits_box(self) -> QGroupBox:
        self.max_temperature = QSpinBox()
        self.max_temperature.setRange(50, 95)
        self.max_temperature.setSuffix(" °C")
        self.power_limit = QSpinBox()
        self.power_limit.setRange(NO_POWER_LIMIT, 100)
        self.power_limit.setSuffix(" %")
        self.power_limit.setSpecialValueText(self.tr("no limit"))
        box = QGroupBox(self.tr("Limits"))
        form = QFormLayout(box)
        form.addRow(self.tr("Pause above:"), self.max_temperature)
        form.addRow(self.tr("Power limit while working:"), self.power_limit)
        return box

    def show_studio(self, status: StatusDocument) -> None:
        """In a studio group, these are the owner's own settings: the studio's apply too, the stricter kept."""
        fleet = status.fleet
        self.studio_note.setVisible(fleet is not None)
        if fleet is not None:
            self.studio_note.setText(
                self.tr(
                    "Schedule set by {studio} (group {group}). What you set here still applies where it is "
                    "stricter: shorter hours, a lower temperature or power limit, more games that pause work."
                ).format(studio=fleet.studio, group=fleet.group)
            )

    def load(self, settings: dict[str, Any]) -> None:
        self.when.load(settings)
        pause = settings.get("games", {}).get("pause_processes")
        self.use_builtin_games.setChecked(pause is None)
        self.games.setPlainText("\n".join(pause or []))
        gpu = settings.get("gpu", {})
        self.max_temperature.setValue(int(gpu.get("max_temperature_c", 83)))
        limit = gpu.get("power_limit_percent")
        self.power_limit.setValue(NO_POWER_LIMIT if limit is None else int(limit))
        self.shown_as_loaded()

    def values(self) -> dict[str, dict[str, Any]]:
        """Everything the page shows, as settings."""
        values = self.when.values()
        games = [line.strip() for line in self.games.toPlainText().splitlines() if line.strip()]
        values["games"] = {"pause_processes": None if self.use_builtin_games.isChecked() else games}
        limit = self.power_limit.value()
        values["gpu"] = {
            "max_temperature_c": self.max_temperature.value(),
            "power_limit_percent": None if limit == NO_POWER_LIMIT else limit,
        }
        return values

    def read_problem(self, message: str) -> str:
        return self.tr("Could not read the schedule from the agent: {}").format(message)

    def saved_text(self) -> str:
        return self.tr("Saved: the agent follows the new schedule now.")
