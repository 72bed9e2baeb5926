"""Marketplace load: simulated providers and requesters against real `sparecycles market serve` processes.

The load generator runs in a process of its own and speaks protocol v1 directly, as providers and
requesters, not as agents (asyncio + aiohttp, which costs a quarter of httpx's CPU per request; one small
connection pool per simulated machine, each from a loopback address of its own, 127.1.x.y, so that the
server's per-address limits apply per machine as they would on a network):

* every provider signs in (nonce, EIP-4361 message signed with its own key, sign-in), registers a
  machine with one (fake) GPU and offers it, then long-polls for work (``wait_s`` 10, as the agent
  does); each lease it wins is heartbeated once, "runs" for a random 0-200 ms and is reported
  ``finished`` with a signed result report, which frees the GPU for the next auction;
* a few of the providers (``--probes``) poll with ``wait_s=0`` every 0.5 s instead: their answers
  time the work call itself, which long polls cannot (they wait on purpose);
* the requesters submit the jobs (1 GPU, 1 s bidding window) at a steady offered rate (``--rate``,
  300/s: above the 200/s target; 0 submits as fast as the server takes them), each with a few
  submissions in flight, and never more than ``--max-queued`` submitted and not yet leased.

Assignments per second = jobs leased (received by their provider, counted once per job) per second of
wall time from the first submission to the last job leased. Latencies are timed by the clients, so they
include the load generator's own queueing, from the first submission on: the providers start polling a few
seconds before it (WARM_UP_S), since a thousand simulated providers send their first long polls in one
instant, and the first long poll of each waits a random part of ``wait_s``, so that they do not all end
together for the rest of the run. Server CPU is the server processes' user + system time over that window
(100 % = one core), memory their peak resident set; on PostgreSQL the backends serving the
benchmark's database are reported too, and so are the load generator's CPU and the rest of the
machine's: they share it. Signatures are eth_account's, byte for byte, made with a precomputed table
(about 0.4 ms instead of 3.4 ms each here). Afterwards the database is checked: no job may hold two
live leases.

Modes: ``sqlite`` (one process, SQLite), ``pg1`` and ``pg2`` (one and two processes on one PostgreSQL
database, the clients split between them), and ``stub``: an in-memory stand-in that answers the same
calls at almost no cost, which shows what the load generator itself can drive on this machine.
PostgreSQL comes from ``--postgres`` or SPARECYCLES_BENCH_POSTGRES (an admin URL allowed to CREATE
DATABASE); each run gets a fresh database, dropped after; when it cannot be reached the PostgreSQL
modes are skipped. A mode that does not finish within ``--timeout`` stops and reports what it reached.

    python bench/market_load.py [--mode all|sqlite|pg1|pg2|stub] [--providers 1000] [--jobs 10000]
                                [--quick] [--keep] [--json FILE] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from common import CLI, machine, record

DEFAULT_POSTGRES = "postgresql+psycopg://sparecycles_test:sparecycles-test@127.0.0.1:5432/postgres"
MODES = {
    "sqlite": "SQLite, 1 process",
    "sqlite-paced": "SQLite, 1 process, offered 220/s",
    "pg1": "PostgreSQL, 1 process",
    "pg2": "PostgreSQL, 2 processes",
    "stub": "in-memory stub (the generator's ceiling)",
}
IMAGE = "127.0.0.1:5000/bench/busybox@sha256:" + "a" * 64
MAX_PRICE = 10**6  # per GPU-hour; provider floors are drawn below it
HEARTBEAT_INTERVAL_S = 5.0
LEASE_TIMEOUT_S = 30.0
PROBE_EVERY_S = 0.5
SUBMITTERS_PER_REQUESTER = 4  # submissions a requester has in flight at once
# Providers poll this long before the first submission, and calls are timed from then on. Every simulated
# provider sends its first long poll in the same instant, a thousand at once, which no fleet of real machines
# does: timed, that one wave was the p99 of every call made in the first second (a fifth of the stub's
# probe polls' p99 came from it).
WARM_UP_S = 3.0
TARGET_RATE = 200.0
# The paced column offers jobs a little faster than the target: its latencies are those of a server that keeps up
# with 200 a second, where the other columns offer --rate (300) and time a server that is behind, whose queue
# (and so every latency) grows for as long as the run lasts.
PACED_RATE = 220.0
TARGET_P99_MS = 200.0

# The calls whose p99 the target speaks of: those made while the load runs, long polls excepted.
LOAD_CALLS = ("submit", "work (wait_s=0)", "heartbeat", "report")
CALL_ORDER = (
    "nonce",
    "sign-in",
    "register",
    "offer",
    "submit",
    "work (wait_s=0)",
    "heartbeat",
    "report",
    "work (long poll, with a lease)",
    "work (long poll, empty)",
)


# --- the load generator (its own process) -----------------------------------------------------------


class Signer:
    """EIP-191 signatures exactly as ``sparecycles.protocol.signing.sign_text`` makes them (RFC 6979 nonces,
    low s), with k·G taken from a precomputed table: about six times faster in pure Python, so that the
    simulated fleet's signing does not take the CPU the server needs. Checked against ``sign_text`` at
    start; any difference and ``sign_text`` itself is used."""

    def __init__(self) -> None:
        from eth_keys.constants import SECPK1_G, SECPK1_N, SECPK1_P

        self.n, self.p = SECPK1_N, SECPK1_P
        self.table: list[list[tuple[int, int] | None]] = []
        base: tuple[int, int] | None = SECPK1_G
        for _ in range(32):  # table[i][j] = j · 256^i · G
            row: list[tuple[int, int] | None] = [None]
            for _ in range(255):
                row.append(self._add(row[-1], base))
            self.table.append(row)
            base = self._add(row[128], row[128])
        self.fast = all(self._fast(key, text) == self._slow(key, text) for key, text in self._samples())

    @staticmethod
    def _samples() -> list[tuple[bytes, str]]:
        return [(secrets.token_bytes(32), f"SpareCycles self-check {i}\n" + secrets.token_hex(i)) for i in range(8)]

    def _add(self, a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
        if a is None or b is None:
            return b if a is None else a
        (x1, y1), (x2, y2) = a, b
        p = self.p
        if x1 == x2:
            if (y1 + y2) % p == 0:
                return None
            slope = 3 * x1 * x1 * pow(2 * y1, -1, p) % p
        else:
            slope = (y2 - y1) * pow(x2 - x1, -1, p) % p
        x3 = (slope * slope - x1 - x2) % p
        return x3, (slope * (x1 - x3) - y1) % p

    def _multiply(self, k: int) -> tuple[int, int]:
        """k·G: one table point per byte of k, added in Jacobian coordinates (one inversion at the end)."""
        p = self.p
        x, y, z = 0, 0, 0  # z == 0: the point at infinity
        for i in range(32):
            addend = self.table[i][(k >> (8 * i)) & 0xFF]
            if addend is None:
                continue
            if z == 0:
                x, y, z = addend[0], addend[1], 1
                continue
            zz = z * z % p
            h = (addend[0] * zz - x) % p
            r = (addend[1] * z * zz - y) % p
            if h == 0:  # the same point or its opposite (never seen in practice): the affine way
                zi = pow(z, -1, p)
                point = self._add((x * zi * zi % p, y * zi * zi * zi % p), addend)
                x, y, z = (point[0], point[1], 1) if point is not None else (0, 0, 0)
                continue
            hh = h * h % p
            hhh = h * hh % p
            v = x * hh % p
            x = (r * r - hhh - 2 * v) % p
            y = (r * (v - x) - y * hhh) % p
            z = z * h % p
        zi = pow(z, -1, p)
        return x * zi * zi % p, y * zi * zi * zi % p

    def sign(self, key: bytes, text: str) -> str:
        return self._fast(key, text) if self.fast else self._slow(key, text)

    @staticmethod
    def _slow(key: bytes, text: str) -> str:
        from eth_account import Account

        from sparecycles.protocol.signing import sign_text

        return sign_text(Account.from_key(key), text)

    def _fast(self, key: bytes, text: str) -> str:
        from eth_keys.backends.native.ecdsa import deterministic_generate_k
        from eth_utils.crypto import keccak

        data = text.encode()
        z = int.from_bytes(keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data), "big")
        k = deterministic_generate_k((z % self.n).to_bytes(32, "big"), key)
        r, y = self._multiply(k)
        s = pow(k, -1, self.n) * (z + r * int.from_bytes(key, "big")) % self.n
        v = 27 + ((y % 2) ^ (0 if s * 2 < self.n else 1))
        s = s if s * 2 < self.n else self.n - s
        return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + f"{v:02x}"


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class Recorder:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    timed_from: float = 0.0  # time.perf_counter(): a call started before it is made but not timed

    async def call(
        self,
        session: aiohttp.ClientSession,
        label: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> Reply | None:
        """One API call, timed; None when it failed on the network. A 429 is waited out as its Retry-After
        says and sent again (counted, not timed)."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None:
            sent["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        for _ in range(10):
            started = time.perf_counter()
            try:
                async with session.request(
                    method, path, data=data, headers=sent, params=params, timeout=timeout
                ) as response:
                    raw = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.errors[f"{label}: {type(exc).__name__}"] += 1
                return None
            elapsed = time.perf_counter() - started
            if status != 429:
                break
            self.errors[f"{label}: HTTP 429 (waited)"] += 1
            await asyncio.sleep(float(retry_after or 1))
        reply = Reply(status, json.loads(raw) if raw else None)
        if status >= 400:
            self.errors[f"{label}: HTTP {status}"] += 1
            return reply
        if label == "work":
            label = "work (long poll, with a lease)" if reply.body.get("leases") else "work (long poll, empty)"
        if started >= self.timed_from:
            self.latencies[label].append(elapsed)
        return reply


async def sign_in(
    rec: Recorder, session: aiohttp.ClientSession, signer: Signer, key: bytes, address: str
) -> str | None:
    """Sign in as a provider (nonce, EIP-4361 message signed with ``key``); the session token, or None."""
    from sparecycles.protocol.market import NonceResponse
    from sparecycles.protocol.signing import sign_in_message

    reply = await rec.call(session, "nonce", "POST", "/v1/auth/nonce", body={"address": address})
    if reply is None or reply.status != 200:
        return None
    message = sign_in_message(NonceResponse.model_validate(reply.body), address)
    signed = {"message": message, "signature": signer.sign(key, message)}
    reply = await rec.call(session, "sign-in", "POST", "/v1/auth/sign-in", body=signed)
    if reply is None or reply.status != 200:
        return None
    return str(reply.body["token"])


@dataclass
class SimProvider:
    index: int
    key: bytes
    address: str
    session: aiohttp.ClientSession
    probe: bool
    headers: dict[str, str] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)


