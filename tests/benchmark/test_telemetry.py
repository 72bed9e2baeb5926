"""The worker's NVML readings, against the fake pynvml module."""

from __future__ import annotations

import pytest

from sparecycles.agent.benchmark.telemetry import NvmlTelemetry, TelemetryUnavailable
from tests.fakes.fake_pynvml import (
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    FakeDevice,
    FakeNvml,
)

H100 = FakeDevice(
    name="NVIDIA H100 80GB HBM3",
    uuid="GPU-aaaaaaaa-0000-0000-0000-000000000001",
    memory_total_bytes=81559 * 2**20,
    power_usage_mw=642_123,
    temperature_c=68,
)
RTX = FakeDevice(uuid="GPU-bbbbbbbb-0000-0000-0000-000000000002")


def test_facts_and_readings_of_a_gpu_by_index() -> None:
    nvml = FakeNvml(RTX, H100, driver_version="580.159.04")
    telemetry = NvmlTelemetry.open(1, nvml=nvml)
    facts = telemetry.facts
    assert (facts.index, facts.uuid, facts.name) == (1, H100.uuid, "NVIDIA H100 80GB HBM3")
    assert facts.driver_version == "580.159.04"
    assert facts.memory_total_bytes == 81559 * 2**20
    assert telemetry.read() == (642.123, 68.0)
    telemetry.close()
    assert nvml.initialised == 0


def test_a_gpu_by_uuid_with_bytes_from_older_bindings() -> None:
    telemetry = NvmlTelemetry.open(H100.uuid, nvml=FakeNvml(RTX, H100, strings_as_bytes=True))
    assert telemetry.facts.index == 1
    assert telemetry.facts.name == "NVIDIA H100 80GB HBM3"


def test_an_unsupported_reading_is_none_and_not_asked_again() -> None:
    nvml = FakeNvml(FakeDevice(errors={"nvmlDeviceGetPowerUsage": NVML_ERROR_NOT_SUPPORTED}))
    telemetry = NvmlTelemetry.open(0, nvml=nvml)
    assert telemetry.read() == (None, 41.0)
    assert telemetry.read() == (None, 41.0)
    assert nvml.calls["nvmlDeviceGetPowerUsage"] == 1
    assert nvml.calls["nvmlDeviceGetTemperature"] == 2


def test_no_driver_means_no_telemetry_with_the_reason() -> None:
    with pytest.raises(TelemetryUnavailable, match="NVML did not start"):
        NvmlTelemetry.open(0, nvml=FakeNvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND))


def test_an_unknown_gpu_means_no_telemetry_and_nvml_is_shut_down() -> None:
    nvml = FakeNvml(RTX)
    with pytest.raises(TelemetryUnavailable, match="cannot read GPU GPU-missing"):
        NvmlTelemetry.open("GPU-missing", nvml=nvml)
    assert nvml.initialised == 0
    nvml = FakeNvml(RTX, errors={"nvmlDeviceGetUUID": NVML_ERROR_NOT_FOUND})
    with pytest.raises(TelemetryUnavailable, match="cannot read GPU 0"):
        NvmlTelemetry.open(0, nvml=nvml)
