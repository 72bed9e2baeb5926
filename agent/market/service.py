"""Wire the agent to its marketplace: the configured one, or the private one it runs itself.

With ``marketplace.url`` unset the agent serves the reference marketplace in-process on loopback (the
owner's private marketplace, private.py: a studio's render queue, or a demo on a fresh machine) and
takes work from it like from any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparecycles.agent.chain.trust import TrustedVault
from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.jobs.limits import provider_limits
from sparecycles.agent.jobs.runtime import JobRuntime
from sparecycles.agent.keystore import KeySource, KeyStoreError, load_key
from sparecycles.agent.ledger.service import LedgerService
from sparecycles.agent.market.client import MarketClient
from sparecycles.agent.market.private import PrivateMarketplace
from sparecycles.agent.market.provider import MachineOffer, MarketProvider, ProviderSetup
from sparecycles.agent.policy.model import Action
from sparecycles.agent.sensors.gpu.model import GpuDiscovery, GpuIdentity
from sparecycles.config import MarketplaceSettings, Settings
from sparecycles.control.models import MarketplaceStatus
from sparecycles.protocol.market import GpuInfo

if TYPE_CHECKING:
    from sparecycles.agent.benchmark.service import BenchmarkService

log = logging.getLogger(__name__)

IDENTITY_KEY_NAME = "machine-identity"


def identity_source(settings: MarketplaceSettings) -> KeySource:
    """Where the machine's identity key lives: the keyring, or the file the settings name."""
    return KeySource(IDENTITY_KEY_NAME, Path(settings.identity_key_file) if settings.identity_key_file else None)


def marketable_gpus(discovery: GpuDiscovery) -> tuple[GpuIdentity, ...]:
    """The GPUs a marketplace may be offered: real ones. A simulated GPU cannot run anyone's CUDA work (and its
    UUID is not an NVIDIA one); a simulated agent offers its CPU cores only."""
    return () if discovery.backend == "simulated" else discovery.gpus


def machine_offer(engine: WorkEngine, limits_cpus: float, held: frozenset[int] = frozenset()) -> MachineOffer:
    """What the policy lets this machine offer now: GPUs that may work (but not those ``held``, being
    benchmarked), and cores while the machine may."""
    snapshot = engine.snapshot()
    gpus = {
        gpu.uuid: gpu.index
        for gpu in marketable_gpus(snapshot.discovery)
        if (decision := snapshot.decisions.get(gpu.index)) is not None
        and decision.action is Action.WORK
        and gpu.index not in held
    }
    machine = snapshot.machine
    cores = int(limits_cpus) if machine is not None and machine.action is Action.WORK else 0
    return MachineOffer(gpus, cores)


@dataclass
class MarketConnection:
    """The running market side of the agent: the provider loop and, when private, the embedded server."""

    url: str
    provider: MarketProvider | None
    problem: str | None
    tasks: list[asyncio.Task[Any]]
    client: MarketClient | None = None
    private: PrivateMarketplace | None = None
    setup: Callable[[], ProviderSetup] | None = None

    def status(self) -> MarketplaceStatus:
        provider = self.provider
        problem = self.problem or (provider.problem if provider is not None else None)
        voucher = provider.vouchers.best() if provider is not None else None
        return MarketplaceStatus(
            url=self.url,
            private=self.private is not None,
            provider_address=provider.address if provider is not None else None,
            connected=provider is not None and problem is None,
            problem=problem,
            earned_base_units=voucher.cumulative_amount if voucher is not None else None,
            leases=provider.active_leases if provider is not None else 0,
            payout_address=provider.registered_payout if provider is not None else None,
            floor_per_gpu_hour=self.floors[0] if self.floors else None,
            floor_per_core_hour=self.floors[1] if self.floors else None,
            price_note=(provider.price_note if provider is not None else None) or self.floor_problem,
        )

    @property
    def floors(self) -> tuple[int, int] | None:
        if self.provider is None or self.setup is None:
            return None
        setup = self.setup()
        return setup.price_floor_per_gpu_hour, setup.price_floor_per_core_hour

    @property
    def floor_problem(self) -> str | None:
        """What the floors leave out (no tariff or rate set), when they do."""
        if self.setup is None:
            return None
        setup = self.setup()
        return setup.floor_basis if setup.floor_incomplete else None

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.close()
        if self.private is not None:
            await self.private.stop()


