"""The one shared module that may start the agent or the GUI; it imports them only when asked.

Keeping these imports lazy is what lets ``sparecycles status`` stay quick and lets the agent run
on machines without Qt's system libraries.
"""

from __future__ import annotations

import ctypes.util
import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from sparecycles.diagnostics import CheckResult
from sparecycles.paths import AppPaths

if TYPE_CHECKING:
    from sparecycles.agent.market_server.admin import MarketAdmin
    from sparecycles.agent.market_server.backup import BackupReport, RestoreReport
    from sparecycles.agent.market_server.vault_chain import DeployedVault, RelayedClaim


@dataclass(frozen=True)
class VaultSettings:
    """`market serve`'s payout vault options, by MarketOptions' names."""

    chain_rpc: str | None = None
    vault: str | None = None
    chain_id: int | None = None
    confirmations: int = 2
    deposits_from_block: int = 0
    relay_gas_key_file: Path | None = None
    relay_every_s: float | None = None
    relay_min_amount: int = 1


def display_available() -> bool:
    if sys.platform == "win32":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


# System libraries Qt's xcb platform plugin needs that a minimal Debian/Ubuntu may lack; without
# them Qt aborts the process instead of raising, so we look before we start it.
QT_XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xkbcommon-x11": "libxkbcommon-x11-0", "EGL": "libegl1"}


def gui_missing_packages(find_library: Callable[[str], str | None] = ctypes.util.find_library) -> list[str]:
    """Debian packages the desktop app still needs here (empty when it can start)."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        return []
    return [package for library, package in QT_XCB_LIBRARIES.items() if find_library(library) is None]


def run_agent(paths: AppPaths, *, console: bool, simulated_gpus: int = 0) -> int:
    from sparecycles.agent.daemon import run_agent as run

    return run(paths, console=console, simulated_gpus=simulated_gpus)


def run_doctor(paths: AppPaths) -> list[CheckResult]:
    from sparecycles.agent.doctor import run_checks

    return run_checks(paths.config_file)


def no_gpu_reason() -> str | None:
    """Why this machine has no NVIDIA GPU (asked of NVML here, without an agent), or None when it has one."""
    from sparecycles.agent.sensors.gpu.nvml import NvmlGpuBackend

    backend = NvmlGpuBackend()
    try:
        found = backend.discover()
    finally:
        backend.close()
    if found.available and found.gpus:
        return None
    return found.reason or "the NVIDIA driver found none"


def run_benchmark_worker(arguments: list[str]) -> int:
    """The benchmark's measuring process (a bundle's stand-in for ``python -m ...benchmark.worker``)."""
    from sparecycles.agent.benchmark import worker

    return worker.main(arguments)


def run_gui(paths: AppPaths) -> int:
    from sparecycles.ui.main import run_gui as run

    return run(paths)


def market_serve(
    data_dir: Path,
    db_url: str | None,
    key_file: Path | None,
    *,
    host: str,
    port: int,
    heartbeat_interval_s: float = 5.0,
    lease_timeout_s: float = 30.0,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    public_url: str | None = None,
    vault: VaultSettings | None = None,
    metrics_port: int | None = None,
    metrics_address: str = "127.0.0.1",
    metrics_token_file: Path | None = None,
    name: str | None = None,
    **policy: float | None,
) -> None:
    """Serve a marketplace; ``policy`` holds MarketOptions' abuse limits and retention (see `market serve`)."""
    from sparecycles.agent.market_server import serve as server
    from sparecycles.logs import SecretMasker, configure_logging

    tls = server.tls_files(tls_cert, tls_key)
    options = server.MarketOptions(
        data_dir=data_dir,
        db_url=db_url,
        key_file=key_file,
        public_url=server.public_url(host, port, tls, public_url),
        heartbeat_interval_s=heartbeat_interval_s,
        lease_timeout_s=lease_timeout_s,
        metrics_port=metrics_port,
        metrics_address=metrics_address,
        metrics_token_file=metrics_token_file,
        **(dataclasses.asdict(vault) if vault is not None else {}),
        **policy,  # type: ignore[arg-type]  # the CLI's typed options, by MarketOptions' names
    )
    if name:
        options = dataclasses.replace(options, name=name.strip())
    # Warnings and errors on stderr (the service manager's journal), secrets masked.
    configure_logging(SecretMasker(), log_file=None, console=True, level="warning")
    server.serve(options, host=host, port=port, tls=tls)


