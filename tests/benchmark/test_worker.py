"""The worker entry point: picking the array library, mapping GPUs to NVML, and the whole run."""

from __future__ import annotations

import importlib.util
import json
import logging
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from sparecycles.agent.benchmark import worker
from sparecycles.agent.benchmark.backend import ArrayBackend
from sparecycles.agent.benchmark.errors import BenchmarkError, BenchmarkInterrupted, NoArrayLibraryError
from sparecycles.agent.benchmark.measure import QUICK, Plan
from sparecycles.agent.benchmark.results import BenchmarkResult
from sparecycles.agent.benchmark.telemetry import NvmlTelemetry
from tests.fakes.benchmark_backends import SimulatedBackend
from tests.fakes.fake_pynvml import FakeDevice, FakeNvml

H100 = FakeDevice(
    name="NVIDIA H100 80GB HBM3",
    uuid="GPU-00000000-0000-0000-0000-00000000cafe",  # not the simulated backend's: NVML names the GPU
    memory_total_bytes=81559 * 2**20,
    power_usage_mw=655_000,
    temperature_c=64,
)


def h100_like() -> SimulatedBackend:
    """Figures an H100 SXM typically achieves (so the outlier check has nothing to say)."""
    return SimulatedBackend(
        tflops={"fp32": 50.0, "fp16": 760.0, "bf16": 780.0},
        memory_gbps=2950.0,
        host_to_device_gbps=53.0,
        device_to_host_gbps=54.0,
        memory_bytes=79 * 2**30,
        device_name="NVIDIA H100 80GB HBM3",
    )


def refuse(reason: str) -> worker.BackendOpener:
    def opener(index: int) -> ArrayBackend:
        raise NoArrayLibraryError(reason)

    return opener


def test_the_first_library_that_opens_is_used() -> None:
    backend = h100_like()
    chosen = worker.open_backend(0, [refuse("PyTorch is not installed"), lambda index: backend])
    assert chosen is backend


def test_without_any_library_the_message_says_what_to_install() -> None:
    with pytest.raises(NoArrayLibraryError) as raised:
        worker.open_backend(0, [refuse("PyTorch is not installed"), refuse("CuPy is not installed")])
    assert str(raised.value).splitlines() == [
        "no GPU array library: install the benchmark extra (PyTorch or CuPy)",
        "  PyTorch is not installed",
        "  CuPy is not installed",
    ]


def test_main_exits_2_without_a_library(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def no_library(index: int) -> ArrayBackend:
        raise NoArrayLibraryError(worker.NO_LIBRARY_MESSAGE)

    monkeypatch.setattr(worker, "open_backend", no_library)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    assert worker.main(["--quick"]) == 2
    assert worker.os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("no GPU array library: install the benchmark extra (PyTorch or CuPy)")


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is not None for name in ("torch", "cupy")),
    reason="PyTorch or CuPy is installed here, so the worker would find a library",
)
def test_the_module_exits_2_where_neither_library_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sparecycles.agent.benchmark.worker", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("no GPU array library: install the benchmark extra (PyTorch or CuPy)\n")


def test_importing_the_worker_loads_no_array_library_or_nvml() -> None:
    code = (
        "import sys, sparecycles.agent.benchmark.worker; "
        "print(' '.join(m for m in ('torch', 'cupy', 'numpy', 'pynvml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("cuda_index", "visible", "target"),
    [
        (0, None, 0),
        (3, "", 3),
        (0, "2,3", 2),
        (1, "2, 3", 3),
        (0, "GPU-aaaa-bbbb", "GPU-aaaa-bbbb"),
        (1, "0,MIG-1234", "MIG-1234"),
    ],
)
def test_cuda_devices_map_to_nvml_devices(cuda_index: int, visible: str | None, target: int | str) -> None:
    assert worker.nvml_target(cuda_index, visible) == target


