"""The result of one readiness check (``sparecycles doctor``, onboarding)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckOutcome(StrEnum):
    OK = "ok"
    WARNING = "warning"  # works, but something is worth knowing or fixing
    PROBLEM = "problem"  # a part is missing or broken


@dataclass(frozen=True)
class CheckResult:
    """What was checked, how it went, and when it failed, the command that fixes it."""

    name: str
    outcome: CheckOutcome
    detail: str
    fix: str | None = None
    required: bool = True

    @property
    def blocking(self) -> bool:
        return self.required and self.outcome is CheckOutcome.PROBLEM
