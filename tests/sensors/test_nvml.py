"""The NVML backend against a fake pynvml module, and against the real one on this GPU-less machine."""

from __future__ import annotations

import ctypes
import logging
import os
import threading

import psutil
import pytest

from sparecycles.agent.sensors.gpu import (
    NO_DRIVER_REASON,
    GpuProcess,
    NvmlGpuBackend,
    NvmlGpuInventory,
    PowerLimits,
)
from sparecycles.agent.sensors.gpu.nvml import NOT_PERMITTED_MESSAGE
from tests.fakes.fake_pynvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_FUNCTION_NOT_FOUND,
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    FakeDevice,
    FakeNvml,
    ProcessInfo,
    ProcessUtilizationSample,
)

NVML_LOGGER = "sparecycles.agent.sensors.gpu.nvml"


def _not_ours(pid: int) -> bool:
    return False


def _second_gpu() -> FakeDevice:
    return FakeDevice(
        name="NVIDIA RTX A4000",
        uuid="GPU-a4000000-0000-0000-0000-000000000001",
        memory_total_bytes=16 * 1024**3,
        compute_capability=(8, 6),
        power_min_mw=100_000,
        power_max_mw=140_000,
        power_default_mw=140_000,
        power_limit_mw=125_500,
    )


def _nvml_library_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


# -- discovery ------------------------------------------------------------------------------------


def test_inventory_reads_every_field_in_the_units_of_the_model() -> None:
    nvml = FakeNvml(FakeDevice(), _second_gpu(), driver_version="550.54.14", cuda_driver_version=12040)

    discovery = NvmlGpuBackend(nvml).discover()

    assert discovery.backend == "nvml"
    assert discovery.available
    assert discovery.reason is None
    first, second = discovery.gpus
    assert first.index == 0
    assert first.uuid == "GPU-6b1d1f5e-0000-0000-0000-000000000000"
    assert first.name == "NVIDIA GeForce RTX 4070"
    assert first.vram_total_bytes == 12 * 1024**3
    assert first.driver_version == "550.54.14"
    assert first.cuda_version == "12.4"
    assert first.compute_capability == (8, 9)
    assert (first.pcie_generation, first.pcie_width) == (4, 16)  # the maximum link, not the idle one (gen 1)
    assert first.power_limits == PowerLimits(min_w=100.0, default_w=200.0, max_w=220.0, current_w=200.0)
    assert second.index == 1
    assert second.name == "NVIDIA RTX A4000"
    assert second.compute_capability == (8, 6)
    assert second.power_limits.current_w == 125.5


@pytest.mark.parametrize(("cuda", "expected"), [(12040, "12.4"), (11080, "11.8"), (13000, "13.0"), (12020, "12.2")])
def test_cuda_version_is_written_as_major_dot_minor(cuda: int, expected: str) -> None:
    discovery = NvmlGpuBackend(FakeNvml(FakeDevice(), cuda_driver_version=cuda)).discover()
    assert discovery.gpus[0].cuda_version == expected


def test_strings_from_older_bindings_arrive_as_bytes_and_are_decoded() -> None:
    nvml = FakeNvml(FakeDevice(), strings_as_bytes=True, process_names={4242: "/usr/bin/blender"})
    nvml.devices[0].compute_processes = [ProcessInfo(4242, 1024)]
    backend = NvmlGpuBackend(nvml)

    gpu = backend.discover().gpus[0]
    (sample,) = backend.sample(_not_ours)

    assert gpu.name == "NVIDIA GeForce RTX 4070"
    assert gpu.uuid.startswith("GPU-")
    assert gpu.driver_version == "550.54.14"
    assert sample.foreign_processes[0].name == "blender"


def test_pcie_falls_back_to_the_current_link_where_the_maximum_is_unsupported() -> None:
    nvml = FakeNvml(
        FakeDevice(pcie_current_generation=3, pcie_current_width=8),
        errors={
            "nvmlDeviceGetMaxPcieLinkGeneration": NVML_ERROR_NOT_SUPPORTED,
            "nvmlDeviceGetMaxPcieLinkWidth": NVML_ERROR_NOT_SUPPORTED,
        },
    )
    gpu = NvmlGpuBackend(nvml).discover().gpus[0]
    assert (gpu.pcie_generation, gpu.pcie_width) == (3, 8)