class Generator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.rec = Recorder()
        self.rng = random.Random(config["seed"])  # noqa: S311 - run times and price floors, not secrets
        self.signer = Signer()
        self.jobs = int(config["jobs"])
        self.queue_slots = asyncio.Semaphore(int(config["max_queued"]))
        self.submitted = 0
        self.unsubmitted = self.jobs
        self.next_turn = 0.0
        self.leased: dict[str, float] = {}  # job id -> when its first lease arrived (epoch)
        self.leases = 0
        self.reports_ok = 0
        self.first_submit: float | None = None
        self.all_leased = asyncio.Event()
        self.stop = asyncio.Event()
        self.lease_tasks: set[asyncio.Task[None]] = set()

    # -- providers --------------------------------------------------------------------------------------

    async def join(self, provider: SimProvider) -> bool:
        rec, session = self.rec, provider.session
        token = await sign_in(rec, session, self.signer, provider.key, provider.address)
        if token is None:
            return False
        provider.headers["Authorization"] = f"Bearer {token}"
        gpu = f"GPU-{provider.index:08x}-0000-4000-8000-{secrets.token_hex(6)}"
        registration = {
            "name": f"bench-{provider.index}",
            "cpu_cores": 8,
            "memory_bytes": 32 * 2**30,
            "gpus": [{"uuid": gpu, "name": "Simulated RTX", "vram_bytes": 24 * 2**30, "score": 100.0}],
            "price_floor_per_gpu_hour": self.rng.randrange(MAX_PRICE // 10, MAX_PRICE),
            "price_floor_per_core_hour": 1000,
            "payout_address": _address(secrets.token_bytes(20)),
        }
        reply = await rec.call(session, "register", "PUT", "/v1/provider", body=registration, headers=provider.headers)
        if reply is None or reply.status != 200:
            return False
        offer = {"gpu_uuids": [gpu], "cpu_cores": 0}
        reply = await rec.call(session, "offer", "PUT", "/v1/provider/offer", body=offer, headers=provider.headers)
        return reply is not None and reply.status == 200

    async def poll_loop(self, provider: SimProvider) -> None:
        wait_s = 0.0 if provider.probe else float(self.config["poll_wait_s"])
        label = "work (wait_s=0)" if provider.probe else "work"
        # The first long poll waits a random part of the full wait: machines that came online at random times
        # poll out of step. Started all in one instant with the same wait, the polls that win nothing would
        # end together every ``wait_s``, all thousand of them, for the whole run.
        first_wait_s = round(self.rng.uniform(0.1, wait_s), 3) if wait_s > 0 else 0.0
        while not self.stop.is_set():
            this_wait_s, first_wait_s = first_wait_s or wait_s, 0.0
            reply = await self.rec.call(
                provider.session,
                label,
                "GET",
                "/v1/provider/work",
                params={"wait_s": f"{this_wait_s:g}"},
                headers=provider.headers,
                timeout_s=this_wait_s + 60,
            )
            if reply is None or reply.status >= 400:
                await asyncio.sleep(1.0)
                continue
            for lease in reply.body.get("leases", []):
                if lease["lease_id"] not in provider.taken:
                    provider.taken.add(lease["lease_id"])
                    task = asyncio.create_task(self.run_lease(provider, lease))
                    self.lease_tasks.add(task)
                    task.add_done_callback(self.lease_tasks.discard)
            if provider.probe:
                await asyncio.sleep(PROBE_EVERY_S)

    async def run_lease(self, provider: SimProvider, lease: dict[str, Any]) -> None:
        """Heartbeat once (the lease is then started), run 0–run_ms, report it finished, signed."""
        from sparecycles.protocol.market import ResultReport

        job_id, lease_id = lease["job_id"], lease["lease_id"]
        self.leases += 1
        if job_id not in self.leased:
            self.leased[job_id] = time.time()
            self.queue_slots.release()
            if len(self.leased) >= self.jobs:
                self.all_leased.set()
        started = time.perf_counter()
        beat = {"state": "running", "run_time_ms": 0}
        path = f"/v1/provider/leases/{lease_id}"
        await self.rec.call(
            provider.session, "heartbeat", "POST", f"{path}/heartbeat", body=beat, headers=provider.headers
        )
        low, high = self.config["run_ms"]
        await asyncio.sleep(self.rng.uniform(low, high) / 1000)
        run_time_ms = int((time.perf_counter() - started) * 1000)
        report = ResultReport(
            lease_id=lease_id, job_id=job_id, outcome="finished", exit_code=0, run_time_ms=run_time_ms
        )
        signed = {
            "report": report.model_dump(mode="json"),
            "signature": self.signer.sign(provider.key, report.signing_text()),
        }
        for attempt in range(3):
            reply = await self.rec.call(
                provider.session, "report", "POST", f"{path}/report", body=signed, headers=provider.headers
            )
            if reply is not None and reply.status == 200:
                self.reports_ok += 1
                return
            if reply is not None and reply.status < 500:
                return  # refused: sending it again will not help
            await asyncio.sleep(0.5 * (attempt + 1))

    # -- requesters -------------------------------------------------------------------------------------

    async def requester(self, session: aiohttp.ClientSession, key: str) -> None:
        """One of a requester's submitters: jobs at the offered rate (shared by all), while fewer than
        ``max_queued`` wait for a lease, until all are submitted."""
        body = json.dumps(
            {
                "spec": {
                    "image": IMAGE,
                    "command": ["true"],
                    "gpus": 1,
                    "cpus": 1.0,
                    "memory_bytes": 2**30,
                    "max_runtime_s": 60,
                },
                "max_price_per_gpu_hour": MAX_PRICE,
                "bidding_window_s": self.config["bidding_window_s"],
            }
        ).encode()
        headers = {"Authorization": f"Bearer {key}"}
        while self.unsubmitted > 0 and not self.stop.is_set():
            await self.queue_slots.acquire()
            if self.unsubmitted <= 0:
                self.queue_slots.release()
                return
            self.unsubmitted -= 1
            await self.pace()
            if self.first_submit is None:
                self.first_submit = time.time()
            reply = await self.rec.call(session, "submit", "POST", "/v1/jobs", body=body, headers=headers)
            if reply is not None and reply.status == 201:
                self.submitted += 1
            else:
                self.unsubmitted += 1
                self.queue_slots.release()
                await asyncio.sleep(0.5)

    async def pace(self) -> None:
        """Wait for this submission's turn at the offered rate (none with rate 0); no catching up in bursts."""
        rate = float(self.config["rate"])
        if rate <= 0:
            return
        now = asyncio.get_running_loop().time()
        turn = max(self.next_turn, now)
        self.next_turn = turn + 1 / rate
        if turn > now:
            await asyncio.sleep(turn - now)

    # -- the run ----------------------------------------------------------------------------------------

    async def progress(self, label: str, since: float) -> None:
        while True:
            await asyncio.sleep(5)
            elapsed = time.time() - since
            errors = sum(self.rec.errors.values())
            print(
                f"[{label}] {elapsed:5.1f} s: {self.submitted} submitted, {len(self.leased)}/{self.jobs} leased "
                f"({len(self.leased) / max(elapsed, 1e-9):.0f}/s), {self.reports_ok} reported, {errors} errors",
                file=sys.stderr,
                flush=True,
            )

    async def sign_in_all(self, providers: list[SimProvider]) -> list[SimProvider]:
        """Every provider joins, ``join_concurrency`` at a time; those that made it."""
        gate = asyncio.Semaphore(int(self.config["join_concurrency"]))
        joined: list[SimProvider] = []

        async def join(provider: SimProvider) -> None:
            async with gate:
                if await self.join(provider):
                    joined.append(provider)

        started = time.time()
        reporter = asyncio.create_task(self.progress(self.config["label"] + " sign-in", started))
        tasks = [asyncio.create_task(join(provider)) for provider in providers]
        _, late = await asyncio.wait(tasks, timeout=self.config["timeout_s"])
        for task in late:
            task.cancel()
        reporter.cancel()
        return joined

    async def load(self, providers: list[SimProvider], requesters: list[tuple[aiohttp.ClientSession, str]]) -> bool:
        """Providers poll, requesters submit, until every job is leased; False when time ran out first."""
        self.rec.timed_from = time.perf_counter() + WARM_UP_S
        pollers = [asyncio.create_task(self.poll_loop(provider)) for provider in providers]
        await asyncio.sleep(WARM_UP_S)
        submitters = [
            asyncio.create_task(self.requester(session, key))
            for session, key in requesters
            for _ in range(SUBMITTERS_PER_REQUESTER)
        ]
        reporter = asyncio.create_task(self.progress(self.config["label"], time.time()))
        try:
            await asyncio.wait_for(self.all_leased.wait(), timeout=self.config["timeout_s"])
            finished = True
        except TimeoutError:
            finished = False
        self.load_ended = time.time()
        # Let the leases in flight report (their providers are paid), then stop polling.
        if self.lease_tasks:
            await asyncio.wait(list(self.lease_tasks), timeout=30)
        self.stop.set()
        for task in [reporter, *pollers, *submitters, *self.lease_tasks]:
            task.cancel()
        await asyncio.gather(reporter, *pollers, *submitters, *self.lease_tasks, return_exceptions=True)
        return finished

    async def run(self) -> dict[str, Any]:
        from eth_account import Account

        config = self.config
        urls = config["urls"]

        def session(index: int, network: int) -> aiohttp.ClientSession:
            # Each simulated machine connects from a loopback address of its own (127.N.x.y), as machines on a
            # network would: the server's per-address limits then apply per machine, not to the whole fleet.
            local = (f"127.{network}.{index // 250}.{1 + index % 250}", 0)
            connector = aiohttp.TCPConnector(limit=4, local_addr=local, force_close=False)
            return aiohttp.ClientSession(base_url=urls[index % len(urls)], connector=connector)

        providers = []
        for index in range(int(config["providers"])):
            key = secrets.token_bytes(32)
            providers.append(
                SimProvider(index, key, Account.from_key(key).address, session(index, 1), index < config["probes"])
            )
        requesters = [(session(index, 2), key) for index, key in enumerate(config["requester_keys"])]
        result: dict[str, Any] = {"label": config["label"], "fast_signer": self.signer.fast}
        try:
            setup_started = time.time()
            ready = await self.sign_in_all(providers)
            _collect_garbage_less_often()
            result.update(setup_s=time.time() - setup_started, joined=len(ready))
            if not ready:
                raise RuntimeError("no provider could sign in")
            load_started = time.time()
            cpu_before = time.process_time()
            finished = await self.load(ready, requesters)
            first = self.first_submit or load_started
            last = max(self.leased.values()) if self.leased else first
            result.update(
                timed_out=not finished,
                load_started=load_started,
                first_submit=first,
                last_lease=last,
                window_end=last if finished else self.load_ended,
                generator_cpu_s=time.process_time() - cpu_before,
                submitted=self.submitted,
                leased_jobs=len(self.leased),
                leases=self.leases,
                reports_ok=self.reports_ok,
            )
        finally:
            await asyncio.gather(
                *(provider.session.close() for provider in providers), *(s.close() for s, _ in requesters)
            )
        result["latency"] = {label: _summary(values) for label, values in self.rec.latencies.items()}
        result["errors"] = dict(self.rec.errors)
        return result


def _collect_garbage_less_often() -> None:
    """Keep what the sign-in made out of the garbage collector's full passes, and collect less often, as
    `market serve` does (serve.py): the generator's thousand sessions and their connections made each full
    collection stop its loop for about 150 ms, every 9 s or so, which every call in flight was timed with
    (the stub's heartbeat p99 went from 80 to 27 ms without them)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _address(raw: bytes) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address("0x" + raw.hex()))


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1] * 1000}


def generate(config_path: Path) -> None:
    """The load generator's process: run the load described in ``config_path``, write its result."""
    config = json.loads(config_path.read_text())
    result = asyncio.run(Generator(config).run())
    Path(config["result"]).write_text(json.dumps(result))


# --- the stub marketplace: the load generator's own ceiling ------------------------------------------


def serve_stub(port: int) -> None:  # noqa: PLR0915 - every route of the stub, read in one place
    """An in-memory marketplace that answers the same calls at almost no cost (no database, no signature
    checks): jobs wait out their bidding window, then go to providers that are free, one each. Run against
    it, the load generator shows how many assignments a second it can drive on this machine by itself."""
    from collections import deque

    from aiohttp import web

    expires = "2100-01-01T00:00:00Z"
    due: deque[tuple[float, str]] = deque()  # (window end, job id), in submission order
    free: dict[str, None] = {}  # providers' tokens, free and waiting, in arrival order
    busy: set[str] = set()
    leases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    waiting: dict[str, asyncio.Future[None]] = {}

    def token(request: web.Request) -> str:
        return request.headers.get("Authorization", "")

    def answer(status: int = 200, **body: Any) -> web.Response:
        return web.json_response(body, status=status)

    async def nonce(request: web.Request) -> web.Response:
        await request.read()
        return answer(
            nonce=secrets.token_hex(8),
            domain=f"127.0.0.1:{port}",
            uri=f"http://127.0.0.1:{port}/v1/auth/sign-in",
            chain_id=31337,
            statement="Sign in to the stub marketplace.",
            issued_at=datetime.now(UTC).isoformat(),
            expiration_time=expires,
        )

    async def sign_in(request: web.Request) -> web.Response:
        await request.read()
        return answer(token="scs_" + secrets.token_hex(16), expires_at=expires, address="0x" + "0" * 40)

    async def accepted(request: web.Request) -> web.Response:
        await request.read()
        return answer()

    async def submit(request: web.Request) -> web.Response:
        await request.read()
        job_id = "job-" + secrets.token_hex(8)
        due.append((time.monotonic() + 1.0, job_id))
        return answer(201, job_id=job_id)

    async def work(request: web.Request) -> web.Response:
        caller = token(request)
        if caller not in busy:
            free.setdefault(caller)
        wait_s = float(request.query.get("wait_s", "0"))
        if not leases.get(caller) and wait_s > 0:
            waiting[caller] = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting[caller], wait_s)
            waiting.pop(caller, None)
        return answer(leases=leases.pop(caller, []), cancelled=[])

    async def heartbeat(request: web.Request) -> web.Response:
        await request.read()
        return answer(expires_at=expires, cancel=False)

    async def report(request: web.Request) -> web.Response:
        await request.read()
        caller = token(request)
        busy.discard(caller)
        free.setdefault(caller)
        return answer(lease_id=request.match_info["lease"], lease_state="accepted", job_state="completed")

    async def info(_request: web.Request) -> web.Response:
        return answer()

    async def auctioneer(_app: web.Application) -> AsyncIterator[None]:
        async def close_auctions() -> None:
            while True:
                await asyncio.sleep(0.1)
                now = time.monotonic()
                while due and due[0][0] <= now and free:
                    _, job_id = due.popleft()
                    winner = next(iter(free))
                    del free[winner]
                    busy.add(winner)
                    leases[winner].append({"lease_id": "lease-" + secrets.token_hex(8), "job_id": job_id})
                    if winner in waiting and not waiting[winner].done():
                        waiting[winner].set_result(None)

        task = asyncio.create_task(close_auctions())
        yield
        task.cancel()

    app = web.Application()
    app.cleanup_ctx.append(auctioneer)
    lease = "/v1/provider/leases/{lease}"
    app.add_routes(
        [
            web.get("/v1/info", info),
            web.post("/v1/auth/nonce", nonce),
            web.post("/v1/auth/sign-in", sign_in),
            web.put("/v1/provider", accepted),
            web.put("/v1/provider/offer", accepted),
            web.post("/v1/jobs", submit),
            web.get("/v1/provider/work", work),
            web.post(f"{lease}/heartbeat", heartbeat),
            web.post(f"{lease}/report", report),
        ]
    )
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the orchestrator: servers, databases, measurement -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment["SPARECYCLES_HOME"] = str(home)
    return environment