def test_nvml_is_opened_by_the_libraries_uuid_else_by_index(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml(FakeDevice(uuid="GPU-other"), H100)

    def opener(target: int | str) -> NvmlTelemetry:
        return NvmlTelemetry.open(target, nvml=nvml)

    by_uuid = worker.open_telemetry(H100.uuid, 0, opener)
    assert by_uuid is not None
    assert by_uuid.facts.index == 1
    by_index = worker.open_telemetry("GPU-unknown-to-nvml", 1, opener)
    assert by_index is not None
    assert by_index.facts.uuid == H100.uuid
    with caplog.at_level(logging.WARNING):
        assert worker.open_telemetry("GPU-unknown-to-nvml", 5, opener) is None
    assert "cannot read GPU GPU-unknown-to-nvml" in caplog.text
    assert "cannot read GPU 5" in caplog.text


def test_a_cuda_device_outside_the_visible_list_is_an_error() -> None:
    with pytest.raises(BenchmarkError, match="there is no GPU 2"):
        worker.nvml_target(2, "0,1")


def test_a_benchmark_with_nvml_records_the_gpu_its_power_and_its_model() -> None:
    telemetry = NvmlTelemetry.open(0, nvml=FakeNvml(H100, driver_version="580.159.04"))
    result = worker.benchmark(
        h100_like(),
        QUICK,
        cuda_index=0,
        telemetry=telemetry,
        should_stop=lambda: False,
        now=lambda: datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert (result.gpu_uuid, result.gpu_name, result.driver_version) == (H100.uuid, H100.name, "580.159.04")
    assert result.reference_model == "h100-sxm"
    assert result.runner == "in-process: simulated"
    assert result.mode == "quick"
    assert result.flags == ()
    assert result.score is not None
    assert 750 < result.score < 850
    assert all(phase.mean_power_w == 655.0 for phase in result.phases if phase.value is not None)
    assert result.measured_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_without_nvml_the_library_names_the_gpu() -> None:
    backend = h100_like()
    result = worker.benchmark(backend, QUICK, cuda_index=2, telemetry=None, should_stop=lambda: False)
    assert (result.gpu_index, result.gpu_uuid, result.driver_version) == (2, backend.device_uuid, None)
    assert result.reference_model == "h100-sxm"
    assert all(phase.mean_power_w is None for phase in result.phases)


def test_an_unknown_model_is_scored_but_not_checked() -> None:
    backend = SimulatedBackend(tflops={"fp32": 0.5, "fp16": 1.0, "bf16": None}, device_name="NVIDIA TITAN V")
    result = worker.benchmark(backend, QUICK, cuda_index=0, telemetry=None, should_stop=lambda: False)
    assert result.reference_model is None
    assert result.flags == ()
    assert result.score is not None


def _patch_gpu(monkeypatch: pytest.MonkeyPatch, backend: ArrayBackend, plan: Plan = QUICK) -> None:
    real_open = NvmlTelemetry.open
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # main sets it; monkeypatch puts it back
    monkeypatch.setattr(worker, "open_backend", lambda index: backend)
    monkeypatch.setattr(
        worker.NvmlTelemetry, "open", classmethod(lambda cls, target: real_open(target, nvml=FakeNvml(H100)))
    )
    monkeypatch.setitem(worker.PLANS, "quick", plan)


def test_main_prints_the_result_as_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _patch_gpu(monkeypatch, h100_like())
    handler = signal.getsignal(signal.SIGINT)
    assert worker.main(["--quick", "--gpu", "0", "--json"]) == 0
    assert signal.getsignal(signal.SIGINT) is handler  # the worker's stop handler is gone again
    result = BenchmarkResult.from_json(capsys.readouterr().out)
    assert result.gpu_uuid == H100.uuid
    assert result.reference_model == "h100-sxm"
    assert json.loads(result.to_json())["figures"]["bf16_tflops"] == pytest.approx(780.0)


def test_main_prints_a_summary_for_people(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _patch_gpu(monkeypatch, h100_like())
    assert worker.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"NVIDIA H100 80GB HBM3 ({H100.uuid})")
    assert "BF16 matrix multiply          780.0 TFLOP/s" in out
    assert "score " in out


def test_main_exits_3_and_prints_nothing_when_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _patch_gpu(monkeypatch, h100_like())

    def interrupted(*args: object, **kwargs: object) -> BenchmarkResult:
        raise BenchmarkInterrupted("matmul_bf16")

    monkeypatch.setattr(worker, "benchmark", interrupted)
    assert worker.main(["--json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "interrupted during matmul_bf16: no result recorded" in captured.err
