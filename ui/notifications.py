"""Desktop notifications: which change of the agent is worth one, and which kinds the user turned off.

The decision is pure (status before, status after, or one event -> a notification or None), so it is
tested with plain :class:`StatusDocument` values; the tray shows what it returns. The user's choices
live in the app's config folder (an INI file through QSettings) behind :class:`NotificationPreferences`,
which the settings page uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from sparecycles.control.ledger import PayoutView
from sparecycles.control.models import AgentEvent, AgentState, EventType, GpuState, GpuStatus, StatusDocument
from sparecycles.ui.gui_prefs import prefs_at


class NotificationKind(StrEnum):
    WORK_STARTED = "work_started"  # work started after the GPUs sat idle
    GAME_PAUSED = "game_paused"  # paused because a game started
    TOO_HOT = "too_hot"
    JOB_FAILED = "job_failed"
    CLAIM_SUCCEEDED = "claim_succeeded"


@dataclass(frozen=True)
class Notification:
    kind: NotificationKind
    title: str
    message: str
    warning: bool = False


def kind_label(kind: NotificationKind) -> str:
    """The kind in words, for the settings page's check boxes."""
    labels = {
        NotificationKind.WORK_STARTED: QCoreApplication.translate("Notifications", "Work started after idle"),
        NotificationKind.GAME_PAUSED: QCoreApplication.translate("Notifications", "Paused because a game started"),
        NotificationKind.TOO_HOT: QCoreApplication.translate("Notifications", "A GPU is too hot"),
        NotificationKind.JOB_FAILED: QCoreApplication.translate("Notifications", "A job failed"),
        NotificationKind.CLAIM_SUCCEEDED: QCoreApplication.translate("Notifications", "A claim succeeded"),
    }
    return labels[kind]


def _with_cause(status: StatusDocument | None, cause: str) -> list[GpuStatus]:
    return [] if status is None else [gpu for gpu in status.gpus if gpu.cause == cause]


def notification_for_status(before: StatusDocument | None, after: StatusDocument) -> Notification | None:
    """What changed between two status documents that the owner would want to hear about, if anything.

    The first status (``before`` is None) announces nothing: it is not a change the owner saw happen.
    """
    if before is None:
        return None
    hot_before = {gpu.index for gpu in _with_cause(before, "too_hot")}
    hot = [gpu for gpu in _with_cause(after, "too_hot") if gpu.index not in hot_before]
    if hot:
        return Notification(
            NotificationKind.TOO_HOT,
            QCoreApplication.translate("Notifications", "GPU too hot: work paused"),
            "\n".join(gpu.reason for gpu in hot),
            True,
        )
    was_working = {gpu.index for gpu in before.gpus if gpu.state is GpuState.WORKING}
    gaming = [gpu for gpu in _with_cause(after, "game") if gpu.index in was_working]
    if gaming:
        return Notification(
            NotificationKind.GAME_PAUSED,
            QCoreApplication.translate("Notifications", "Paused for your game"),
            gaming[0].reason,
        )
    if after.state is AgentState.WORKING and before.state in (AgentState.READY, AgentState.WAITING):
        working = [gpu.name for gpu in after.gpus if gpu.state is GpuState.WORKING]
        where = ", ".join(working) if working else QCoreApplication.translate("Notifications", "this computer")
        return Notification(
            NotificationKind.WORK_STARTED,
            QCoreApplication.translate("Notifications", "SpareCycles started working"),
            where,
        )
    return None


def notification_for_event(event: AgentEvent) -> Notification | None:
    """A job that failed, from the event stream (a preempted or interrupted job is requeued: no failure)."""
    if event.type is EventType.JOB_STATE and event.data.get("state") == "failed":
        job = str(event.data.get("job_id", ""))
        reason = str(event.data.get("reason") or QCoreApplication.translate("Notifications", "no reason given"))
        return Notification(
            NotificationKind.JOB_FAILED,
            QCoreApplication.translate("Notifications", "A job failed"),
            f"{job}: {reason}",
            True,
        )
    return None


def notification_for_payouts(
    known_tx_hashes: set[str] | None, payouts: Sequence[PayoutView], amount_text: str = ""
) -> Notification | None:
    """A claim mined since the payouts were last read (``known_tx_hashes`` None: the first reading)."""
    if known_tx_hashes is None:
        return None
    new = [payout for payout in payouts if payout.tx_hash not in known_tx_hashes]
    if not new:
        return None
    message = amount_text or QCoreApplication.translate("Notifications", "Your earnings were paid to {address}").format(
        address=new[-1].payout_address
    )
    return Notification(
        NotificationKind.CLAIM_SUCCEEDED, QCoreApplication.translate("Notifications", "Claim succeeded"), message
    )


class NotificationPreferences:
    """Which kinds of notification are on (all are, until the user turns one off)."""

    def __init__(self, config_dir: Path) -> None:
        self._settings = prefs_at(config_dir)

    def enabled(self, kind: NotificationKind) -> bool:
        return str(self._settings.value(f"notifications/{kind.value}", "true")).lower() == "true"

    def set_enabled(self, kind: NotificationKind, on: bool) -> None:
        self._settings.setValue(f"notifications/{kind.value}", "true" if on else "false")
        self._settings.sync()

    def all(self) -> dict[NotificationKind, bool]:
        return {kind: self.enabled(kind) for kind in NotificationKind}
