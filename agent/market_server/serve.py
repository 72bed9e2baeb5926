"""Open a marketplace (database, migrations, operator key) and serve it: `sparecycles market serve`,
the operator's commands, and the agent's embedded private marketplace all start here."""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sparecycles.agent.keystore import KeySource, load_key
from sparecycles.agent.market_server import schema, server_lock
from sparecycles.agent.market_server.db import open_engine
from sparecycles.agent.market_server.limits import ApiLimits, Rate
from sparecycles.agent.market_server.market import MarketConfig, Marketplace
from sparecycles.config import is_loopback

if TYPE_CHECKING:
    from sparecycles.agent.market_server.vault_chain import ClaimRelayer, DepositWatcher, VaultLink

log = logging.getLogger(__name__)

# A served marketplace closes auctions within a tenth of a second of their window's end (the agent's private one
# ticks every second): jobs wait a bidding window, not a window and most of a second more, and with a busy
# queue that is throughput (a 1 s tick gave 126 assignments/s in the load benchmark, a 0.25 s one 146/s). Each
# tick leases at once the jobs whose windows ended since the one before, and their providers' polls and first
# heartbeats then all come together: ticking every 0.1 s rather than 0.25 s made those bursts smaller (at 220
# jobs/s, heartbeats' median 40 -> 18 ms; docs/benchmarks.md, market_load). A tick with nothing due costs
# about 0.6 ms of CPU on SQLite, and on PostgreSQL 2.3 ms with its backend's (2.3 % of a core a process).
SERVED_TICK_EVERY_S = 0.1

OPERATOR_KEY_NAME = "marketplace-operator"
GAS_KEY_NAME = "marketplace-gas"  # the key relayed claims are sent from (it pays their gas)
DEFAULT_PORT = 8787
KEEP_ALIVE_S = 65
OPERATIONS_DOC = "docs/marketplace-operations.md"


class ServeError(RuntimeError):
    """The marketplace cannot be served as asked; the message says what to change."""


@dataclass(frozen=True)
class TlsFiles:
    """The PEM certificate (chain) and unencrypted private key the server presents for HTTPS."""

    certificate: Path
    key: Path


def _metrics_beside(options: MarketOptions, gather: Any) -> Callable[[], Any]:
    """Start the metrics endpoint in the server's loop; its stop, for when the server stops."""
    from sparecycles.agent.metrics.server import MetricsError, start_metrics
    from sparecycles.config import MetricsSettings

    try:
        settings = MetricsSettings(
            enabled=True,
            address=options.metrics_address,
            port=options.metrics_port or 0,
            token_file=str(options.metrics_token_file) if options.metrics_token_file else None,
        )
    except ValueError as exc:
        raise ServeError(f"--metrics-address: {exc}") from None

    async def start() -> Any:
        try:
            running = await start_metrics(settings, gather)
        except MetricsError as exc:
            raise ServeError(str(exc)) from None
        return running.stop

    return start


def tls_files(certificate: Path | None, key: Path | None) -> TlsFiles | None:
    """The TLS files to serve with (None: plain HTTP), checked now so that a mistake is reported before the
    server starts rather than as a traceback from inside it."""
    if certificate is None and key is None:
        return None
    if certificate is None or key is None:
        raise ServeError("give both --tls-cert and --tls-key (the certificate and its private key), or neither")
    for path, what in ((certificate, "certificate"), (key, "private key")):
        try:
            with path.open("rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise ServeError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None

    def no_passphrase() -> str:
        raise ServeError(f"the TLS private key {key} is encrypted; give an unencrypted key (readable only by you)")

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certificate, key, password=no_passphrase)
    except ssl.SSLError as exc:
        raise ServeError(
            f"the TLS certificate {certificate} and key {key} do not load together ({exc.reason or exc}): "
            "both must be PEM files, and the key must be the certificate's"
        ) from None
    return TlsFiles(certificate, key)


def exposure_warning(host: str, tls: TlsFiles | None) -> str | None:
    """What to tell the operator when the server listens beyond this machine without TLS (None: nothing)."""
    if tls is not None or is_loopback(host):
        return None
    return (
        f"The marketplace listens on {host} without TLS: provider session tokens and requester API keys "
        "would cross the network in clear. Give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a "
        f"TLS reverse proxy ({OPERATIONS_DOC})."
    )