def test_inventory_fields_a_gpu_does_not_report_are_none_not_guesses() -> None:
    unsupported = (
        "nvmlDeviceGetCudaComputeCapability",
        "nvmlDeviceGetMaxPcieLinkGeneration",
        "nvmlDeviceGetCurrPcieLinkGeneration",
        "nvmlDeviceGetPowerManagementLimitConstraints",
        "nvmlDeviceGetPowerManagementDefaultLimit",
        "nvmlDeviceGetPowerManagementLimit",
        "nvmlSystemGetCudaDriverVersion_v2",
    )
    nvml = FakeNvml(FakeDevice(), errors=dict.fromkeys(unsupported, NVML_ERROR_NOT_SUPPORTED))

    gpu = NvmlGpuBackend(nvml).discover().gpus[0]

    assert gpu.compute_capability is None
    assert gpu.pcie_generation is None
    assert gpu.pcie_width == 16
    assert gpu.cuda_version is None
    assert gpu.power_limits == PowerLimits()


def test_a_gpu_that_cannot_be_opened_is_left_out_and_the_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    locked = FakeDevice(errors={"nvmlDeviceGetHandleByIndex": NVML_ERROR_NO_PERMISSION})
    backend = NvmlGpuBackend(FakeNvml(locked, _second_gpu()))

    with caplog.at_level(logging.INFO, logger=NVML_LOGGER):
        discovery = backend.discover()

    assert discovery.available
    assert [gpu.index for gpu in discovery.gpus] == [1]
    assert [sample.index for sample in backend.sample(_not_ours)] == [1]
    assert "GPU 0 left out" in caplog.text


def test_a_driver_without_gpus_is_reported_as_such() -> None:
    discovery = NvmlGpuBackend(FakeNvml()).discover()
    assert (discovery.backend, discovery.available) == ("nvml", False)
    assert discovery.reason == "The NVIDIA driver is loaded but reports no GPU."
    assert discovery.gpus == ()


