"""The D-Bus presence sources (GNOME Mutter, the screen-saver services, logind) against python-dbusmock
services on private buses."""

from __future__ import annotations

import logging
import os

import pytest

from sparecycles.agent.sensors.user.gnome import MutterIdleSource
from sparecycles.agent.sensors.user.logind import LogindPresenceSource
from sparecycles.agent.sensors.user.screensaver import ScreenSaverSource
from sparecycles.agent.system.dbus import DBusClient
from tests.sensors.dbus_mocks import (
    LOGIN1,
    SESSION_IFACE,
    USER_IFACE,
    PrivateDBus,
    add_session,
    by_pid_returns,
    dbus,
    lock_session,
    logind_mock,
    mock_interface,
    mutter,
    screensaver,
    set_properties,
    template,
)

UID = 4242


def client(bus: PrivateDBus) -> DBusClient:
    return DBusClient(bus.address, timeout_s=5.0)  # generous: a slow machine must not fail these


# GNOME Mutter


def test_mutter_idle_time_in_seconds(session_bus: PrivateDBus) -> None:
    with mutter(session_bus, idle_ms=123_456) as set_idle:
        source = MutterIdleSource(client(session_bus))
        try:
            first = source.sample()
            assert first.source == "gnome-mutter"
            assert first.idle_s == pytest.approx(123.456)
            assert first.locked is None
            set_idle(dbus.UInt64(250))
            assert source.sample().idle_s == pytest.approx(0.25)
        finally:
            source.close()


def test_mutter_absent_answers_none(session_bus: PrivateDBus) -> None:
    source = MutterIdleSource(client(session_bus))
    try:
        assert source.sample().idle_s is None
        assert source.problem is not None
        assert "ServiceUnknown" in source.problem
    finally:
        source.close()


def test_unreachable_bus_answers_none() -> None:
    source = MutterIdleSource(DBusClient("unix:path=/nonexistent/bus", timeout_s=1.0))
    assert source.sample().idle_s is None
    assert source.problem is not None
    assert "/nonexistent/bus" in source.problem


# org.freedesktop.ScreenSaver (KDE and others) and org.gnome.ScreenSaver


def test_kde_screensaver_lock_and_idle_in_milliseconds(session_bus: PrivateDBus) -> None:
    with screensaver(session_bus, "/ScreenSaver", idle=90_000) as saver:
        source = ScreenSaverSource.freedesktop(client(session_bus), idle_time_unit_s=0.001)
        try:
            sample = source.sample()
            assert sample.source == "freedesktop-screensaver"
            assert sample.locked is False
            assert sample.idle_s == pytest.approx(90.0)
            saver.set_active(True)
            assert source.sample().locked is True
        finally:
            source.close()


def test_screensaver_at_the_long_path_in_seconds(session_bus: PrivateDBus) -> None:
    with screensaver(session_bus, "/org/freedesktop/ScreenSaver", idle=75):
        source = ScreenSaverSource.freedesktop(client(session_bus), idle_time_unit_s=1.0)
        try:
            sample = source.sample()
            assert sample.locked is False
            assert sample.idle_s == pytest.approx(75.0)
        finally:
            source.close()


def test_screensaver_without_idle_time_still_tells_the_lock(session_bus: PrivateDBus) -> None:
    with screensaver(session_bus, "/ScreenSaver", idle=None) as saver:
        saver.control.AddMethod(
            "",
            "GetSessionIdleTime",
            "",
            "u",
            "raise dbus.exceptions.DBusException('not on Wayland', name='org.freedesktop.DBus.Error.NotSupported')",
        )
        source = ScreenSaverSource.freedesktop(client(session_bus), idle_time_unit_s=0.001)
        try:
            saver.set_active(True)
            for _ in range(3):
                sample = source.sample()
                assert sample.idle_s is None
                assert sample.locked is True
            calls = [call[1] for call in saver.control.GetCalls()]
            assert calls.count("GetSessionIdleTime") == 1  # NotSupported is final: not asked again
        finally:
            source.close()


def test_screensaver_absent_answers_none(session_bus: PrivateDBus) -> None:
    source = ScreenSaverSource.freedesktop(client(session_bus))
    try:
        sample = source.sample()
        assert (sample.idle_s, sample.locked) == (None, None)
        assert source.problem is not None
    finally:
        source.close()


