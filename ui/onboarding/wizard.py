"""The onboarding wizard's order of steps, and the "completed" flag the main window asks at start-up."""

from __future__ import annotations

from enum import IntEnum

from PySide6.QtWidgets import QWidget, QWizard

from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.gui_prefs import mark_onboarding_completed, onboarding_completed
from sparecycles.ui.onboarding.machine_steps import MachineStep, WelcomeStep
from sparecycles.ui.onboarding.market_steps import MarketplaceStep, TariffStep
from sparecycles.ui.onboarding.payout_step import PayoutStep
from sparecycles.ui.onboarding.work_steps import BenchmarkStep, WorkWhenStep


class Step(IntEnum):
    WELCOME = 0
    MACHINE = 1
    MARKETPLACE = 2
    PAYOUT = 3
    TARIFF = 4
    WORK = 5
    BENCHMARK = 6


class OnboardingWizard(QWizard):
    """Finishing it (or skipping its last step, the benchmark) marks onboarding completed."""

    def __init__(self, link: AgentLink, parent: QWidget | None = None, *, start_at: Step = Step.WELCOME) -> None:
        super().__init__(parent)
        self.link = link
        self.setWindowTitle(self.tr("Set up SpareCycles"))
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.steps = {
            Step.WELCOME: WelcomeStep(),
            Step.MACHINE: MachineStep(link),
            Step.MARKETPLACE: MarketplaceStep(link),
            Step.PAYOUT: PayoutStep(link),
            Step.TARIFF: TariffStep(link),
            Step.WORK: WorkWhenStep(link),
            Step.BENCHMARK: BenchmarkStep(link),
        }
        for step, page in self.steps.items():
            self.setPage(int(step), page)
        self.setStartId(int(start_at))
        self.resize(760, 560)

    def accept(self) -> None:
        mark_onboarding_completed(self.link.paths)
        super().accept()


def open_on_first_start(link: AgentLink, parent: QWidget | None = None) -> OnboardingWizard | None:
    """For the main window at start-up: the wizard, shown, until the user has finished it once."""
    if onboarding_completed(link.paths):
        return None
    wizard = OnboardingWizard(link, parent)
    wizard.show()
    return wizard