def test_missing_library_is_the_no_driver_discovery() -> None:
    backend = NvmlGpuBackend(FakeNvml(FakeDevice(), init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    discovery = backend.discover()
    assert (discovery.backend, discovery.available, discovery.reason) == ("none", False, NO_DRIVER_REASON)
    assert backend.sample(_not_ours) == ()


def test_a_driver_that_will_not_start_says_why_and_what_to_do() -> None:
    discovery = NvmlGpuBackend(FakeNvml(FakeDevice(), init_error=NVML_ERROR_DRIVER_NOT_LOADED)).discover()
    assert (discovery.backend, discovery.available) == ("none", False)
    assert discovery.reason is not None
    assert "not usable (Driver Not Loaded)" in discovery.reason
    assert "Reboot" in discovery.reason


@pytest.mark.skipif(_nvml_library_present(), reason="this machine has libnvidia-ml; see tests/test_gpu_real.py")
def test_real_pynvml_without_a_driver_answers_not_available_once_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = NvmlGpuInventory()  # the real pynvml, imported lazily
    with caplog.at_level(logging.DEBUG, logger=NVML_LOGGER):
        discovery = backend.discover()
        again = backend.discover()
        samples = backend.sample(_not_ours)
        outcome = backend.set_power_limit(0, 150)
        backend.close()

    assert NvmlGpuInventory is NvmlGpuBackend
    assert discovery == again
    assert (discovery.backend, discovery.available, discovery.reason, discovery.gpus) == (
        "none",
        False,
        NO_DRIVER_REASON,
        (),
    )
    assert samples == ()
    assert not outcome.applied
    assert [r.getMessage() for r in caplog.records] == [f"No NVIDIA GPU available: {NO_DRIVER_REASON}"]
    assert "Traceback" not in caplog.text


def test_nvml_is_initialised_once_and_handles_are_looked_up_once() -> None:
    nvml = FakeNvml(FakeDevice(), _second_gpu())
    backend = NvmlGpuBackend(nvml)
    assert nvml.calls["nvmlInit"] == 0  # nothing happens until asked

    for _ in range(5):
        backend.sample(_not_ours)
        backend.discover()

    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlDeviceGetCount"] == 1
    assert nvml.calls["nvmlDeviceGetHandleByIndex"] == 2
    assert nvml.calls["nvmlDeviceGetPowerUsage"] == 10


def test_concurrent_first_use_initialises_nvml_once() -> None:
    nvml = FakeNvml(FakeDevice())
    backend = NvmlGpuBackend(nvml)
    start = threading.Barrier(8)
    results = []

    def use() -> None:
        start.wait()
        results.append(len(backend.sample(_not_ours)))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [1] * 8
    assert nvml.calls["nvmlInit"] == 1


def test_close_shuts_nvml_down_once_and_a_later_use_starts_again() -> None:
    nvml = FakeNvml(FakeDevice())
    backend = NvmlGpuBackend(nvml)
    backend.close()  # never started: nothing to shut down
    assert nvml.calls["nvmlShutdown"] == 0

    backend.discover()
    backend.close()
    backend.close()
    assert nvml.calls["nvmlShutdown"] == 1
    assert nvml.initialised == 0

    assert len(backend.sample(_not_ours)) == 1
    assert nvml.calls["nvmlInit"] == 2


def test_close_after_a_failed_start_does_not_call_shutdown() -> None:
    nvml = FakeNvml(FakeDevice(), init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    backend = NvmlGpuBackend(nvml)
    backend.discover()
    backend.close()
    assert nvml.calls["nvmlShutdown"] == 0


# -- samples ----------------------------------------------------------------------------------------


def test_a_sample_reads_every_field_in_the_units_of_the_model() -> None:
    device = FakeDevice(
        utilization_gpu_percent=97,
        utilization_memory_percent=61,
        memory_used_bytes=9 * 1024**3,
        temperature_c=74,
        power_usage_mw=187_654,
        energy_total_mj=9_876_543_210,
        clock_graphics_mhz=2610,
        clock_memory_mhz=10501,
        fan_speed_percent=68,
    )
    backend = NvmlGpuBackend(FakeNvml(device, _second_gpu()))

    first, second = backend.sample(_not_ours)

    assert (first.index, first.uuid) == (0, device.uuid)
    assert first.utilization_gpu_percent == 97.0
    assert first.utilization_memory_percent == 61.0
    assert first.vram_used_bytes == 9 * 1024**3
    assert first.temperature_c == 74.0
    assert first.power_draw_w == pytest.approx(187.654)
    assert first.energy_total_mj == 9_876_543_210
    assert (first.clock_graphics_mhz, first.clock_memory_mhz) == (2610, 10501)
    assert first.fan_speed_percent == 68.0
    assert first.foreign_processes == ()
    assert second.index == 1
    assert second.monotonic_s >= first.monotonic_s > 0


def test_later_samples_follow_the_device() -> None:
    nvml = FakeNvml(FakeDevice())
    backend = NvmlGpuBackend(nvml)
    backend.sample(_not_ours)
    nvml.devices[0].power_usage_mw = 250_000
    nvml.devices[0].energy_total_mj += 1_000
    (sample,) = backend.sample(_not_ours)
    assert sample.power_draw_w == 250.0
    assert sample.energy_total_mj == 123_457_789


def test_an_unsupported_reading_is_none_and_logged_once_over_many_samples(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml(
        FakeDevice(),
        _second_gpu(),
        errors={
            "nvmlDeviceGetFanSpeed": NVML_ERROR_NOT_SUPPORTED,  # a fanless datacenter board
            "nvmlDeviceGetTotalEnergyConsumption": NVML_ERROR_FUNCTION_NOT_FOUND,  # a pre-Volta driver
        },
    )
    backend = NvmlGpuBackend(nvml)

    with caplog.at_level(logging.DEBUG, logger=NVML_LOGGER):
        samples = [sample for _ in range(25) for sample in backend.sample(_not_ours)]

    assert len(samples) == 50
    assert all(sample.fan_speed_percent is None for sample in samples)
    assert all(sample.energy_total_mj is None for sample in samples)
    assert all(sample.power_draw_w == pytest.approx(18.25) for sample in samples)  # the rest still read
    assert nvml.calls["nvmlDeviceGetFanSpeed"] == 50  # asked every time: a driver update may add it
    fan = [r for r in caplog.records if "nvmlDeviceGetFanSpeed" in r.getMessage()]
    energy = [r for r in caplog.records if "nvmlDeviceGetTotalEnergyConsumption" in r.getMessage()]
    assert len(fan) == 1
    assert len(energy) == 1
    assert fan[0].levelno == logging.INFO
    assert "not available" in fan[0].getMessage()
    assert "Not Supported" in fan[0].getMessage()


def test_a_failing_gpu_is_logged_once_as_a_warning_and_reads_none(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml(FakeDevice())
    backend = NvmlGpuBackend(nvml)
    backend.discover()
    nvml.devices[0].errors = {"nvmlDeviceGetTemperature": NVML_ERROR_GPU_IS_LOST}

    with caplog.at_level(logging.DEBUG, logger=NVML_LOGGER):
        samples = [backend.sample(_not_ours)[0] for _ in range(10)]

    assert all(sample.temperature_c is None for sample in samples)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "nvmlDeviceGetTemperature" in warnings[0].getMessage()
    assert "GPU is lost" in warnings[0].getMessage()


def test_a_function_the_bindings_lack_is_none_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    class OldBindings(FakeNvml):
        """Bindings from before nvmlDeviceGetTotalEnergyConsumption existed."""

        def __getattribute__(self, name: str) -> object:
            if name == "nvmlDeviceGetTotalEnergyConsumption":
                raise AttributeError(name)
            return super().__getattribute__(name)

    backend = NvmlGpuBackend(OldBindings(FakeDevice()))
    with caplog.at_level(logging.INFO, logger=NVML_LOGGER):
        samples = [backend.sample(_not_ours)[0] for _ in range(5)]

    assert all(sample.energy_total_mj is None for sample in samples)
    assert sum("nvmlDeviceGetTotalEnergyConsumption" in r.getMessage() for r in caplog.records) == 1


# -- processes --------------------------------------------------------------------------------------


def test_own_processes_are_left_out_and_foreign_ones_kept_once_each() -> None:
    device = FakeDevice(
        compute_processes=[ProcessInfo(100, 4 * 1024**3), ProcessInfo(200, 2 * 1024**3), ProcessInfo(300, 1024**3)],
        graphics_processes=[ProcessInfo(300, 1024**3), ProcessInfo(400, None)],
        process_samples=[
            ProcessUtilizationSample(pid=200, timeStamp=1_000, smUtil=40),
            ProcessUtilizationSample(pid=200, timeStamp=3_000, smUtil=55),  # the newer one counts
            ProcessUtilizationSample(pid=300, timeStamp=2_000, smUtil=12),
            ProcessUtilizationSample(pid=100, timeStamp=2_500, smUtil=99),
        ],
    )
    names = {100: "/opt/sparecycles/job", 200: "/usr/bin/python3", 300: "/home/ann/Games/witcher3.exe", 400: "Xorg"}
    backend = NvmlGpuBackend(FakeNvml(device, process_names=names))
    asked: list[int] = []

    def is_own_process(pid: int) -> bool:
        asked.append(pid)
        return pid == 100

    (sample,) = backend.sample(is_own_process)

    assert sample.foreign_processes == (
        GpuProcess(pid=200, name="python3", vram_used_bytes=2 * 1024**3, gpu_utilization_percent=55.0),
        GpuProcess(pid=300, name="witcher3.exe", vram_used_bytes=1024**3, gpu_utilization_percent=12.0),
        GpuProcess(pid=400, name="Xorg", vram_used_bytes=None, gpu_utilization_percent=None),
    )
    assert 100 in asked


def test_a_pid_in_both_lists_keeps_the_memory_it_reports() -> None:
    device = FakeDevice(compute_processes=[ProcessInfo(7, None)], graphics_processes=[ProcessInfo(7, 300 * 1024**2)])
    (sample,) = NvmlGpuBackend(FakeNvml(device, process_names={7: "app"})).sample(_not_ours)
    assert sample.foreign_processes == (GpuProcess(pid=7, name="app", vram_used_bytes=300 * 1024**2),)


def test_process_names_fall_back_to_the_operating_system() -> None:
    pid = os.getpid()
    device = FakeDevice(compute_processes=[ProcessInfo(pid, 1)])
    nvml = FakeNvml(device, errors={"nvmlSystemGetProcessName": NVML_ERROR_NO_PERMISSION})
    (sample,) = NvmlGpuBackend(nvml).sample(_not_ours)
    assert sample.foreign_processes[0].name == psutil.Process(pid).name()


def test_a_process_that_is_gone_keeps_its_pid_as_name() -> None:
    gone = 2**22 + 12345  # above Linux's pid_max
    device = FakeDevice(compute_processes=[ProcessInfo(gone, 1)])
    (sample,) = NvmlGpuBackend(FakeNvml(device)).sample(_not_ours)
    assert sample.foreign_processes[0].name == f"pid {gone}"


def test_per_process_utilisation_asks_only_for_recent_samples() -> None:
    device = FakeDevice(
        compute_processes=[ProcessInfo(5, 1)],
        process_samples=[ProcessUtilizationSample(pid=5, timeStamp=10_000_000, smUtil=30)],
    )
    backend = NvmlGpuBackend(FakeNvml(device, process_names={5: "x"}))

    first = backend.sample(_not_ours)[0].foreign_processes[0]
    device.process_samples.append(ProcessUtilizationSample(pid=5, timeStamp=10_500_000, smUtil=80))
    second = backend.sample(_not_ours)[0].foreign_processes[0]
    third = backend.sample(_not_ours)[0].foreign_processes[0]  # nothing new: the last reading in the window
    device.process_samples[:] = [ProcessUtilizationSample(pid=5, timeStamp=1_000, smUtil=90)]  # too old
    fourth = backend.sample(_not_ours)[0].foreign_processes[0]

    assert first.gpu_utilization_percent == 30.0
    assert second.gpu_utilization_percent == 80.0
    assert third.gpu_utilization_percent == 80.0
    assert fourth.gpu_utilization_percent is None


def test_processes_on_a_gpu_without_process_lists_are_an_empty_tuple(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml(
        FakeDevice(),
        errors={
            "nvmlDeviceGetComputeRunningProcesses": NVML_ERROR_NOT_SUPPORTED,
            "nvmlDeviceGetGraphicsRunningProcesses": NVML_ERROR_NOT_SUPPORTED,
        },
    )
    with caplog.at_level(logging.INFO, logger=NVML_LOGGER):
        samples = [NvmlGpuBackend(nvml).sample(_not_ours)[0] for _ in range(3)]
    assert all(sample.foreign_processes == () for sample in samples)


# -- power limits -----------------------------------------------------------------------------------


def test_a_power_limit_is_applied_in_milliwatts() -> None:
    nvml = FakeNvml(FakeDevice())
    outcome = NvmlGpuBackend(nvml).set_power_limit(0, 150.5)
    assert outcome.applied
    assert outcome.message == "power limit: GPU 0 set to 150 W"
    assert nvml.devices[0].power_limit_mw == 150_500


@pytest.mark.parametrize(("asked_w", "applied_mw"), [(50, 100_000), (400, 220_000)])
def test_a_power_limit_outside_the_range_is_clamped(asked_w: float, applied_mw: int) -> None:
    nvml = FakeNvml(FakeDevice())
    outcome = NvmlGpuBackend(nvml).set_power_limit(0, asked_w)
    assert outcome.applied
    assert "clamped" in outcome.message
    assert "100–220 W" in outcome.message
    assert nvml.devices[0].power_limit_mw == applied_mw


def test_a_power_limit_without_permission_says_so() -> None:
    nvml = FakeNvml(FakeDevice(), errors={"nvmlDeviceSetPowerManagementLimit": NVML_ERROR_NO_PERMISSION})
    outcome = NvmlGpuBackend(nvml).set_power_limit(0, 150)
    assert not outcome.applied
    assert (
        outcome.message == NOT_PERMITTED_MESSAGE == "power limit: not permitted (needs root or the privileged helper)"
    )
    assert nvml.devices[0].power_limit_mw == 200_000


def test_a_power_limit_on_a_gpu_without_one_says_so() -> None:
    nvml = FakeNvml(FakeDevice(), errors={"nvmlDeviceSetPowerManagementLimit": NVML_ERROR_NOT_SUPPORTED})
    outcome = NvmlGpuBackend(nvml).set_power_limit(0, 150)
    assert not outcome.applied
    assert "not supported" in outcome.message


def test_none_restores_the_limit_found_at_discovery() -> None:
    nvml = FakeNvml(FakeDevice(power_limit_mw=180_000))
    backend = NvmlGpuBackend(nvml)
    backend.discover()
    backend.set_power_limit(0, 120)
    nvml.devices[0].power_limit_mw = 130_000  # changed behind our back: still restore the original

    outcome = backend.set_power_limit(0, None)

    assert outcome.applied
    assert outcome.message == "power limit: GPU 0 restored to 180 W"
    assert nvml.devices[0].power_limit_mw == 180_000


@pytest.mark.parametrize("watts", [0.0, -5.0, float("nan"), float("inf")])
def test_nonsense_power_limits_are_refused_without_calling_nvml(watts: float) -> None:
    nvml = FakeNvml(FakeDevice())
    outcome = NvmlGpuBackend(nvml).set_power_limit(0, watts)
    assert not outcome.applied
    assert nvml.calls["nvmlDeviceSetPowerManagementLimit"] == 0


def test_a_power_limit_for_an_unknown_gpu_is_refused() -> None:
    outcome = NvmlGpuBackend(FakeNvml(FakeDevice())).set_power_limit(3, 150)
    assert outcome == outcome.__class__(False, "power limit: no GPU #3")