def test_gnome_screensaver_template(session_bus: PrivateDBus) -> None:
    with template(session_bus, "gnome_screensaver") as mock:
        source = ScreenSaverSource.gnome(client(session_bus))
        try:
            assert source.sample().locked is False
            mock.obj.SetActive(True, dbus_interface="org.gnome.ScreenSaver")
            sample = source.sample()
            assert sample.source == "gnome-screensaver"
            assert sample.locked is True
            assert sample.idle_s is None  # GNOME's idle time comes from Mutter
        finally:
            source.close()


# logind


def logind(bus: PrivateDBus, now_us: int = 10_000_000_000) -> LogindPresenceSource:
    return LogindPresenceSource(client(bus), pid=os.getpid(), uid=UID, clock_us=lambda: now_us)


def test_logind_lock_and_idle_hints_of_our_session(system_bus: PrivateDBus) -> None:
    with logind_mock(system_bus) as mock:
        path = add_session(mock, system_bus, "c1", uid=UID)
        by_pid_returns(mock, path)
        source = logind(system_bus, now_us=10_000_000_000)
        try:
            sample = source.sample()
            assert source.session_path == path
            assert sample.locked is False
            assert sample.idle_s is None  # the hint was never set: nobody maintains it here

            set_properties(
                system_bus,
                LOGIN1,
                path,
                SESSION_IFACE,
                IdleHint=False,
                IdleSinceHintMonotonic=dbus.UInt64(9_000_000_000),
            )
            assert source.sample().idle_s == 0.0  # maintained, and the owner is active

            set_properties(
                system_bus,
                LOGIN1,
                path,
                SESSION_IFACE,
                IdleHint=True,
                IdleSinceHintMonotonic=dbus.UInt64(9_958_000_000),
            )
            lock_session(system_bus, path, True)
            sample = source.sample()
            assert sample.idle_s == pytest.approx(42.0)
            assert sample.locked is True
        finally:
            source.close()


def test_logind_falls_back_to_the_users_display_session(system_bus: PrivateDBus) -> None:
    """A systemd user service is in no session: GetSessionByPID fails, the user's Display session answers."""
    with logind_mock(system_bus) as mock:
        path = add_session(mock, system_bus, "c7", uid=UID)
        set_properties(
            system_bus, LOGIN1, f"/org/freedesktop/login1/user/{UID}", USER_IFACE, Display=("c7", dbus.ObjectPath(path))
        )
        set_properties(system_bus, LOGIN1, path, SESSION_IFACE, LockedHint=True)
        source = logind(system_bus)
        try:
            assert source.sample().locked is True
            assert source.session_path == path
        finally:
            source.close()


def test_logind_prefers_the_graphical_session_to_our_terminal_one(system_bus: PrivateDBus) -> None:
    with logind_mock(system_bus) as mock:
        ssh = add_session(mock, system_bus, "c2", uid=UID, session_type="tty")
        desktop = add_session(mock, system_bus, "c3", uid=UID, session_type="wayland")
        by_pid_returns(mock, ssh)
        set_properties(
            system_bus,
            LOGIN1,
            f"/org/freedesktop/login1/user/{UID}",
            USER_IFACE,
            Display=("c3", dbus.ObjectPath(desktop)),
        )
        source = logind(system_bus)
        try:
            source.sample()
            assert source.session_path == desktop
        finally:
            source.close()


def test_logind_without_a_session_answers_none_and_finds_a_new_one(
    system_bus: PrivateDBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sparecycles.agent.sensors.user.logind")
    with logind_mock(system_bus) as mock:
        source = logind(system_bus)
        try:
            for _ in range(3):
                sample = source.sample()
                assert (sample.idle_s, sample.locked) == (None, None)
            assert source.problem is not None
            assert f"uid {UID}" in source.problem
            assert len([r for r in caplog.records if r.levelno >= logging.INFO]) == 1  # logged once

            path = add_session(mock, system_bus, "c9", uid=UID)
            by_pid_returns(mock, path)  # the owner logged in
            assert source.sample().locked is False
            assert source.session_path == path
        finally:
            source.close()


def test_logind_session_that_went_away_is_looked_up_again(system_bus: PrivateDBus) -> None:
    with logind_mock(system_bus) as mock:
        first = add_session(mock, system_bus, "c1", uid=UID)
        by_pid_returns(mock, first)
        source = logind(system_bus)
        try:
            assert source.sample().locked is False
            mock_interface(mock).RemoveObject(first)
            assert source.sample().locked is None
            second = add_session(mock, system_bus, "c5", uid=UID)
            by_pid_returns(mock, second)
            set_properties(system_bus, LOGIN1, second, SESSION_IFACE, LockedHint=True)
            assert source.sample().locked is True
            assert source.session_path == second
        finally:
            source.close()
