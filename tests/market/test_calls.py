"""Where the marketplace's database calls run: on the server's event loop (``market serve`` on SQLite), or in
worker threads (the agent's private marketplace, whose loop also pauses jobs when the owner comes back)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.serve import MarketOptions, open_market

from .conftest import Clock, Provider


def _poll_threads(tmp_path: Path, *, inline: bool) -> tuple[set[str], set[str]]:
    """The threads the provider's polls ran in, and the thread that answered its requests (the loop's)."""
    market = open_market(MarketOptions(data_dir=tmp_path / "market", key_file=tmp_path / "operator.key"), clock=Clock())
    polled: set[str] = set()
    poll: Callable[..., Any] = market.poll

    def recorded(address: str) -> Any:
        polled.add(threading.current_thread().name)
        return poll(address)

    market.poll = recorded  # type: ignore[method-assign]
    app = create_app(market, tick_every_s=3600, inline=inline)
    loop_threads: set[str] = set()

    @app.middleware("http")
    async def note_loop(request: Any, call_next: Any) -> Any:
        loop_threads.add(threading.current_thread().name)
        return await call_next(request)

    with TestClient(app) as client:
        provider = Provider(client).join()
        for _ in range(3):
            provider.poll()
    return polled, loop_threads


@pytest.mark.parametrize("inline", [True, False])
def test_polls_run_on_the_loop_when_inline_and_in_worker_threads_otherwise(tmp_path: Path, inline: bool) -> None:
    polled, loop = _poll_threads(tmp_path, inline=inline)
    assert len(loop) == 1
    assert polled
    assert (polled == loop) is inline
    assert not (polled & loop) or inline
