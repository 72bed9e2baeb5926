"""The sleep inhibitor: logind's Inhibit against python-dbusmock's logind template, Windows' call injected."""

from __future__ import annotations

import logging
import threading

import pytest

from sparecycles.agent.system.sleep_inhibitor import (
    ES_CONTINUOUS,
    ES_SYSTEM_REQUIRED,
    LogindSleepInhibitor,
    NullSleepInhibitor,
    SleepInhibitor,
    WindowsSleepInhibitor,
    create_sleep_inhibitor,
)
from tests.sensors.dbus_mocks import PrivateDBus, template
from tests.sensors.xsession import wait_until

MANAGER_IFACE = "org.freedesktop.login1.Manager"


def held(inhibitor: SleepInhibitor) -> bool:
    """Read through the interface (mypy would otherwise keep the narrowing of an earlier assert)."""
    return inhibitor.held


def inhibitors(mock: object) -> list[tuple[str, ...]]:
    return [tuple(str(part) for part in entry[:4]) for entry in mock.obj.ListInhibitors(dbus_interface=MANAGER_IFACE)]  # type: ignore[attr-defined]


def test_logind_inhibitor_is_held_until_released(system_bus: PrivateDBus) -> None:
    with template(system_bus, "logind") as mock:
        inhibitor = LogindSleepInhibitor(system_bus.address)
        try:
            assert held(inhibitor) is False
            assert inhibitor.acquire("a GPU job is running") is True
            assert held(inhibitor) is True
            assert inhibitors(mock) == [("sleep:idle", "SpareCycles", "a GPU job is running", "block")]

            assert inhibitor.acquire("again") is True  # idempotent: still one inhibitor
            assert len(inhibitors(mock)) == 1

            inhibitor.release()
            assert held(inhibitor) is False
            wait_until(lambda: inhibitors(mock) == [], "logind to drop the inhibitor once its descriptor closed")
            inhibitor.release()  # idempotent

            assert inhibitor.acquire("the next job") is True
            assert inhibitors(mock) == [("sleep:idle", "SpareCycles", "the next job", "block")]
        finally:
            inhibitor.close()
        assert held(inhibitor) is False
        wait_until(lambda: inhibitors(mock) == [], "close() to release the inhibitor")


def test_logind_missing_is_logged_and_not_held(system_bus: PrivateDBus, caplog: pytest.LogCaptureFixture) -> None:
    inhibitor = LogindSleepInhibitor(system_bus.address)
    try:
        assert inhibitor.acquire("a GPU job is running") is False
        assert held(inhibitor) is False
        assert any("Cannot keep the machine awake" in r.getMessage() for r in caplog.records)
    finally:
        inhibitor.close()


def test_factory_picks_logind_where_it_is_on_the_bus(system_bus: PrivateDBus) -> None:
    with template(system_bus, "logind"):
        inhibitor = create_sleep_inhibitor({"DBUS_SYSTEM_BUS_ADDRESS": system_bus.address}, platform="linux")
        try:
            assert isinstance(inhibitor, LogindSleepInhibitor)
        finally:
            inhibitor.close()


def test_factory_falls_back_to_null_without_logind(system_bus: PrivateDBus) -> None:
    inhibitor = create_sleep_inhibitor({"DBUS_SYSTEM_BUS_ADDRESS": system_bus.address}, platform="linux")
    assert isinstance(inhibitor, NullSleepInhibitor)
    assert "logind" in inhibitor.reason
    assert inhibitor.acquire("work") is False
    assert held(inhibitor) is False


def test_factory_falls_back_to_null_without_a_system_bus() -> None:
    inhibitor = create_sleep_inhibitor({"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"}, platform="linux")
    assert isinstance(inhibitor, NullSleepInhibitor)
    assert "/nonexistent/bus" in inhibitor.reason


def test_factory_elsewhere() -> None:
    assert isinstance(create_sleep_inhibitor({}, platform="darwin"), NullSleepInhibitor)
    assert isinstance(create_sleep_inhibitor({}, platform="win32"), NullSleepInhibitor)  # no Win32 calls on Linux


class FakeExecutionState:
    """SetThreadExecutionState: records each call with the thread that made it."""

    def __init__(self, answer: int = ES_CONTINUOUS) -> None:
        self.answer = answer
        self.calls: list[tuple[int, int]] = []

    def set_thread_execution_state(self, flags: int) -> int:
        self.calls.append((threading.get_ident(), flags))
        return self.answer


def test_windows_inhibitor_sets_and_clears_the_state_on_one_thread() -> None:
    calls = FakeExecutionState()
    inhibitor = WindowsSleepInhibitor(calls)
    try:
        assert inhibitor.acquire("a GPU job is running") is True
        assert inhibitor.acquire("again") is True  # idempotent
        assert held(inhibitor) is True
        releaser = threading.Thread(target=inhibitor.release)  # released from another thread than acquired
        releaser.start()
        releaser.join(30)
        inhibitor.release()  # idempotent
        assert held(inhibitor) is False
        assert [flags for _, flags in calls.calls] == [ES_CONTINUOUS | ES_SYSTEM_REQUIRED, ES_CONTINUOUS]
        threads = {thread for thread, _ in calls.calls}
        assert len(threads) == 1  # the execution state is per thread: one worker makes every call
        assert threading.get_ident() not in threads
    finally:
        inhibitor.close()
    assert not any(t.ident in threads and t.is_alive() for t in threading.enumerate())


def test_windows_refusal_is_not_held(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    inhibitor = WindowsSleepInhibitor(FakeExecutionState(answer=0))
    try:
        assert inhibitor.acquire("a GPU job is running") is False
        assert held(inhibitor) is False
        assert any("SetThreadExecutionState" in r.getMessage() for r in caplog.records)
    finally:
        inhibitor.close()


def test_windows_close_releases() -> None:
    calls = FakeExecutionState()
    inhibitor = WindowsSleepInhibitor(calls)
    inhibitor.acquire("work")
    inhibitor.close()
    assert held(inhibitor) is False
    assert calls.calls[-1][1] == ES_CONTINUOUS
