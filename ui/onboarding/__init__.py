"""The first-start wizard: what SpareCycles does, whether this PC can do it, and the user's choices
(marketplace, payouts, electricity, when to work, the benchmark). Each step can be opened again from the
Settings page (``OnboardingWizard(link, start_at=Step.TARIFF)``)."""

from sparecycles.ui.onboarding.wizard import OnboardingWizard, Step, open_on_first_start

__all__ = ["OnboardingWizard", "Step", "open_on_first_start"]