def _unspecified(host: str) -> bool:
    """``host`` is a wildcard address (0.0.0.0, ::): every interface, and no address a provider could use."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def public_url(host: str, port: int, tls: TlsFiles | None, given: str | None = None) -> str:
    """The URL providers and requesters use: ``given`` (behind a reverse proxy), else the listening address.

    Sign-in messages name its host and port, so behind a proxy it must be the proxy's public URL.
    """
    if given is not None:
        url = urlsplit(given)
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment or url.username:
            raise ServeError(
                f"--public-url {given!r} is not a plain http(s) URL; give the address providers use, "
                "e.g. https://market.example.org"
            )
        return given.rstrip("/")
    if _unspecified(host):
        raise ServeError(
            f"listening on {host}, the marketplace needs --public-url: the address providers use to reach it "
            "(e.g. https://market.example.org:8787). Sign-in messages name it, and agents sign only messages "
            "naming the marketplace they talk to"
        )
    name = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{name}:{port}"


@dataclass(frozen=True)
class MarketOptions:
    """Where a marketplace keeps its state and how it is reached."""

    data_dir: Path
    db_url: str | None = None  # default: SQLite in data_dir
    key_file: Path | None = None  # default: the OS keyring
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    heartbeat_interval_s: float = 5.0
    lease_timeout_s: float = 30.0
    name: str = MarketConfig.name  # what machines show ("schedule set by <name>")
    provider_online_s: float = MarketConfig.provider_online_s  # a machine silent this long is offline
    fleet_report_s: float = MarketConfig.fleet_report_s  # how often a studio's machines report
    # Abuse limits: requests a second per provider, per requester key and per address signing in (0: none),
    # jobs queued per requester, and bytes of outputs kept per requester.
    provider_rate: float = ApiLimits.provider.per_s
    requester_rate: float = ApiLimits.requester.per_s
    sign_in_rate: float = ApiLimits.sign_in.per_s
    max_queued_jobs: int = MarketConfig.max_queued_jobs_per_requester
    storage_quota_bytes: int = MarketConfig.storage_quota_bytes
    output_retention_days: float | None = None
    # The payout vault: vouchers name it and its chain; requesters are credited with their deposits to it.
    chain_rpc: str | None = None
    vault: str | None = None
    chain_id: int | None = None  # the chain the RPC must serve (None: whichever it serves)
    confirmations: int = 2  # blocks on top of a deposit before it is credited
    deposits_from_block: int = 0  # where the first reading of the vault's deposits starts (its deployment)
    deposit_poll_s: float = 5.0
    # Relayed claims: the key that sends them and pays the gas, how often every owed address is claimed for
    # (None: only when a provider asks), and the least owed that is worth a relayed claim.
    relay_gas_key_file: Path | None = None
    relay_every_s: float | None = None
    relay_min_amount: int = 1
    # Prometheus metrics on their own port (None: off), loopback unless a token file guards them.
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    metrics_token_file: Path | None = None
    only_providers: frozenset[str] | None = None  # identity addresses that may sign in as providers (None: any)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'market.db'}"

    @property
    def limits(self) -> ApiLimits:
        """The request rates, each allowing bursts of three seconds' worth (at least ten requests)."""

        def rate(per_s: float) -> Rate:
            return Rate(per_s=per_s, burst=max(10, int(per_s * 3)))

        return ApiLimits(
            provider=rate(self.provider_rate), requester=rate(self.requester_rate), sign_in=rate(self.sign_in_rate)
        )


def open_market(
    options: MarketOptions,
    *,
    create_key: bool = True,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    link: VaultLink | None = None,
) -> Marketplace:
    """The marketplace at ``options``, its database migrated to this version (a newer one is refused);
    with ``link``, its vouchers are for that vault and chain."""
    options.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = open_engine(options.database_url)
    schema.upgrade(engine)
    operator = load_key(KeySource(OPERATOR_KEY_NAME, options.key_file), create=create_key)
    url = urlsplit(options.public_url)
    config = MarketConfig(
        domain=url.netloc,
        uri=f"{options.public_url.rstrip('/')}/v1/auth/sign-in",
        data_dir=options.data_dir,
        heartbeat_interval_s=options.heartbeat_interval_s,
        lease_timeout_s=options.lease_timeout_s,
        name=options.name,
        provider_online_s=options.provider_online_s,
        fleet_report_s=options.fleet_report_s,
        max_queued_jobs_per_requester=options.max_queued_jobs,
        storage_quota_bytes=options.storage_quota_bytes,
        output_retention_days=options.output_retention_days,
        only_providers=options.only_providers,
    )
    if link is not None:
        config = dataclasses.replace(config, chain_id=link.chain_id, voucher_contract=link.vault)
    return Marketplace(engine, operator, config, clock=clock)


def connect(options: MarketOptions) -> VaultLink | None:
    """The payout vault ``options`` name, checked on its chain (None: none named)."""
    if options.vault is None and options.chain_rpc is None:
        return None
    if options.vault is None or options.chain_rpc is None:
        raise ServeError("give both --chain-rpc and --vault (the payout vault's RPC and address), or neither")
    from sparecycles.agent.chain.client import ChainError
    from sparecycles.agent.market_server.vault_chain import connect_vault

    try:
        return connect_vault(options.chain_rpc, options.vault, expected_chain_id=options.chain_id)
    except ChainError as exc:
        raise ServeError(f"cannot serve against the payout vault {options.vault}: {exc}") from None


