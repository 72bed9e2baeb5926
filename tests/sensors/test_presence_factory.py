"""Choosing the presence source: each session kind against its real or mocked services."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparecycles.agent.sensors.user.composite import CompositePresenceSource
from sparecycles.agent.sensors.user.factory import create_presence_source
from sparecycles.agent.sensors.user.model import NullPresenceSource, PresenceSource
from sparecycles.agent.sensors.user.windows import WindowsPresenceSource, WindowsUnavailable, WindowsUserCalls
from tests.sensors.dbus_mocks import (
    PrivateDBus,
    add_session,
    by_pid_returns,
    dbus,
    lock_session,
    logind_mock,
    mutter,
    screensaver,
    template,
)
from tests.sensors.test_presence_windows import FakeUserCalls
from tests.sensors.xsession import XSession, wait_until, x_session

UID = 4343
NO_SYSTEM_BUS = "unix:path=/nonexistent/system_bus_socket"


@pytest.fixture(scope="module")
def xsession(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XSession]:
    with x_session(tmp_path_factory.mktemp("factory-x11-home")) as session:
        yield session


def absent_display() -> str:
    """A display number no X server listens on."""
    number = next(n for n in range(900, 1000) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    return f":{number}"


def create(environ: dict[str, str]) -> PresenceSource:
    return create_presence_source(environ, platform="linux", dbus_timeout_s=5.0, pid=os.getpid(), uid=UID)


def names(source: PresenceSource) -> list[str]:
    if isinstance(source, CompositePresenceSource):
        return [part.name for part in source.sources]
    return [source.name]


def test_nothing_answers_gives_null_with_the_reasons() -> None:
    source = create({"DBUS_SYSTEM_BUS_ADDRESS": NO_SYSTEM_BUS})
    assert isinstance(source, NullPresenceSource)
    assert "DISPLAY" in source.reason
    assert "logind" in source.reason
    assert NO_SYSTEM_BUS.removeprefix("unix:path=") in source.reason
    assert source.sample().idle_s is None


def test_other_platforms_get_null() -> None:
    source = create_presence_source({}, platform="darwin")
    assert isinstance(source, NullPresenceSource)
    assert "darwin" in source.reason


def test_windows_uses_the_win32_calls() -> None:
    def calls() -> WindowsUserCalls:
        return FakeUserCalls()

    source = create_presence_source({}, platform="win32", windows_calls=calls)
    assert isinstance(source, WindowsPresenceSource)
    assert source.sample().idle_s == pytest.approx(60.0)


def test_windows_without_its_calls_gets_null() -> None:
    def no_calls() -> WindowsUserCalls:
        raise WindowsUnavailable("user32 missing")

    source = create_presence_source({}, platform="win32", windows_calls=no_calls)
    assert isinstance(source, NullPresenceSource)
    assert "user32 missing" in source.reason


def test_x11_session_takes_idle_from_x11_and_the_lock_from_logind(xsession: XSession, system_bus: PrivateDBus) -> None:
    with logind_mock(system_bus) as mock:
        path = add_session(mock, system_bus, "c1", uid=UID)
        by_pid_returns(mock, path)
        source = create({"DISPLAY": xsession.display, "DBUS_SYSTEM_BUS_ADDRESS": system_bus.address})
        try:
            assert names(source) == ["x11", "logind"]
            sample = source.sample()
            assert sample.source == "x11+logind"
            assert sample.idle_s is not None
            assert sample.locked is False
            assert sample.fullscreen is not None
            lock_session(system_bus, path, True)
            assert source.sample().locked is True
        finally:
            source.close()


def test_x11_session_without_logind_is_x11_alone(xsession: XSession) -> None:
    source = create({"DISPLAY": xsession.display, "DBUS_SYSTEM_BUS_ADDRESS": NO_SYSTEM_BUS})
    try:
        assert names(source) == ["x11"]
        assert source.sample().locked is None
    finally:
        source.close()


def test_gnome_without_x11_uses_mutter_and_the_gnome_lock_screen(session_bus: PrivateDBus) -> None:
    environ = {
        "DISPLAY": absent_display(),
        "DBUS_SESSION_BUS_ADDRESS": session_bus.address,
        "DBUS_SYSTEM_BUS_ADDRESS": NO_SYSTEM_BUS,
        "XDG_CURRENT_DESKTOP": "ubuntu:GNOME",
    }
    with mutter(session_bus, idle_ms=321_000), template(session_bus, "gnome_screensaver") as lock_screen:
        source = create(environ)
        try:
            assert names(source) == ["gnome-mutter", "gnome-screensaver"]
            sample = source.sample()
            assert sample.idle_s == pytest.approx(321.0)
            assert sample.locked is False
            lock_screen.obj.SetActive(True, dbus_interface="org.gnome.ScreenSaver")
            assert source.sample().locked is True
        finally:
            source.close()


def test_wayland_never_uses_x11_idle_but_keeps_xwayland_fullscreen(
    xsession: XSession, session_bus: PrivateDBus, system_bus: PrivateDBus
) -> None:
    environ = {
        "WAYLAND_DISPLAY": "wayland-0",
        "XDG_SESSION_TYPE": "wayland",
        "DISPLAY": xsession.display,  # plays Xwayland's part
        "DBUS_SESSION_BUS_ADDRESS": session_bus.address,
        "DBUS_SYSTEM_BUS_ADDRESS": system_bus.address,
    }
    with mutter(session_bus, idle_ms=7_200_000), logind_mock(system_bus) as mock:
        path = add_session(mock, system_bus, "c2", uid=UID, session_type="wayland")
        by_pid_returns(mock, path)
        source = create(environ)
        window = None
        try:
            assert names(source) == ["gnome-mutter", "logind", "x11"]
            assert source.sample().idle_s == pytest.approx(7200.0)  # Mutter's, not the X server's
            window = xsession.open_window("XwaylandGame", fullscreen=True)
            window.activate()
            wait_until(lambda: source.sample().fullscreen is True, "the X game to be fullscreen")
            sample = source.sample()
            assert sample.fullscreen_app == "XwaylandGame"
            assert sample.idle_s == pytest.approx(7200.0)
        finally:
            if window is not None:
                window.close()
            source.close()


@pytest.mark.parametrize(("desktop", "idle_s"), [("KDE", 90.0), ("XFCE", 90_000.0)])
def test_screensaver_service_idle_unit_follows_the_desktop(
    session_bus: PrivateDBus, desktop: str, idle_s: float
) -> None:
    """KDE answers GetSessionIdleTime in milliseconds, the gnome-screensaver lineage in seconds."""
    environ = {
        "DBUS_SESSION_BUS_ADDRESS": session_bus.address,
        "DBUS_SYSTEM_BUS_ADDRESS": NO_SYSTEM_BUS,
        "XDG_CURRENT_DESKTOP": desktop,
    }
    with screensaver(session_bus, "/ScreenSaver", idle=90_000) as saver:
        source = create(environ)
        try:
            assert names(source) == ["freedesktop-screensaver"]  # idle and lock from one service
            assert source.sample().idle_s == pytest.approx(idle_s)
            saver.set_active(True)
            assert source.sample().locked is True
        finally:
            source.close()


def test_logind_alone_still_tells_the_lock(system_bus: PrivateDBus) -> None:
    """Nothing knows the idle time, but a lock is still worth knowing."""
    with logind_mock(system_bus) as mock:
        path = add_session(mock, system_bus, "c3", uid=UID)
        by_pid_returns(mock, path)
        source = create({"DBUS_SYSTEM_BUS_ADDRESS": system_bus.address})
        try:
            assert names(source) == ["logind"]
            lock_session(system_bus, path, True)
            sample = source.sample()
            assert sample.locked is True
            assert sample.idle_s is None
        finally:
            source.close()


def test_logind_idle_hint_is_used_when_nothing_better_answers(system_bus: PrivateDBus) -> None:
    with logind_mock(system_bus) as mock:
        path = add_session(mock, system_bus, "c4", uid=UID)
        by_pid_returns(mock, path)
        obj = dbus.bus.BusConnection(system_bus.address).get_object("org.freedesktop.login1", path)
        obj.Set("org.freedesktop.login1.Session", "IdleHint", True, dbus_interface=dbus.PROPERTIES_IFACE)
        since = dbus.UInt64(max(1, os.times().elapsed and 1))  # any moment in the past
        obj.Set("org.freedesktop.login1.Session", "IdleSinceHintMonotonic", since, dbus_interface=dbus.PROPERTIES_IFACE)
        source = create({"DBUS_SYSTEM_BUS_ADDRESS": system_bus.address})
        try:
            assert names(source) == ["logind"]
            sample = source.sample()
            assert sample.idle_s is not None
            assert sample.idle_s > 0
        finally:
            source.close()