def _setup(
    engine: WorkEngine,
    settings: Callable[[], Settings],
    default_payout: str | None = None,
    ledger: LedgerService | None = None,
    benchmarks: BenchmarkService | None = None,
) -> Callable[[], ProviderSetup]:
    """The provider's setup, read from the settings at each use; ``default_payout`` stands in for an unset
    payout address (on the private marketplace, where the owner pays itself). The floors are the owner's,
    raised to the electricity of the work plus the margin where the ledger knows the tariff and rate."""

    def read() -> ProviderSetup:
        current = settings()
        snapshot = engine.snapshot()
        gpus = marketable_gpus(snapshot.discovery)
        vram = min((gpu.vram_total_bytes for gpu in gpus if gpu.vram_total_bytes), default=None)
        market = current.marketplace
        floor_gpu, floor_core = market.price_floor_per_gpu_hour, market.price_floor_per_core_hour
        basis, incomplete = None, False
        if ledger is not None:
            floors = ledger.floors(
                snapshot.discovery.gpus,  # a simulated GPU's declared power prices the floor in a simulation
                configured_gpu=floor_gpu,
                configured_core=floor_core,
                power_cap_percent=current.gpu.power_limit_percent,
                measured_load_w=benchmarks.load_power_w() if benchmarks is not None else None,
            )
            floor_gpu, floor_core, basis = floors.per_gpu_hour, floors.per_core_hour, floors.basis
            incomplete = not floors.complete
        return ProviderSetup(
            payout_address=market.payout_address or default_payout,
            price_floor_per_gpu_hour=floor_gpu,
            price_floor_per_core_hour=floor_core,
            floor_basis=basis,
            floor_incomplete=incomplete,
            region=market.region,
            gpus=tuple(
                GpuInfo(
                    uuid=gpu.uuid,
                    name=gpu.name[:100],
                    vram_bytes=gpu.vram_total_bytes or 0,
                    score=benchmarks.score(gpu.uuid) if benchmarks is not None else None,
                )
                for gpu in gpus
            ),
            limits=provider_limits(current.jobs, gpu_count=len(gpus), gpu_vram_bytes=vram),
            operator_address=market.operator_address,
        )

    return read


async def start_market(
    *,
    state_dir: Path,
    engine: WorkEngine,
    runtime: JobRuntime,
    settings: Callable[[], Settings],
    ledger: LedgerService | None = None,
    vault_trust: Callable[[], TrustedVault | None] | None = None,
    benchmarks: BenchmarkService | None = None,
) -> MarketConnection:
    """Connect to the marketplace (starting the private one when none is configured) and take work.

    Never raises: what keeps the marketplace from starting is logged and kept as the connection's problem.
    """
    try:
        return await _start_market(
            state_dir=state_dir,
            engine=engine,
            runtime=runtime,
            settings=settings,
            ledger=ledger,
            vault_trust=vault_trust,
            benchmarks=benchmarks,
        )
    except Exception as exc:
        log.exception("The marketplace could not start")
        return MarketConnection(settings().marketplace.url or "private", None, f"marketplace not started: {exc}", [])


async def _start_market(
    *,
    state_dir: Path,
    engine: WorkEngine,
    runtime: JobRuntime,
    settings: Callable[[], Settings],
    ledger: LedgerService | None,
    vault_trust: Callable[[], TrustedVault | None] | None,
    benchmarks: BenchmarkService | None = None,
) -> MarketConnection:
    configured = settings().marketplace
    tasks: list[asyncio.Task[Any]] = []
    private: PrivateMarketplace | None = None
    url = configured.url
    source = identity_source(configured)
    try:
        identity = await asyncio.to_thread(load_key, source, create=True)
    except KeyStoreError as exc:
        problem = f"no machine identity key: {exc}"
        log.warning("Marketplace: %s", problem)
        if url is None:  # the owner can still queue jobs on it; no machine may take them
            private = PrivateMarketplace(state_dir, provider=None)
            url = await private.start()
        return MarketConnection(url, None, problem, tasks, private=private)
    if url is None:
        private = PrivateMarketplace(state_dir, provider=identity.address)
        url = await private.start()
    client = MarketClient(url)
    # On the owner's own private marketplace there is nobody else to pay: it works with no payout
    # address set (its vouchers name the machine's identity address), so a fresh install needs no setup.
    payout = identity.address if private is not None else None
    setup = _setup(engine, settings, default_payout=payout, ledger=ledger, benchmarks=benchmarks)
    provider = MarketProvider(
        client=client,
        identity=identity,
        runtime=runtime,
        setup=setup,
        offer=lambda: machine_offer(
            engine, setup().limits.max_cpus, benchmarks.held() if benchmarks is not None else frozenset()
        ),
        state_dir=state_dir / "provider",
        ledger=ledger.store if ledger is not None else None,
        vault_trust=vault_trust,
    )
    engine.on_change(provider.offer_may_have_changed)
    tasks.append(asyncio.create_task(provider.run(), name="marketplace-provider"))
    log.info("Taking work from %s as provider %s", url, identity.address)
    return MarketConnection(url, provider, None, tasks, client=client, private=private, setup=setup)
