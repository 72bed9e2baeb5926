"""Which changes of the agent become desktop notifications: plain status documents in, a notification
(or none) out; and the owner's choices, kept in the config folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sparecycles.control.ledger import PayoutView
from sparecycles.control.models import AgentEvent, AgentState, EventType, GpuState
from sparecycles.ui.notifications import (
    NotificationKind,
    NotificationPreferences,
    notification_for_event,
    notification_for_payouts,
    notification_for_status,
)
from tests.ui.statuses import status

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


WAITING = status(AgentState.WAITING, GpuState.STOPPED, "user_active")
WORKING = status(AgentState.WORKING, GpuState.WORKING, "idle")


def test_work_starting_after_idle_is_announced() -> None:
    notification = notification_for_status(WAITING, WORKING)
    assert notification is not None
    assert notification.kind is NotificationKind.WORK_STARTED
    assert "Simulated RTX 4090" in notification.message


def test_the_first_status_and_an_unchanged_one_announce_nothing() -> None:
    assert notification_for_status(None, WORKING) is None
    assert notification_for_status(WORKING, WORKING) is None
    assert notification_for_status(WORKING, WAITING) is None  # handed back because the owner came: no news


def test_a_game_that_pauses_work_is_announced_with_its_name() -> None:
    gaming = status(AgentState.WAITING, GpuState.PAUSED, "game", "paused: game running — cyberpunk2077")
    notification = notification_for_status(WORKING, gaming)
    assert notification is not None
    assert notification.kind is NotificationKind.GAME_PAUSED
    assert "cyberpunk2077" in notification.message
    assert notification_for_status(WAITING, gaming) is None  # nothing was working: nothing paused


def test_too_hot_is_a_warning_once() -> None:
    hot = status(AgentState.WAITING, GpuState.PAUSED, "too_hot", "paused: 91 °C is above your cap of 83 °C")
    notification = notification_for_status(WORKING, hot)
    assert notification is not None
    assert notification.kind is NotificationKind.TOO_HOT
    assert notification.warning
    assert "91 °C" in notification.message
    assert notification_for_status(hot, hot) is None


def test_a_failed_job_is_announced_and_a_preempted_one_is_not() -> None:
    failed = AgentEvent(
        type=EventType.JOB_STATE, at=NOW, data={"job_id": "local-1", "state": "failed", "reason": "exit code 3"}
    )
    notification = notification_for_event(failed)
    assert notification is not None
    assert notification.kind is NotificationKind.JOB_FAILED
    assert "exit code 3" in notification.message
    preempted = AgentEvent(type=EventType.JOB_STATE, at=NOW, data={"job_id": "local-1", "state": "preempted"})
    assert notification_for_event(preempted) is None
    assert notification_for_event(AgentEvent(type=EventType.READINGS, at=NOW)) is None


def test_a_new_payout_is_a_claim_that_succeeded() -> None:
    payout = PayoutView(
        claimed=NOW, payout_address="0x" + "ab" * 20, amount_base_units=10**18, chain_id=31337, tx_hash="0x01"
    )
    assert notification_for_payouts(None, [payout]) is None  # the first reading: nothing new happened
    assert notification_for_payouts({"0x01"}, [payout]) is None
    notification = notification_for_payouts(set(), [payout])
    assert notification is not None
    assert notification.kind is NotificationKind.CLAIM_SUCCEEDED


def test_each_kind_can_be_turned_off_and_stays_off(tmp_path: Path) -> None:
    preferences = NotificationPreferences(tmp_path)
    assert all(preferences.all().values())
    preferences.set_enabled(NotificationKind.WORK_STARTED, False)
    again = NotificationPreferences(tmp_path)
    assert not again.enabled(NotificationKind.WORK_STARTED)
    assert again.enabled(NotificationKind.JOB_FAILED)
