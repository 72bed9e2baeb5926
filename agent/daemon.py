"""The agent process: composition root and lifecycle.

Start order: settings (an invalid file stops us before anything else), logging, the per-user
lock, the loopback socket, then the API. Stop order on SIGTERM, SIGINT or an API request: close
the event streams, let the server finish in-flight requests, release the lock: within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

import sparecycles
from sparecycles.agent.api.auth import new_token
from sparecycles.agent.api.server import create_app
from sparecycles.agent.benchmark.control import AUTO_EVERY_S, BenchmarkControl
from sparecycles.agent.benchmark.results import ResultStore
from sparecycles.agent.benchmark.service import BenchmarkService, ImageRunner, ProcessRunner, Runner
from sparecycles.agent.chain.client import ChainError
from sparecycles.agent.chain.trust import VaultTrust
from sparecycles.agent.controller import AgentController
from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.events import EventBus
from sparecycles.agent.fleet.service import FleetService, MarketSide
from sparecycles.agent.instance_lock import InstanceLock
from sparecycles.agent.jobs.ownership import JobProcesses
from sparecycles.agent.jobs.runtime import JobRuntime
from sparecycles.agent.jobs.service import create_job_service
from sparecycles.agent.keystore import load_key
from sparecycles.agent.ledger.service import LedgerService, boot_id, busy_cpu_cores, jobs_on_gpus
from sparecycles.agent.ledger.store import LedgerStore
from sparecycles.agent.market.service import MarketConnection, identity_source, start_market
from sparecycles.agent.market.vouchers import VoucherBook
from sparecycles.agent.policy.settings import resolve_zone
from sparecycles.agent.power_journal import PowerLimitJournal
from sparecycles.agent.scheduler.service import WorkScheduler
from sparecycles.agent.sensors.activity import ActivitySensor
from sparecycles.agent.sensors.cpu_power import RaplMeter
from sparecycles.agent.sensors.gpu import GpuBackend
from sparecycles.agent.sensors.gpu.nvml import NvmlGpuBackend
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpuBackend
from sparecycles.agent.sensors.user.factory import create_presence_source
from sparecycles.agent.settings_store import SettingsStore
from sparecycles.agent.system.sleep_inhibitor import create_sleep_inhibitor
from sparecycles.agent.system.start_at_login import start_at_login_listener
from sparecycles.agent.wallet.autoclaim import AUTO_CLAIM_EVERY_S, AutoClaimer
from sparecycles.agent.wallet.balances import BalanceReader
from sparecycles.agent.wallet.claims import ClaimError, ClaimService
from sparecycles.agent.wallet.control import WalletControl
from sparecycles.agent.wallet.registry import WalletRegistry
from sparecycles.agent.wallet.service import WalletService
from sparecycles.agent.wallet.vault import KeyringVault
from sparecycles.autostart import create_start_at_login
from sparecycles.config import Settings, load_settings
from sparecycles.control.endpoint import AgentEndpoint
from sparecycles.control.models import TOKEN_HEADER, TOKEN_SCHEME
from sparecycles.logs import SecretMasker, configure_logging, set_log_level
from sparecycles.migrations import SchemaError
from sparecycles.paths import AppPaths

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from sparecycles.agent.metrics.server import MetricsServer

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 3


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the agent decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def probe_endpoint(endpoint: AgentEndpoint) -> bool | None:
    """Whether an agent answers (with our token) at the endpoint a lock file names.

    None when no answer came in time: a stopped or busy agent is still alive, so that proves nothing.
    """
    try:
        response = httpx.get(
            f"{endpoint.base_url}/v1/status",
            headers={TOKEN_HEADER: f"{TOKEN_SCHEME} {endpoint.token}"},
            timeout=1.0,
            trust_env=False,
        )
    except httpx.ConnectError:  # refused: nothing listens on that port
        return False
    except httpx.HTTPError:  # timed out, or cut off: cannot tell
        return None
    return response.status_code == 200


def bind_loopback() -> socket.socket:
    """A listening socket on 127.0.0.1 with a port the kernel picks (never another address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(False)
    return sock


def run_agent(paths: AppPaths, *, console: bool, simulated_gpus: int = 0) -> int:
    """Run the agent until asked to stop; returns the process exit code.

    ``simulated_gpus`` > 0 replaces NVML with that many scriptable, visibly SIMULATED GPUs (tests,
    demos); it is only ever set by the explicit command-line option.

    Raises ``ConfigError`` for an invalid settings file and ``AgentAlreadyRunning`` when another agent
    holds the lock; the CLI turns both into messages.
    """
    settings = load_settings(paths.config_file)
    paths.ensure()
    masker = SecretMasker()
    configure_logging(masker, log_file=paths.agent_log_file, level=settings.general.log_level, console=console)
    lock = InstanceLock(paths.agent_lock_file, version=sparecycles.__version__, probe=probe_endpoint)
    lock.acquire()
    try:
        log.info("SpareCycles agent %s starting (Python %s)", sparecycles.__version__, sys.version.split()[0])
        asyncio.run(
            _serve(
                paths=paths,
                settings=settings,
                masker=masker,
                lock=lock,
                simulated_gpus=simulated_gpus,
            )
        )
    finally:
        lock.release()
        log.info("SpareCycles agent stopped")
    return 0


async def _serve(  # noqa: PLR0912, PLR0915 - the composition root: every part, started and stopped in order
    *,
    paths: AppPaths,
    settings: Settings,
    masker: SecretMasker,
    lock: InstanceLock,
    simulated_gpus: int,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    token = new_token()
    masker.register(token)
    store = SettingsStore(paths.config_file, settings)
    market_side: list[MarketConnection] = []  # filled once the marketplace has started
    fleet = FleetService(
        state_file=paths.state_dir / "fleet.json",
        identity=lambda: load_key(identity_source(store.current.marketplace), create=True),
        settings=store.read,
        overlay=lambda overlay: controller.set_settings_overlay(overlay),  # noqa: PLW0108 - made below
        market=lambda: _market_side(market_side),
        switch_market=lambda url: _switch_market(market_side, url, controller, start_again),
        status=lambda: controller.status(),  # noqa: PLW0108 - made below
        today=lambda: _today_figures(ledger),
        version=sparecycles.__version__,
    )
    store.set_overlay(fleet.load())  # a studio group's policy applies from the first decision
    settings = store.current
    store.on_change(lambda _old, new: set_log_level(new.general.log_level))
    store.on_change(start_at_login_listener(create_start_at_login()))
    simulation = SimulatedGpuBackend(simulated_gpus) if simulated_gpus > 0 else None
    if simulation is not None:
        log.warning("Running %d SIMULATED GPU(s): no real GPU is used", simulated_gpus)
    gpu_backend: GpuBackend = simulation or NvmlGpuBackend()
    presence = create_presence_source()
    log.info("Presence source: %s", presence.name)
    job_processes = JobProcesses()
    engine = WorkEngine(
        gpu_backend=gpu_backend,
        is_own_process=job_processes.is_ours,
        presence_source=presence,
        activity=ActivitySensor.create(),
        settings=settings,
        sleep_inhibitor=create_sleep_inhibitor(),
        power_journal=PowerLimitJournal(None if simulation else paths.state_dir / "power-limits.json"),
    )
    scheduler = WorkScheduler(engine)
    bus = EventBus()
    jobs = create_job_service(state_dir=paths.state_dir, engine=engine, settings=lambda: store.current, bus=bus)
    job_processes.track(jobs.container_ids)
    ledger, ledger_problem = _open_ledger(paths, store)
    controller = AgentController(
        version=sparecycles.__version__,
        engine=engine,
        scheduler=scheduler,
        simulated=simulation,
        job_service=jobs,
        settings=store,
        bus=bus,
        request_stop=stop.set,
    )
    wallet_service = WalletService(
        WalletRegistry(paths.state_dir / "wallets.json"), KeyringVault(), register_secret=masker.register
    )
    vault_trust = VaultTrust(lambda: store.current.chain)
    claims = None
    if ledger is not None:
        claims = ClaimService(
            wallet_service,
            ledger.store,
            VoucherBook(paths.state_dir / "provider" / "voucher.json").best,  # the provider's kept voucher
            lambda: store.current.chain,
            vault_trust,
        )
    wallets = WalletControl(
        wallet_service,
        set_payout_address=lambda address: controller.update_settings({"marketplace": {"payout_address": address}}),
        payout_target=lambda: market_side[0].provider if market_side else None,
        balances=BalanceReader(lambda: store.current.chain).reader(),
        claims=claims,
    )
    controller.show_fleet(fleet.status)
    controller.show_ledger(lambda: ledger.problem if ledger is not None else f"not recording: {ledger_problem}")
    benchmarks = _benchmark_control(paths, store, engine, jobs.runtime, controller.announce_status)
    controller.show_benchmarks(benchmarks.service.status)
    sock = bind_loopback()
    server = _Server(
        uvicorn.Config(
            create_app(
                controller,
                token,
                ledger=ledger,
                ledger_problem=ledger_problem,
                wallets=wallets,
                benchmarks=benchmarks,
                fleet=fleet,
            ),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers only a flag
        await asyncio.sleep(0.01)
    if serving.done():  # failed to start: surface its exception
        serving.result()
        return
    port = sock.getsockname()[1]
    lock.publish(port, token)
    log.info("Control API listening on 127.0.0.1:%d", port)
    metrics = await _start_metrics(store.current, controller, ledger)
    controller.announce_status()
    # GPU discovery can take a moment with a real driver: it starts after the API answers.
    await scheduler.start()
    scheduler.on_gpu_tick(controller.publish_readings)
    scheduler.every(AUTO_EVERY_S, benchmarks.auto_round, "benchmark-auto")
    if ledger is not None:
        deep_check = asyncio.create_task(_deep_check_later(ledger))
        record = _record_energy(ledger, engine, jobs.runtime)
        if engine.has_gpus:
            scheduler.on_gpu_tick(record)
        else:  # no GPU tick: the CPU's energy (RAPL) is still measured for the CPU-only floor

            async def cpu_tick() -> None:
                record()

            scheduler.every(CPU_ENERGY_INTERVAL_S, cpu_tick, "ledger-cpu-energy")
    controller.announce_status()
    await jobs.start()  # takes back jobs a crashed agent left running (connects to Docker lazily)
    # Never raises: a marketplace that cannot start is a problem in the status, not a crash.
    background: list[asyncio.Task[None]] = []  # kept referenced until done
    if claims is not None:
        background.append(asyncio.create_task(_settle_claims(claims)))  # a claim sent before a restart

    async def start_again() -> MarketConnection:
        return await start_market(
            state_dir=paths.state_dir,
            engine=engine,
            runtime=jobs.runtime,
            settings=store.read,
            ledger=ledger,
            vault_trust=vault_trust.current,
            benchmarks=benchmarks.service,
        )

    market = await start_again()
    controller.show_marketplace(lambda: market_side[0].status())  # noqa: PLW0108 - a join may replace it
    market_side.append(market)
    background.append(asyncio.create_task(fleet.run(), name="fleet-reports"))
    if claims is not None:
        auto_claimer = AutoClaimer(wallets, lambda: _tokens(store.current.chain.auto_claim_above))

        async def auto_claim() -> None:
            await auto_claimer.round()

        scheduler.every(AUTO_CLAIM_EVERY_S, auto_claim, "auto-claim")

    await stop.wait()
    log.info("Stopping")
    jobs.refuse_new_jobs()  # the API answers until the end: no job may start that nothing would govern
    if metrics is not None:
        await metrics.stop()
    scheduler.shutdown()
    await benchmarks.close()  # a benchmark's worker never outlives the agent
    for task in background:
        task.cancel()
    await market_side[0].close()
    await jobs.shutdown()  # no job may run ungoverned while the agent is down
    if ledger is not None:
        deep_check.cancel()
        await _close_ledger(ledger, engine, jobs.runtime)
    await asyncio.to_thread(engine.shutdown)  # power limits restored, sensors closed
    controller.begin_shutdown()
    server.should_exit = True
    try:
        await asyncio.wait_for(serving, timeout=SHUTDOWN_GRACE_SECONDS + 1)
    except TimeoutError:
        log.warning("The control API did not stop in time; closing it")
        server.force_exit = True
    sock.close()


def _market_side(connections: list[MarketConnection]) -> MarketSide:
    """The marketplace connection as the fleet sees it (none yet while the agent starts)."""
    if not connections:
        return MarketSide(url=None, client=None, signed_in=False, busy=False)
    connection = connections[0]
    provider = connection.provider
    return MarketSide(
        url=None if connection.private is not None else connection.url,
        client=connection.client,
        signed_in=provider is not None and provider.signed_in,
        busy=provider is not None and provider.active_leases > 0,
        problem=connection.problem or (provider.problem if provider is not None else None),
    )


async def _switch_market(
    connections: list[MarketConnection],
    url: str | None,
    controller: AgentController,
    start: Callable[[], Awaitable[MarketConnection]],
) -> None:
    """Take work from ``url`` (None: the private marketplace) from now on: the owner's setting is changed and
    the connection made again (the fleet checked that no lease runs)."""
    controller.update_settings({"marketplace": {"url": url}})
    if connections:
        await connections[0].close()
    connection = await start()
    if connections:
        connections[0] = connection
    else:
        connections.append(connection)
    log.info("Now taking work from %s", url or "the private marketplace")


def _today_figures(ledger: LedgerService | None) -> tuple[float, float | None]:
    """Today's GPU-hours of work and the energy it used (kWh), from the ledger (nothing without one). The hours
    are those inside today of every lease, running ones too, not the run time of leases that started today
    (written only when they end)."""
    if ledger is None:
        return 0.0, None
    today = ledger.today()
    return ledger.gpu_hours_today(), float(today.energy_wh) / 1000


async def _start_metrics(
    settings: Settings, controller: AgentController, ledger: LedgerService | None
) -> MetricsServer | None:
    """The Prometheus endpoint when [metrics] enabled; one that cannot start is logged, and the agent works on."""
    if not settings.metrics.enabled:
        return None
    from sparecycles.agent.metrics.collector import status_metrics
    from sparecycles.agent.metrics.server import MetricsError, start_metrics

    async def gather() -> list[Metric]:
        today = await asyncio.to_thread(ledger.today) if ledger is not None else None
        return status_metrics(controller.status(), today)

    try:
        return await start_metrics(settings.metrics, gather)
    except MetricsError as exc:
        log.error("Metrics are not served: %s", exc)
        return None


def _benchmark_control(
    paths: AppPaths, store: SettingsStore, engine: WorkEngine, runtime: JobRuntime, announce: Callable[[], None]
) -> BenchmarkControl:
    """The benchmark: in the agent's Python (PyTorch or CuPy), or as a job in [benchmark] image when set."""
    in_process = ProcessRunner()

    def runner() -> Runner:
        image = store.current.benchmark.image
        return ImageRunner(runtime, image) if image else in_process

    service = BenchmarkService(ResultStore(paths.state_dir / "benchmarks.json"), runner, on_change=announce)
    control = BenchmarkControl(
        service, engine.snapshot, runtime.busy_gpu_indices, automatic=lambda: store.current.benchmark.automatic
    )
    engine.on_change(control.policy_changed)
    return control


def _tokens(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def _settle_claims(claims: ClaimService) -> None:
    """Settle a claim sent before the agent stopped (mined: recorded; dropped: forgotten); logged, never raised."""
    try:
        await asyncio.to_thread(claims.settle)
    except (ClaimError, ChainError) as exc:
        log.info("A claim left pending could not be settled now (%s): it is at the next claim or look", exc)


LEDGER_FILE = "ledger.sqlite3"
DEEP_CHECK_DELAY_S = 60.0  # after the start's own work: the check reads the whole file
CPU_ENERGY_INTERVAL_S = 10.0


def _open_ledger(paths: AppPaths, settings: SettingsStore) -> tuple[LedgerService | None, str | None]:
    """The ledger in the state folder, or why it could not be opened (the agent works on without it)."""
    current = settings.current
    try:
        store = LedgerStore.open(paths.state_dir / LEDGER_FILE, resolve_zone(current.general.timezone))
    except (SchemaError, OSError, ValueError, SQLAlchemyError) as exc:
        log.error("The ledger could not be opened: %s", exc)
        return None, str(exc)
    meter = RaplMeter()
    unreadable = meter.available()
    if unreadable is not None:
        log.info("CPU power: %s", unreadable)
    service = LedgerService(
        store, settings=lambda: settings.current.ledger, boot=boot_id(), cpu_meter=meter if unreadable is None else None
    )
    return service, None


def _record_energy(ledger: LedgerService, engine: WorkEngine, runtime: JobRuntime) -> Callable[[], None]:
    """A GPU-tick listener that hands the readings, and which job runs where, to the ledger."""
    pending: set[asyncio.Task[None]] = set()

    def tick() -> None:
        if pending:  # the last write is still going: this reading is taken by the next tick
            return
        samples = list(engine.snapshot().samples.values())
        statuses = runtime.jobs()
        task = asyncio.get_running_loop().create_task(
            ledger.tick(samples, jobs_on_gpus(statuses, samples), busy_cpu_cores(statuses))
        )
        pending.add(task)
        task.add_done_callback(pending.discard)

    return tick


async def _close_ledger(ledger: LedgerService, engine: WorkEngine, runtime: JobRuntime) -> None:
    """Commit the energy used up to now (a fresh reading), then close the ledger's file."""
    try:
        await asyncio.to_thread(engine.read_gpus)
        samples = list(engine.snapshot().samples.values())
        await asyncio.to_thread(ledger.flush, samples, jobs_on_gpus(runtime.jobs(), samples))
    except Exception:
        log.exception("The ledger could not commit the last energy readings")
    ledger.store.close()


async def _deep_check_later(ledger: LedgerService) -> None:
    await asyncio.sleep(DEEP_CHECK_DELAY_S)
    try:
        await asyncio.to_thread(ledger.deep_check)
    except Exception:
        log.exception("The ledger's integrity check failed to run")