def start_vault(market: Marketplace, link: VaultLink, options: MarketOptions) -> DepositWatcher:
    """At start with a vault: warn when the vault trusts another key than the operator's, re-sign vouchers
    another key signed (a rotated operator key), and start watching deposits."""
    from sparecycles.agent.market_server.vault_chain import DepositWatcher

    trusted = link.reader.signer()
    if trusted.lower() != market.operator_address.lower():
        log.warning(
            "The vault %s pays vouchers signed by %s, not by this server's operator key %s: providers cannot "
            "claim until its owner calls rotateSigner(%s)",
            link.vault,
            trusted,
            market.operator_address,
            market.operator_address,
        )
    watcher = DepositWatcher(
        market,
        link,
        confirmations=options.confirmations,
        from_block=options.deposits_from_block,
        poll_s=options.deposit_poll_s,
    )
    watcher.start()
    return watcher


def start_relayer(market: Marketplace, link: VaultLink | None, options: MarketOptions) -> ClaimRelayer | None:
    """The claim relayer ``options`` ask for (a gas key given), started; refused without a vault."""
    if options.relay_gas_key_file is None:
        if options.relay_every_s is not None:
            raise ServeError("--relay-every needs --relay-gas-key-file (the key that pays the claims' gas)")
        return None
    if link is None:
        raise ServeError("--relay-gas-key-file needs a payout vault (--chain-rpc and --vault)")
    from sparecycles.agent.market_server.vault_chain import ClaimRelayer

    gas_payer = load_key(KeySource(GAS_KEY_NAME, options.relay_gas_key_file), create=False)
    relayer = ClaimRelayer(market, link, gas_payer, every_s=options.relay_every_s, min_amount=options.relay_min_amount)
    relayer.start()
    return relayer


def _collect_garbage_less_often() -> None:
    """Tune Python's cycle collector for a busy server: everything loaded so far (modules, the app, the
    marketplace) is frozen out of its scans, and a young-generation collection waits for 20,000 new objects
    instead of 700. Each request makes a few hundred short-lived objects that reference counting frees anyway;
    under load the default thresholds ran a collection several times per request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def serve(options: MarketOptions, *, host: str, port: int, tls: TlsFiles | None = None) -> None:
    """Serve the marketplace until interrupted (uvicorn handles SIGINT and SIGTERM).

    The data folder's server lock is held meanwhile, so that `market restore` refuses to replace the
    database under a running server.
    """
    import uvicorn

    from sparecycles.agent.market_server.api import create_app
    from sparecycles.agent.market_server.metrics import ApiLatency, market_gatherer
    from sparecycles.agent.market_server.releasing_server import ReleasingServer

    warning = exposure_warning(host, tls)
    if warning:
        log.warning("%s", warning)
    with server_lock.serving(options.data_dir):
        link = connect(options)
        market = open_market(options, link=link)
        # After the operator's key was rotated, vouchers the old key signed are renewed (same amounts).
        market.resign_vouchers(actor="marketplace (start)")
        watcher = start_vault(market, link, options) if link is not None else None
        relayer = start_relayer(market, link, options)
        market.ticks_on_poll = False  # the server's own timer ticks it, every second
        log.info(
            "Marketplace on %s://%s:%d (public URL %s), operator %s, vouchers for vault %s on chain %d",
            "https" if tls else "http",
            host,
            port,
            options.public_url,
            market.info().operator_address,
            market.config.voucher_contract,
            market.config.chain_id,
        )
        # At a stop signal the long polls are answered at once (ReleasingServer), and any request still open
        # after 2 s is cut: the timer that expires leases keeps ticking until the last connection closes.
        app = create_app(market, limits=options.limits, relayer=relayer, tick_every_s=SERVED_TICK_EVERY_S)
        beside = None
        if options.metrics_port is not None:
            latency = ApiLatency()
            app.add_middleware(latency.middleware)  # a factory: app -> the timed app
            beside = _metrics_beside(options, market_gatherer(market, latency))
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # a line per request costs the server CPU it needs for the requests
            # Providers send a request at least every long poll (10 s): their connections are kept open, instead
            # of each heartbeat or report after a quiet spell opening a new one (uvicorn's default is 5 s).
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=2,
            ssl_certfile=tls.certificate if tls else None,
            ssl_keyfile=tls.key if tls else None,
        )
        _collect_garbage_less_often()
        try:
            ReleasingServer(config, app.state.release_polls, beside).run()
        finally:
            if relayer is not None:
                relayer.stop()
            if watcher is not None:
                watcher.stop()
