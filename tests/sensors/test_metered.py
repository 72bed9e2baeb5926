"""The metered-connection check against python-dbusmock's NetworkManager on a private system bus."""

from __future__ import annotations

import pytest

from sparecycles.agent.system.dbus import DBusClient
from sparecycles.agent.system.metered import (
    NM_INTERFACE,
    NM_PATH,
    NM_SERVICE,
    NetworkManagerMetered,
    UnknownMetered,
    create_metered_check,
)
from tests.sensors.dbus_mocks import MOCK_IFACE, PrivateDBus, connection, dbus, template


def set_metered(bus: PrivateDBus, value: int) -> None:
    """The template's manager object has no Metered property; add it as NetworkManager 1.x has it."""
    manager = connection(bus).get_object(NM_SERVICE, NM_PATH)
    dbus.Interface(manager, MOCK_IFACE).AddProperty(NM_INTERFACE, "Metered", dbus.UInt32(value))


@pytest.mark.parametrize(("value", "expected"), [(0, None), (1, True), (2, False), (3, True), (4, False)])
def test_networkmanager_metered_values(system_bus: PrivateDBus, value: int, expected: bool | None) -> None:
    with template(system_bus, "networkmanager"):
        set_metered(system_bus, value)
        check = create_metered_check({"DBUS_SYSTEM_BUS_ADDRESS": system_bus.address})
        assert isinstance(check, NetworkManagerMetered)
        assert check.metered() is expected


def test_a_networkmanager_that_goes_away_reads_as_unknown(system_bus: PrivateDBus) -> None:
    with template(system_bus, "networkmanager"):
        set_metered(system_bus, 1)
        check = NetworkManagerMetered(DBusClient(system_bus.address))
        assert check.metered() is True
    assert check.metered() is None


def test_without_networkmanager_the_answer_is_unknown(system_bus: PrivateDBus) -> None:
    check = create_metered_check({"DBUS_SYSTEM_BUS_ADDRESS": system_bus.address})
    assert isinstance(check, UnknownMetered)
    assert check.metered() is None
    no_bus = create_metered_check({"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    assert no_bus.metered() is None
