"""What one round trip to PostgreSQL costs by itself, in the backend and in the client, without any work in it.

Why: on PostgreSQL every statement the marketplace makes is a round trip to another process, and the load
benchmark (market_load.py) needs about fifty a job. This measures the floor under each of them: a trivial
statement (``SELECT $1 + 1``) on one connection, through psycopg alone and through SQLAlchemy Core as the
marketplace makes them. The backend's CPU is read from /proc (PostgreSQL on this machine), the client's with the
process clock.

Usage: ``python bench/postgres_round_trip.py [--url URL] [--calls 5000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import psutil
import psycopg
from market_load import DEFAULT_POSTGRES
from sqlalchemy import create_engine, text


def _per_call(backend_pid: int, call: Callable[[int], object], calls: int) -> tuple[float, float]:
    """µs of the backend's CPU and of this process's CPU per call."""
    backend = psutil.Process(backend_pid)
    before, started = backend.cpu_times(), time.process_time()
    for value in range(calls):
        call(value)
    after, ended = backend.cpu_times(), time.process_time()
    backend_s = after.user + after.system - before.user - before.system
    return backend_s / calls * 1e6, (ended - started) / calls * 1e6


def measure(url: str, calls: int) -> dict[str, tuple[float, float]]:
    libpq_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        pid = connection.info.backend_pid
        driver = _per_call(pid, lambda value: connection.execute("SELECT %s::int + 1", (value,)).fetchone(), calls)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    statement = text("SELECT :value + 1")
    try:
        with engine.connect() as connection:
            pid = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
            core = _per_call(pid, lambda value: connection.execute(statement, {"value": value}).scalar_one(), calls)
    finally:
        engine.dispose()
    return {"psycopg": driver, "SQLAlchemy Core + psycopg": core}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_POSTGRES, help="a PostgreSQL URL (postgresql+psycopg://…)")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.repeat):
        for name, (backend_us, client_us) in measure(args.url, args.calls).items():
            print(f"{name}: backend {backend_us:.0f} µs, client {client_us:.0f} µs a round trip")


if __name__ == "__main__":
    main()
