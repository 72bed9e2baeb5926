"""The benchmark and the marketplace: a GPU being benchmarked is not offered for work meanwhile, and each
GPU's kept score goes to the marketplace with the registration. GPUs come from the real NVML backend over
a fake NVML (tests/fakes), the policy from the real work engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from eth_account import Account

from sparecycles.agent.benchmark.results import ResultStore
from sparecycles.agent.benchmark.service import BenchmarkService, ProcessRunner
from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.market.client import Backoff, MarketClient
from sparecycles.agent.market.provider import MachineOffer, MarketProvider, ProviderSetup
from sparecycles.agent.market.service import _setup, machine_offer
from sparecycles.agent.market_server import db as tables
from sparecycles.agent.sensors.gpu.nvml import NvmlGpuBackend
from sparecycles.config import Settings
from sparecycles.protocol.market import GpuInfo
from tests.fakes.fake_pynvml import FakeDevice, FakeNvml
from tests.fakes.presence import ScriptedPresenceSource

from ..benchmark.test_service import fake_runner
from .conftest import GPU0, Market
from .test_provider_loop import LIMITS, InstantRuntime, market_url

PAYOUT = Account.create().address
A = FakeDevice(name="NVIDIA H100 80GB HBM3", uuid="GPU-aaaaaaaa-0000-0000-0000-000000000001")
B = FakeDevice(name="NVIDIA H100 80GB HBM3", uuid="GPU-bbbbbbbb-0000-0000-0000-000000000002")


def engine() -> WorkEngine:
    work = WorkEngine(
        gpu_backend=NvmlGpuBackend(FakeNvml(A, B, driver_version="580.159.04")),
        presence_source=ScriptedPresenceSource(idle_s=3600),
        activity=None,
        settings=Settings(),
    )
    work.discover()
    work.read_gpus()
    work.read_presence()
    work.evaluate()
    return work


def test_a_gpu_under_benchmark_is_not_offered_and_the_kept_score_is_registered(tmp_path: Path) -> None:
    work = engine()
    assert machine_offer(work, 2).gpus == {A.uuid: 0, B.uuid: 1}
    assert machine_offer(work, 2, held=frozenset({1})).gpus == {A.uuid: 0}

    runner: ProcessRunner = fake_runner()
    benchmarks = BenchmarkService(ResultStore(tmp_path / "benchmarks.json"), lambda: runner)
    [gpu_b] = [gpu for gpu in work.snapshot().discovery.gpus if gpu.uuid == B.uuid]
    result = asyncio.run(benchmarks.run(gpu_b))
    setup = _setup(work, Settings, benchmarks=benchmarks)()
    scores = {gpu.uuid: gpu.score for gpu in setup.gpus}
    assert scores == {A.uuid: None, B.uuid: result.score}


def test_a_new_score_is_registered_again_with_the_marketplace(market: Market, tmp_path: Path) -> None:
    """The provider registers again when a GPU's score changes (a benchmark finished), so the marketplace's
    auction (jobs with a minimum score) sees it without the agent signing in again."""
    scores: list[float | None] = [None]

    def setup() -> ProviderSetup:
        gpu = GpuInfo(uuid=GPU0, name="NVIDIA H100 80GB HBM3", vram_bytes=80 * 2**30, score=scores[-1])
        return ProviderSetup(PAYOUT, 10**6, 1000, "test", (gpu,), LIMITS)

    provider = MarketProvider(
        client=MarketClient(market_url(market), transport=httpx.ASGITransport(app=market.client.app)),
        identity=Account.create(),
        runtime=InstantRuntime(tmp_path / "outputs"),  # type: ignore[arg-type]
        setup=setup,
        offer=lambda: MachineOffer({GPU0: 0}, 0),
        state_dir=tmp_path / "provider",
        poll_wait_s=0.05,
        backoff=Backoff(first_s=0.05, cap_s=0.1),
    )

    def registered_score() -> float | None:
        with market.market.read() as session:
            gpu = session.query(tables.ProviderGpu).filter_by(uuid=GPU0).one_or_none()
            return gpu.score if gpu is not None else -1.0

    async def scenario() -> None:
        loop = asyncio.create_task(provider.run())
        try:
            for _ in range(400):
                await asyncio.sleep(0.05)
                if registered_score() is None and scores[-1] is None:
                    scores.append(829.1)  # the benchmark finished
                if registered_score() == 829.1:
                    break
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    asyncio.run(scenario())
    assert registered_score() == 829.1