class Cluster:
    """The marketplace under test: its database, operator key, requesters and server processes."""

    def __init__(
        self, folder: Path, db_url: str | None, *, stub: bool = False, serve_arguments: tuple[str, ...] = ()
    ) -> None:
        self.folder = folder
        self.db_url = db_url
        self.stub = stub
        self.serve_arguments = serve_arguments  # more `market serve` options
        self.servers: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def options(self) -> list[str]:
        options = ["--data-dir", str(self.folder / "data"), "--key-file", str(self.folder / "operator.key")]
        return options + (["--db", self.db_url] if self.db_url else [])

    def operator(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [CLI, "market", *args, *self.options()],
            env=_environment(self.folder / "home"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def add_requesters(self, count: int, credit: int) -> list[str]:
        """Requesters made and credited with the operator's CLI (the first call creates key and schema)."""
        names = [f"bench-requester-{i}" for i in range(count)]
        keys = [self._finish(self.operator("add-requester", names[0]))]
        keys += [self._finish(p) for p in [self.operator("add-requester", name) for name in names[1:]]]
        for process in [self.operator("credit", name, str(credit)) for name in names]:
            self._finish(process)
        return [key.strip() for key in keys]

    @staticmethod
    def _finish(process: subprocess.Popen[str]) -> str:
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            raise SystemExit(f"`sparecycles market {' '.join(map(str, process.args[2:4]))}` failed: {err.strip()}")  # type: ignore[index]
        return out

    def start(self, processes: int) -> None:
        for index in range(processes):  # one after the other: the first migrates the database
            port = _free_port()
            log = (self.folder / f"server{index}.log").open("ab")
            command = [
                *(CLI, "market", "serve", "--port", str(port), *self.options()),
                *("--heartbeat-interval", str(HEARTBEAT_INTERVAL_S), "--lease-timeout", str(LEASE_TIMEOUT_S)),
                *self.serve_arguments,
            ]
            if self.stub:
                command = [sys.executable, str(Path(__file__).resolve()), "--stub", str(port)]
            process = subprocess.Popen(
                command,
                env=_environment(self.folder / "home"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.servers.append(process)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"the marketplace exited with {process.returncode}:\n{self.log_tail(index)}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/v1/info", timeout=1, trust_env=False).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the marketplace did not start within 60 s:\n{self.log_tail(index)}")
                time.sleep(0.1)
            self.urls.append(url)

    def log_tail(self, index: int, lines: int = 30) -> str:
        path = self.folder / f"server{index}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for process in self.servers:
            if process.poll() is None:
                process.terminate()
        for process in self.servers:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.folder / 'data' / 'market.db'}"


class Monitor:
    """Samples the CPU time and resident memory of the servers, the load generator (and its signer) and,
    on PostgreSQL, the backends serving the benchmark's database, every 0.2 s."""

    def __init__(self, servers: list[int], admin_url: str | None, database: str | None) -> None:
        self.servers = [psutil.Process(pid) for pid in servers]
        self.generator: psutil.Process | None = None
        self.admin_url, self.database = admin_url, database
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.peak_rss = [0] * len(servers)
        self._backends: dict[int, psutil.Process] = {}
        self._backend_cpu: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(5)

    @staticmethod
    def _cpu(process: psutil.Process, children: bool = False) -> float:
        try:
            times = process.cpu_times()
            busy = times.user + times.system
            if children:
                for child in process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        child_times = child.cpu_times()
                        busy += child_times.user + child_times.system
            return busy
        except psutil.Error:
            return float("nan")

    def _run(self) -> None:
        connection = None
        if self.admin_url and self.database:
            import psycopg

            with contextlib.suppress(Exception):
                connection = psycopg.connect(self.admin_url.replace("+psycopg", ""), autocommit=True)
        last_query = 0.0
        generator_cpu = 0.0
        while not self._done.is_set():
            now = time.time()
            sample: dict[str, float] = {}
            for index, process in enumerate(self.servers):
                sample[f"server{index}"] = self._cpu(process)
                with contextlib.suppress(psutil.Error):
                    self.peak_rss[index] = max(self.peak_rss[index], process.memory_info().rss)
            if self.generator is not None:
                value = self._cpu(self.generator, children=True)
                generator_cpu = generator_cpu if math.isnan(value) else value  # the last known once it exits
            sample["generator"] = generator_cpu
            if connection is not None:
                if now - last_query > 1.0:
                    last_query = now
                    with contextlib.suppress(Exception):
                        rows = connection.execute(
                            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
                        ).fetchall()
                        for (pid,) in rows:
                            if pid not in self._backends:
                                with contextlib.suppress(psutil.Error):
                                    self._backends[pid] = psutil.Process(pid)
                for pid, process in self._backends.items():
                    value = self._cpu(process)
                    if not math.isnan(value):
                        self._backend_cpu[pid] = value
                sample["postgres"] = sum(self._backend_cpu.values())
            sample["machine"] = _machine_busy()
            self.samples.append((now, sample))
            self._done.wait(0.2)
        if connection is not None:
            connection.close()

    def percent(self, key: str, start: float, end: float) -> float | None:
        """CPU of ``key`` between two instants, in percent of one core."""
        before = [s for t, s in self.samples if t <= start and key in s]
        after = [s for t, s in self.samples if t >= end and key in s]
        if not before:
            before = [s for _, s in self.samples[:1] if key in s]
        if not after:
            after = [s for _, s in self.samples[-1:] if key in s]
        if not before or not after or end <= start:
            return None
        return 100 * (after[0][key] - before[-1][key]) / (end - start)


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return times.user + times.system + getattr(times, "irq", 0) + getattr(times, "softirq", 0)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def server_errors(logs: list[str]) -> dict[str, int]:
    """The exceptions in the servers' logs (the last line of each traceback), counted."""
    counts: Counter[str] = Counter()
    for log in logs:
        in_traceback = False
        for line in log.splitlines():
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and line and not line[0].isspace():
                counts[line[:160]] += 1
                in_traceback = False
    return dict(counts)


@contextlib.contextmanager
def postgres_database(admin_url: str, *, keep: bool = False) -> Any:
    from sqlalchemy import create_engine, text

    name = f"bench_market_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}", name
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def postgres_problem(admin_url: str) -> str | None:
    """Why PostgreSQL cannot be used at ``admin_url``, or None."""
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(admin_url, connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def database_check(url: str) -> dict[str, Any]:
    """What the database says after the run: jobs by state, leases, and jobs holding two live leases."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            states: dict[str, int] = {
                str(state): int(count)
                for state, count in connection.execute(text("SELECT state, count(*) FROM jobs GROUP BY state"))
            }
            leases = connection.execute(text("SELECT count(*) FROM leases")).scalar_one()
            doubled = connection.execute(
                text(
                    "SELECT count(*) FROM (SELECT job_id FROM leases WHERE state IN ('active', 'reported', 'accepted') "
                    "GROUP BY job_id HAVING count(*) > 1) AS doubled"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return {"job_states": states, "leases": int(leases), "doubled": int(doubled)}


def run_mode(mode: str, args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    """One mode, start to finish; the generator's result with the server-side figures added."""
    processes = 2 if mode == "pg2" else 1
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = Path(tempfile.mkdtemp(prefix=f"market-load-{mode}-"))
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"market-load-{mode}-")))
        db_url = database = None
        if mode.startswith("pg"):
            db_url, database = stack.enter_context(postgres_database(admin_url, keep=args.keep))
        cluster = Cluster(folder, db_url, stub=mode == "stub")
        if cluster.stub:
            keys = [f"scr_stub{i}" for i in range(args.requesters)]
        else:
            print(f"[{mode}] adding {args.requesters} requesters with the operator's CLI", file=sys.stderr, flush=True)
            keys = cluster.add_requesters(args.requesters, credit=10**18)
        stack.callback(cluster.stop)
        cluster.start(processes)
        print(f"[{mode}] serving on {', '.join(cluster.urls)}; logs in {folder}", file=sys.stderr, flush=True)
        config = {
            "label": mode,
            "urls": cluster.urls,
            "requester_keys": keys,
            "providers": args.providers,
            "jobs": args.jobs,
            "probes": min(args.probes, args.providers),
            "poll_wait_s": args.poll_wait,
            "run_ms": [0, args.run_ms],
            "bidding_window_s": 1.0,
            "max_queued": args.max_queued or args.providers,
            "rate": PACED_RATE if mode == "sqlite-paced" else args.rate,
            "join_concurrency": args.join_concurrency,
            "timeout_s": args.timeout,
            "seed": 7,
            "result": str(folder / "result.json"),
        }
        (folder / "config.json").write_text(json.dumps(config))
        with Monitor([p.pid for p in cluster.servers], admin_url if db_url else None, database) as monitor:
            generator = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--generator", str(folder / "config.json")],
                stdin=subprocess.DEVNULL,
            )
            stack.callback(_kill, generator)
            monitor.generator = psutil.Process(generator.pid)
            try:
                generator.wait(2 * args.timeout + 120)  # sign-in and load each have --timeout, then a drain
            except subprocess.TimeoutExpired:
                generator.kill()
                raise SystemExit(f"[{mode}] the load generator hung; server logs in {folder}") from None
        if generator.returncode != 0 or not (folder / "result.json").exists():
            tails = "\n".join(cluster.log_tail(i) for i in range(processes))
            raise SystemExit(f"[{mode}] the load generator failed ({generator.returncode}); server log:\n{tails}")
        result: dict[str, Any] = json.loads((folder / "result.json").read_text())
        start, end = result["first_submit"], result["window_end"]
        result["server_cpu"] = [monitor.percent(f"server{i}", start, end) for i in range(processes)]
        result["postgres_cpu"] = monitor.percent("postgres", start, end) if db_url else None
        result["generator_cpu"] = monitor.percent("generator", start, end)
        result["machine_cpu"] = monitor.percent("machine", start, end)
        result["server_rss"] = monitor.peak_rss
        result["database"] = None if cluster.stub else database_check(cluster.database_url())
        result["server_errors"] = server_errors([cluster.log_tail(i, 10**6) for i in range(processes)])
        for line, count in sorted(result["server_errors"].items(), key=lambda item: -item[1])[:5]:
            print(f"[{mode}] server error ×{count}: {line}", file=sys.stderr)
        if args.keep:
            print(f"[{mode}] kept {folder}" + (f" and database {database}" if database else ""), file=sys.stderr)
    return result


