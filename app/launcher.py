"""The one shared module that may start the agent or the GUI; it imports them only when asked.

Keeping these imports lazy is what lets ``sparecycles status`` stay quick and lets the agent run
on machines without Qt's system libraries.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sparecycles.diagnostics import CheckResult
from sparecycles.paths import AppPaths
from sparecycles.protocol.market import JobView, ProviderView, RequesterView, ServerInfo


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
) -> None:
    from sparecycles.agent.market_server.serve import MarketOptions, serve

    options = MarketOptions(
        data_dir=data_dir,
        db_url=db_url,
        key_file=key_file,
        public_url=f"http://{host}:{port}",
        heartbeat_interval_s=heartbeat_interval_s,
        lease_timeout_s=lease_timeout_s,
    )
    serve(options, host=host, port=port)


def market_operator(data_dir: Path, db_url: str | None, key_file: Path | None) -> MarketOperator:
    """The marketplace's own operations (the operator's CLI), on its database directly."""
    from sparecycles.agent.market_server.serve import MarketOptions, open_market

    return open_market(MarketOptions(data_dir=data_dir, db_url=db_url, key_file=key_file))


class MarketOperator(Protocol):
    """What the operator's commands ask of a marketplace (implemented by the reference server)."""

    def add_requester(self, name: str) -> str: ...
    def credit(self, name: str, amount: int) -> RequesterView: ...
    def resolve(self, job_id: str, accept: str | None) -> JobView: ...
    def set_payout_by_operator(self, address: str, payout_address: str) -> ProviderView: ...
    def info(self) -> ServerInfo: ...
