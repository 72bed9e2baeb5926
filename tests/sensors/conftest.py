"""Fixtures shared by the sensor tests: private D-Bus buses for python-dbusmock services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sensors.dbus_mocks import BusType, PrivateDBus, private_bus


@pytest.fixture
def session_bus() -> Iterator[PrivateDBus]:
    with private_bus(BusType.SESSION) as bus:
        yield bus


@pytest.fixture
def system_bus() -> Iterator[PrivateDBus]:
    with private_bus(BusType.SYSTEM) as bus:
        yield bus