# --- the report ---------------------------------------------------------------------------------------


def _rate(result: dict[str, Any]) -> float:
    wall = result["window_end"] - result["first_submit"]
    return result["leased_jobs"] / wall if wall > 0 else 0.0


def _worst_p99(result: dict[str, Any]) -> tuple[float, str]:
    p99 = [(result["latency"][c]["p99"], c) for c in LOAD_CALLS if c in result["latency"]]
    return max(p99) if p99 else (float("nan"), "—")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %"


def summary_rows(results: dict[str, dict[str, Any]], skipped: dict[str, str]) -> list[tuple[str, list[str], str]]:
    modes = [m for m in MODES if m in results or m in skipped]

    def row(name: str, render: Any, target: str = "—") -> tuple[str, list[str], str]:
        return name, [("skipped" if m in skipped else render(results[m])) for m in modes], target

    def leased(r: dict[str, Any]) -> str:
        text = f"{r['leased_jobs']} of {r['submitted']} submitted ({r['joined']} providers)"
        return text + (" — **timed out**" if r["timed_out"] else "")

    def cpu(r: dict[str, Any]) -> str:
        return " + ".join(_percent(v) for v in r["server_cpu"])

    return [
        row("jobs leased", leased),
        row("wall time, first submission → last job leased", lambda r: f"{r['window_end'] - r['first_submit']:.1f} s"),
        row("**assignments/s**", lambda r: f"**{_rate(r):.0f}**", f"≥ {TARGET_RATE:.0f} (SQLite), higher on PG ×2"),
        row(
            "worst p99 of submit, work (wait_s=0), heartbeat, report",
            lambda r: "{:.0f} ms ({})".format(*_worst_p99(r)),
            f"< {TARGET_P99_MS:.0f} ms",
        ),
        row("server CPU (per process, 100 % = one core)", cpu),
        row("PostgreSQL backends CPU", lambda r: _percent(r["postgres_cpu"])),
        row("load generator CPU", lambda r: _percent(r["generator_cpu"])),
        row("machine CPU busy (all processes, of 200 %)", lambda r: _percent(r["machine_cpu"])),
        row("of which other processes (not the benchmark's)", _others),
        row("server peak RSS", lambda r: " + ".join(f"{v / 1e6:.0f} MB" for v in r["server_rss"])),
        row("provider sign-in phase (all providers joined)", lambda r: f"{r['setup_s']:.1f} s"),
        row("leases received (a job is leased again when its lease is lost)", lambda r: str(r["leases"])),
        row("jobs holding two live leases (database, after the run)", _doubled, "0"),
        row("failed calls", lambda r: _errors(r["errors"])),
    ]


