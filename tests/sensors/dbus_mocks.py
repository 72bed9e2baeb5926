"""Private D-Bus buses and python-dbusmock services for the presence and sleep-inhibitor tests.

Every bus is a fresh dbus-daemon that python-dbusmock starts; its address is handed to the code
under test explicitly. dbusmock itself reads the bus address from the environment, so the
variable is set while a bus lives and restored after: the machine's own buses are never touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

dbusmock = pytest.importorskip("dbusmock", reason="needs python-dbusmock (pip install python-dbusmock)")
pytest.importorskip("gi", reason="python-dbusmock's templates need PyGObject (pip install PyGObject)")

import dbus  # type: ignore[import-untyped, unused-ignore]  # noqa: E402 - after the skip above
from dbusmock.testcase import BusType, PrivateDBus, SpawnedMock  # type: ignore[import-untyped, unused-ignore]  # noqa: E402

__all__ = [  # dbus and dbusmock are re-exported: importing them here first lets a missing one skip the tests
    "LOGIN1",
    "MANAGER_IFACE",
    "SESSION_IFACE",
    "USER_IFACE",
    "BusType",
    "PrivateDBus",
    "ScreenSaverMock",
    "SpawnedMock",
    "add_session",
    "by_pid_returns",
    "connection",
    "dbus",
    "lock_session",
    "logind_mock",
    "mock_interface",
    "mutter",
    "private_bus",
    "screensaver",
    "service",
    "set_properties",
    "template",
]

MOCK_IFACE = "org.freedesktop.DBus.Mock"
LOGIN1 = "org.freedesktop.login1"
SESSION_IFACE = "org.freedesktop.login1.Session"
USER_IFACE = "org.freedesktop.login1.User"


@contextlib.contextmanager
def private_bus(kind: BusType) -> Iterator[PrivateDBus]:
    """A fresh dbus-daemon; the environment is put back at once (``start()`` sets it)."""
    variable = f"DBUS_{kind.value.upper()}_BUS_ADDRESS"
    saved = os.environ.get(variable)
    bus = PrivateDBus(kind)
    try:
        bus.start()
    finally:
        _restore(variable, saved)
    try:
        yield bus
    finally:
        bus.stop()


@contextlib.contextmanager
def on_bus(bus: PrivateDBus) -> Iterator[None]:
    """Point dbusmock (which reads the environment) at ``bus`` while spawning a mock."""
    variable = f"DBUS_{bus.bustype.value.upper()}_BUS_ADDRESS"
    saved = os.environ.get(variable)
    os.environ[variable] = bus.address
    try:
        yield
    finally:
        _restore(variable, saved)


def _restore(variable: str, saved: str | None) -> None:
    if saved is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = saved


def connection(bus: PrivateDBus) -> Any:
    return dbus.bus.BusConnection(bus.address)


@contextlib.contextmanager
def template(bus: PrivateDBus, name: str, parameters: dict[str, Any] | None = None) -> Iterator[SpawnedMock]:
    with on_bus(bus):
        mock = SpawnedMock.spawn_with_template(name, parameters, bustype=bus.bustype)
    try:
        yield mock
    finally:
        mock.terminate()


@contextlib.contextmanager
def service(bus: PrivateDBus, name: str, path: str, interface: str) -> Iterator[SpawnedMock]:
    with on_bus(bus):
        mock = SpawnedMock.spawn_for_name(name, path, interface, bus.bustype)
    try:
        yield mock
    finally:
        mock.terminate()


def mock_interface(mock: SpawnedMock) -> Any:
    return dbus.Interface(mock.obj, MOCK_IFACE)


def set_properties(bus: PrivateDBus, name: str, path: str, interface: str, **values: object) -> None:
    obj = connection(bus).get_object(name, path)
    for prop, value in values.items():
        obj.Set(interface, prop, value, dbus_interface=dbus.PROPERTIES_IFACE)


# The desktop services, as the presence sources see them.

MANAGER_IFACE = "org.freedesktop.login1.Manager"
MUTTER = ("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core", "org.gnome.Mutter.IdleMonitor")
SCREENSAVER = "org.freedesktop.ScreenSaver"


@contextlib.contextmanager
def mutter(bus: PrivateDBus, idle_ms: int) -> Iterator[Any]:
    """GNOME Mutter's idle monitor (dbusmock has no template for it); yields a setter for the idle time."""
    with service(bus, *MUTTER) as mock:
        control = mock_interface(mock)
        control.AddMethod("", "GetIdletime", "", "t", "ret = dbus.UInt64(self.idletime_ms)")
        control.AddMethod("", "SetIdletimeForTest", "t", "", "self.idletime_ms = args[0]")
        set_idle = mock.obj.get_dbus_method("SetIdletimeForTest", MUTTER[2])
        set_idle(dbus.UInt64(idle_ms))
        yield set_idle


@dataclass
class ScreenSaverMock:
    control: Any  # dbusmock's org.freedesktop.DBus.Mock interface
    set_active: Any


@contextlib.contextmanager
def screensaver(bus: PrivateDBus, path: str, *, idle: int | None) -> Iterator[ScreenSaverMock]:
    """org.freedesktop.ScreenSaver at ``path``, GetSessionIdleTime answering ``idle`` where given."""
    with service(bus, SCREENSAVER, path, SCREENSAVER) as mock:
        control = mock_interface(mock)
        control.AddMethod("", "GetActive", "", "b", "ret = getattr(self, 'active', False)")
        control.AddMethod("", "SetActive", "b", "b", "self.active = args[0]; ret = True")
        if idle is not None:
            control.AddMethod("", "GetSessionIdleTime", "", "u", f"ret = dbus.UInt32({idle})")
        yield ScreenSaverMock(control, mock.obj.get_dbus_method("SetActive", SCREENSAVER))


@contextlib.contextmanager
def logind_mock(bus: PrivateDBus) -> Iterator[Any]:
    """dbusmock's logind template, with GetUser fixed (the template adds a uint32 to a string)."""
    with template(bus, "logind") as mock:
        mock_interface(mock).AddMethod(
            MANAGER_IFACE, "GetUser", "u", "o", "ret = dbus.ObjectPath('/org/freedesktop/login1/user/%d' % args[0])"
        )
        yield mock


def add_session(mock: Any, bus: PrivateDBus, session_id: str, *, uid: int, session_type: str = "x11") -> str:
    path = str(mock_interface(mock).AddSession(session_id, "seat0", dbus.UInt32(uid), "owner", True))
    set_properties(bus, LOGIN1, path, SESSION_IFACE, Type=session_type)
    return path


def by_pid_returns(mock: Any, path: str) -> None:
    """Make GetSessionByPID (absent from the template) answer ``path``, as for a process in that session."""
    mock_interface(mock).AddMethod(MANAGER_IFACE, "GetSessionByPID", "u", "o", f"ret = dbus.ObjectPath('{path}')")


def lock_session(bus: PrivateDBus, path: str, locked: bool) -> None:
    """What a lock screen does: the session's SetLockedHint."""
    connection(bus).get_object(LOGIN1, path).SetLockedHint(locked, dbus_interface=SESSION_IFACE)