def market_backup(data_dir: Path, db_url: str | None, dest: Path) -> BackupReport:
    """Copy the marketplace's SQLite database, live, to ``dest`` (refused for PostgreSQL, with the tools to use)."""
    from sparecycles.agent.market_server import backup
    from sparecycles.agent.market_server.serve import MarketOptions

    source = backup.sqlite_file(MarketOptions(data_dir=data_dir, db_url=db_url).database_url)
    return backup.backup(source, dest)


def market_restore(data_dir: Path, db_url: str | None, source: Path) -> RestoreReport:
    """Put the backup ``source`` in place of the marketplace's SQLite database; refused while a server runs."""
    from sparecycles.agent.market_server import backup
    from sparecycles.agent.market_server.serve import MarketOptions

    database = backup.sqlite_file(MarketOptions(data_dir=data_dir, db_url=db_url).database_url)
    return backup.restore(source, database, data_dir=data_dir)


MarketOperator: TypeAlias = "MarketAdmin"  # the operator's tools; imported only when a command uses them


def market_operator(data_dir: Path, db_url: str | None, key_file: Path | None) -> MarketOperator:
    """The marketplace operator's tools (the `market` commands), on its database directly."""
    from sparecycles.agent.market_server.admin import MarketAdmin
    from sparecycles.agent.market_server.serve import MarketOptions, open_market

    return MarketAdmin(open_market(MarketOptions(data_dir=data_dir, db_url=db_url, key_file=key_file)))


def market_relay_claims(
    data_dir: Path,
    db_url: str | None,
    key_file: Path | None,
    *,
    rpc_url: str,
    vault: str,
    gas_key_file: Path,
    min_amount: int,
    chain_id: int | None = None,
    say: Callable[[str], object] = lambda _line: None,
) -> list[RelayedClaim]:
    """Claim from the vault, on providers' behalf, what their vouchers earned beyond what it paid them; the
    gas is paid by the key in ``gas_key_file``."""
    from sparecycles.agent.keystore import KeySource, load_key
    from sparecycles.agent.market_server.serve import GAS_KEY_NAME, MarketOptions, open_market
    from sparecycles.agent.market_server.vault_chain import connect_vault, relay_claims

    link = connect_vault(rpc_url, vault, expected_chain_id=chain_id)
    gas_payer = load_key(KeySource(GAS_KEY_NAME, gas_key_file), create=False)
    market = open_market(MarketOptions(data_dir=data_dir, db_url=db_url, key_file=key_file), link=link)
    return relay_claims(market, link, gas_payer, min_amount=min_amount, actor="operator (command line)", say=say)


def market_deploy_vault(rpc_url: str, token: str, key_file: Path, signer: str | None) -> DeployedVault:
    """Deploy a payout vault for ``token`` from the key in ``key_file`` (which owns it and pays the gas)."""
    from sparecycles.agent.keystore import KeySource, load_key
    from sparecycles.agent.market_server.serve import OPERATOR_KEY_NAME
    from sparecycles.agent.market_server.vault_chain import deploy_vault

    deployer = load_key(KeySource(OPERATOR_KEY_NAME, key_file), create=False)
    return deploy_vault(rpc_url, token, deployer, signer)


def keyring_wallets(paths: AppPaths) -> list[str]:
    """The names of this machine's wallets whose keys are in the OS keyring (watch-only ones have none)."""
    from sparecycles.agent.wallet.registry import WalletRegistry

    return [entry.name for entry in WalletRegistry(paths.state_dir / "wallets.json").read().entries if entry.can_sign]


def forget_keyring_keys(wallet_names: list[str], *, identity: bool) -> list[str]:
    """Delete these wallets' keys (and the machine identity key) from the OS keyring; returns what failed."""
    from sparecycles.agent.keystore import KEYRING_SERVICE
    from sparecycles.agent.market.service import IDENTITY_KEY_NAME
    from sparecycles.agent.wallet.vault import KeyringVault, VaultError

    vault = KeyringVault()
    problems: list[str] = []
    for name in wallet_names:
        try:
            vault.delete(name)
        except VaultError as exc:
            problems.append(f"wallet {name}: {exc}")
    if identity:
        try:
            backend = vault.backend()
            if backend.get_password(KEYRING_SERVICE, IDENTITY_KEY_NAME) is not None:
                backend.delete_password(KEYRING_SERVICE, IDENTITY_KEY_NAME)
        except VaultError:
            pass  # no usable keyring: it cannot hold an identity key either
        except Exception as exc:  # a locked or refusing keyring
            problems.append(f"machine identity key: {type(exc).__name__}: {exc}")
    return problems