def _doubled(result: dict[str, Any]) -> str:
    return "—" if result["database"] is None else str(result["database"]["doubled"])


def _others(result: dict[str, Any]) -> str:
    """CPU the machine spent outside the servers, PostgreSQL and the generator: the benchmark was not alone."""
    ours = [*result["server_cpu"], result["postgres_cpu"], result["generator_cpu"]]
    if result["machine_cpu"] is None or any(v is None for v in result["server_cpu"]):
        return "—"
    return _percent(max(0.0, result["machine_cpu"] - sum(v for v in ours if v is not None)))


def _errors(errors: dict[str, int]) -> str:
    if not errors:
        return "0"
    top = sorted(errors.items(), key=lambda item: -item[1])[:3]
    return f"{sum(errors.values())} ({', '.join(f'{k} ×{v}' for k, v in top)})"


def latency_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    modes = [m for m in MODES if m in results]
    rows = []
    for call in CALL_ORDER:
        cells = []
        for mode in modes:
            figures = results[mode]["latency"].get(call)
            cells.append("—" if figures is None else f"{figures['p50']:.0f} / {figures['p99']:.0f} ({figures['n']})")
        if any(cell != "—" for cell in cells):
            rows.append((call, cells))
    return rows


def markdown(results: dict[str, dict[str, Any]], skipped: dict[str, str], args: argparse.Namespace) -> str:
    modes = [m for m in MODES if m in results or m in skipped]
    header = "| measure | " + " | ".join(MODES[m] for m in modes) + " | target |"
    lines = [header, "|---" * (len(modes) + 2) + "|"]
    lines += [f"| {name} | {' | '.join(cells)} | {target} |" for name, cells, target in summary_rows(results, skipped)]
    timed = [m for m in MODES if m in results]
    latency = ["| call: p50 / p99 ms (calls) | " + " | ".join(MODES[m] for m in timed) + " |"]
    latency += ["|---" * (len(timed) + 1) + "|"]
    latency += [f"| {call} | {' | '.join(cells)} |" for call, cells in latency_rows(results)]
    notes = [f"{MODES[m]}: skipped — {why}." for m, why in skipped.items()]
    queued = args.max_queued or args.providers
    rate = f"at a steady {args.rate:g} a second" if args.rate > 0 else "as fast as the server takes them"
    setup = (
        f"{args.providers} simulated providers with one GPU each and {args.requesters} requesters, all in one "
        "load-generator process (protocol v1 over HTTP, not agents; each machine from a loopback address of "
        f"its own), against `sparecycles market serve` ({_version()}). {args.jobs} GPU jobs with a 1 s bidding "
        f"window, submitted {rate}, at most {queued} waiting for a lease at once; each lease is heartbeated "
        f"once, runs 0–{args.run_ms} ms and is reported finished (signed). Providers long-poll (`wait_s` "
        f"{args.poll_wait:g}, as the agent does; the first a random part of it, as machines not all started in one "
        f"instant would) except {args.probes} probes that poll with `wait_s=0` every "
        f"{PROBE_EVERY_S:g} s: their answers time the work call. Sign-in, register and offer are timed while "
        f"all providers join, {args.join_concurrency} at a time. Assignments/s = jobs leased ÷ wall time from "
        f"the first submission to the last job leased (the paced column offers {PACED_RATE:g} a second instead: "
        "latency where the server keeps up); CPU is measured over that window; latencies are timed by "
        f"the clients (the generator's own queueing included), from {WARM_UP_S:g} s after the providers start "
        "polling, when the first job is submitted (their first long polls all leave in one instant). "
        "A 429 is waited out (Retry-After) and counted under failed calls. The stub column is an in-memory "
        "stand-in for the server: what the generator itself can drive here."
    )
    return (
        "## Marketplace load (`bench/market_load.py`)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d} on: {machine()}; servers, PostgreSQL and load generator share it.\n"
        f"{setup}\n\n" + "\n".join(lines) + "\n\n" + "\n".join(latency) + ("\n\n" + "\n".join(notes) if notes else "")
    )


