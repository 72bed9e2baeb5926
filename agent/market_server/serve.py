"""Open a marketplace (database, migrations, operator key) and serve it: `sparecycles market serve`,
the operator's commands, and the agent's embedded private marketplace all start here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sparecycles.agent.keystore import KeySource, load_key
from sparecycles.agent.market_server import schema
from sparecycles.agent.market_server.db import open_engine
from sparecycles.agent.market_server.market import MarketConfig, Marketplace

log = logging.getLogger(__name__)

OPERATOR_KEY_NAME = "marketplace-operator"
DEFAULT_PORT = 8787


@dataclass(frozen=True)
class MarketOptions:
    """Where a marketplace keeps its state and how it is reached."""

    data_dir: Path
    db_url: str | None = None  # default: SQLite in data_dir
    key_file: Path | None = None  # default: the OS keyring
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    heartbeat_interval_s: float = 5.0
    lease_timeout_s: float = 30.0

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'market.db'}"


def open_market(
    options: MarketOptions, *, create_key: bool = True, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Marketplace:
    """The marketplace at ``options``, its database migrated to this version (a newer one is refused)."""
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
    )
    return Marketplace(engine, operator, config, clock=clock)


def serve(options: MarketOptions, *, host: str, port: int) -> None:
    """Serve the marketplace until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    import uvicorn

    from sparecycles.agent.market_server.api import create_app

    market = open_market(options)
    log.info("Marketplace on http://%s:%d, operator %s", host, port, market.info().operator_address)
    # Long polls are cut after 2 s at shutdown: the timer that expires leases keeps ticking until the
    # last connection closes, and providers cannot heartbeat meanwhile.
    uvicorn.run(create_app(market), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
