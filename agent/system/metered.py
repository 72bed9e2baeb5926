"""Is the internet connection metered (a phone hotspot, a capped plan)? Downloads wait if so.

Image pulls and input downloads are large; on a metered connection they would cost the owner
money. NetworkManager says so through its ``Metered`` property on the system bus (its own guess
from the device, or what the user set for the connection). Elsewhere, or where NetworkManager
does not answer, the answer is "unknown" and downloads are not held back for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Protocol

from sparecycles.agent.sensors.user.failures import FailureLog
from sparecycles.agent.system.dbus import DBusClient, DBusError, system_bus_address

log = logging.getLogger(__name__)

NM_SERVICE = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
NM_INTERFACE = "org.freedesktop.NetworkManager"
# NMMetered: 0 unknown, 1 yes, 2 no, 3 guess yes, 4 guess no.
_METERED = {1: True, 2: False, 3: True, 4: False}


class MeteredCheck(Protocol):
    @property
    def name(self) -> str: ...

    def metered(self) -> bool | None:
        """True or False where known; None where nothing can tell. Never raises."""
        ...


class UnknownMetered:
    name = "none"

    def metered(self) -> bool | None:
        return None


class NetworkManagerMetered:
    name = "networkmanager"

    def __init__(self, bus: DBusClient) -> None:
        self._bus = bus
        self._failures = FailureLog(log, "NetworkManager")

    def metered(self) -> bool | None:
        try:
            value = self._bus.get_property(NM_SERVICE, NM_PATH, NM_INTERFACE, "Metered")
        except DBusError as exc:
            self._failures.failed(f"metered state unknown: {exc}")
            return None
        self._failures.recovered()
        return _METERED.get(value) if isinstance(value, int) else None


def create_metered_check(environ: Mapping[str, str] | None = None) -> MeteredCheck:
    """NetworkManager when it runs on the system bus, else a check that always says "unknown"."""
    environ = os.environ if environ is None else environ
    bus = DBusClient(system_bus_address(environ))
    try:
        if bus.name_available(NM_SERVICE):
            return NetworkManagerMetered(bus)
    except DBusError as exc:
        log.info("Metered-connection check unavailable: %s", exc)
    bus.close()
    return UnknownMetered()