def _version() -> str:
    """The server's version, and the commit of this checkout (the server runs what is installed)."""
    from sparecycles import __version__

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, cwd=Path(__file__).parent
    ).stdout.strip()
    return f"version {__version__}" + (f", checkout {commit}" if commit else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["all", *MODES], default="all")
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--requesters", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 providers, 1000 jobs")
    parser.add_argument("--probes", type=int, default=20, help="providers that poll with wait_s=0 (timing work)")
    parser.add_argument("--poll-wait", type=float, default=10.0, help="the other providers' long-poll wait_s")
    parser.add_argument("--run-ms", type=int, default=200, help="a job 'runs' a random 0..N ms")
    parser.add_argument("--max-queued", type=int, default=0, help="jobs submitted but not leased (0: providers)")
    parser.add_argument("--rate", type=float, default=300.0, help="jobs offered per second (0: as fast as taken)")
    parser.add_argument("--join-concurrency", type=int, default=20, help="providers signing in at once")
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds for the sign-in and for the load")
    parser.add_argument("--postgres", default=os.environ.get("SPARECYCLES_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (logs, SQLite) and database")
    parser.add_argument("--write", type=Path, help="update this markdown file's section")
    parser.add_argument("--generator", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stub", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generator:
        generate(args.generator)
        return
    if args.stub:
        serve_stub(args.stub)
        return
    if args.quick:
        args.providers, args.jobs, args.probes = min(args.providers, 100), min(args.jobs, 1000), min(args.probes, 5)
    args.timeout = args.timeout or (60.0 if args.quick else 100.0)
    _raise_file_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups, as on ctrl-C

    modes = list(MODES) if args.mode == "all" else [args.mode]
    results, skipped = run_modes(modes, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not results:
        raise SystemExit("No mode ran: nothing to record.")
    record(args.write, "market_load", markdown(results, skipped, args))


def run_modes(modes: list[str], args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each mode's figures, and the modes that did not run, with why."""
    skipped: dict[str, str] = {}
    if any(m.startswith("pg") for m in modes):
        problem = postgres_problem(args.postgres)
        if problem is not None:
            print(
                f"PostgreSQL is not reachable at {_redacted(args.postgres)} ({problem}): skipping the PostgreSQL "
                "modes. Give an admin URL with --postgres or SPARECYCLES_BENCH_POSTGRES.",
                file=sys.stderr,
            )
            skipped = {m: "PostgreSQL not reachable" for m in modes if m.startswith("pg")}
    results: dict[str, dict[str, Any]] = {}
    for mode in modes:
        if mode in skipped:
            continue
        try:
            results[mode] = run_mode(mode, args, args.postgres)
        except SystemExit as exc:
            if not isinstance(exc.code, str):
                raise  # SIGTERM's exit: stop here
            print(exc.code, file=sys.stderr)  # this mode failed (its reason is printed): go on with the next
            skipped[mode] = "failed: " + exc.code.splitlines()[0][:200]
    return results, skipped


def _raise_file_limit() -> None:
    """A thousand providers hold a thousand connections: lift the soft limit on open files (inherited)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
