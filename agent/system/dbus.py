"""A small blocking D-Bus client over jeepney, for the few calls the agent makes to desktop services.

jeepney is pure Python (already installed on Linux as a dependency of keyring), so no compiled
binding is needed. Every call has a short timeout; the connection is opened on first use and
reopened after it breaks, so a restarted bus or service is picked up on the next call.
"""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 0.5
DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"
DBUS_SERVICE = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"
NOT_SUPPORTED = "org.freedesktop.DBus.Error.NotSupported"
TIMEOUT = "timeout"  # DBusError.name of a call that got no answer in time (not a D-Bus error name)


class DBusError(Exception):
    """A D-Bus call did not give an answer; ``name`` is the D-Bus error name where the peer sent one."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class DBusUnreachable(DBusError):
    """The bus itself cannot be reached (no daemon at the address, refused, or it went away)."""


class DBusCallFailed(DBusError):
    """The bus answered with an error (service unknown, no such method or object, denied) or a timeout."""


def system_bus_address(environ: Mapping[str, str]) -> str:
    """The system bus, where logind lives."""
    return environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS


def session_bus_address(environ: Mapping[str, str]) -> str | None:
    """The user's session bus (GNOME Shell, KDE's screen locker), or None where the session has none."""
    address = environ.get("DBUS_SESSION_BUS_ADDRESS")
    if address:
        return address
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        socket_path = Path(runtime_dir) / "bus"
        try:
            if stat.S_ISSOCK(socket_path.stat().st_mode):
                return f"unix:path={socket_path}"
        except OSError:
            return None
    return None


class DBusClient:
    """One connection to one bus, used from any thread (calls are serialised under a lock)."""

    def __init__(self, address: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, enable_fds: bool = False) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._enable_fds = enable_fds
        self._lock = threading.Lock()
        self._connection: Any = None

    def call(
        self,
        destination: str,
        path: str,
        interface: str,
        method: str,
        *,
        signature: str | None = None,
        body: tuple[object, ...] = (),
    ) -> tuple[object, ...]:
        """Call a method and return the reply's arguments; raises a ``DBusError`` subclass otherwise."""
        from jeepney import (  # type: ignore[import-untyped, unused-ignore]
            DBusAddress,
            HeaderFields,
            MessageType,
            new_method_call,
        )

        what = f"{interface}.{method} on {destination}"
        message = new_method_call(DBusAddress(path, bus_name=destination, interface=interface), method, signature, body)
        with self._lock:
            connection = self._connect()
            try:
                reply = connection.send_and_get_reply(message, timeout=self.timeout_s)
            except TimeoutError as exc:
                raise DBusCallFailed(f"{what} did not answer within {self.timeout_s:g} s", TIMEOUT) from exc
            except (OSError, ValueError, RuntimeError) as exc:
                self._drop()
                raise DBusUnreachable(f"the D-Bus connection to {self.address} broke: {exc}") from exc
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name)
            detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DBusCallFailed(f"{what} failed: {name}: {detail}".rstrip(": "), str(name) if name else None)
        return tuple(reply.body)

    def call_single(
        self,
        destination: str,
        path: str,
        interface: str,
        method: str,
        *,
        signature: str | None = None,
        body: tuple[object, ...] = (),
    ) -> object:
        """Call a method that returns exactly one value, and return that value."""
        reply = self.call(destination, path, interface, method, signature=signature, body=body)
        if len(reply) != 1:
            raise DBusCallFailed(f"{interface}.{method} on {destination} answered {reply!r}, not one value")
        return reply[0]

    def get_property(self, destination: str, path: str, interface: str, name: str) -> object:
        """One property's value (the variant unwrapped)."""
        variant = self.call_single(
            destination, path, PROPERTIES_INTERFACE, "Get", signature="ss", body=(interface, name)
        )
        if isinstance(variant, tuple) and len(variant) == 2:
            return variant[1]
        raise DBusCallFailed(f"{interface}.{name} on {destination}: unexpected reply {variant!r}")

    def get_all_properties(self, destination: str, path: str, interface: str) -> dict[str, object]:
        """All of an interface's properties in one round trip, variants unwrapped."""
        values = self.call_single(destination, path, PROPERTIES_INTERFACE, "GetAll", signature="s", body=(interface,))
        if not isinstance(values, dict):
            raise DBusCallFailed(f"GetAll({interface}) on {destination}: unexpected reply {values!r}")
        return {
            str(key): variant[1] for key, variant in values.items() if isinstance(variant, tuple) and len(variant) == 2
        }

    def name_available(self, name: str) -> bool:
        """Whether a service is running on this bus or can be started on demand (bus activation)."""
        if self.call_single(DBUS_SERVICE, DBUS_PATH, DBUS_SERVICE, "NameHasOwner", signature="s", body=(name,)) is True:
            return True
        activatable = self.call_single(DBUS_SERVICE, DBUS_PATH, DBUS_SERVICE, "ListActivatableNames")
        return isinstance(activatable, list) and name in activatable

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> Any:
        if self._connection is not None:
            return self._connection
        from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped, unused-ignore]

        try:
            self._connection = open_dbus_connection(
                bus=self.address, enable_fds=self._enable_fds, auth_timeout=self.timeout_s
            )
        except (OSError, ValueError, RuntimeError, StopIteration) as exc:
            raise DBusUnreachable(f"no D-Bus bus at {self.address}: {exc or type(exc).__name__}") from exc
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except OSError as exc:
                log.debug("closing the D-Bus connection to %s: %s", self.address, exc)
