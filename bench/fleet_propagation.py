"""A studio fleet's policy propagation: simulated agents against a real `sparecycles market serve` on PostgreSQL.

One load-generator process (this one, asyncio + aiohttp) plays ``--agents`` machines at the protocol level, not
as agent processes (500 agents would not fit in memory): each signs in with its own key (EIP-4361, signed as
market_load.py signs), registers a machine with one (fake) GPU, joins the group with the operator's enrolment
code, and then reports its state every ``--report-every`` seconds (10, as the marketplace asks), at a random
phase, which is the machine's heartbeat to its studio. The operator pushes a new group policy through the admin
API every ``--push-every`` seconds, ``--pushes`` times. A machine has the new policy when a report's answer
carries its version: propagation = that moment less the moment the push was acknowledged. Server CPU is the
server process's user + system time over the pushes (100 % = one core); the PostgreSQL backends serving the
benchmark's database are reported beside it. Each machine connects from a loopback address of its own
(127.3.x.y), so per-address sign-in limits apply per machine.

    python bench/fleet_propagation.py [--agents 500] [--report-every 10] [--pushes 6] [--push-every 20]
                                      [--postgres URL] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from common import machine, record
from market_load import (
    DEFAULT_POSTGRES,
    Cluster,
    Monitor,
    Recorder,
    Signer,
    _summary,
    postgres_database,
    postgres_problem,
    sign_in,
)

GROUP = "bench-studio"
TARGET_P99_S = 15.0


@dataclass
class SimAgent:
    index: int
    key: bytes
    address: str
    session: aiohttp.ClientSession
    headers: dict[str, str] = field(default_factory=dict)
    version: int = 0
    seen: dict[int, float] = field(default_factory=dict)  # policy version -> when this machine first had it


class Fleet:
    def __init__(self, url: str, code: str, token: str, args: argparse.Namespace) -> None:
        self.url, self.code, self.token, self.args = url, code, token, args
        self.rec = Recorder()
        self.signer = Signer()
        self.rng = random.Random(7)  # noqa: S311 - report phases, not secrets
        self.pushed: dict[int, float] = {}
        self.stop = asyncio.Event()

    async def join(self, agent: SimAgent) -> bool:
        rec, session = self.rec, agent.session
        token = await sign_in(rec, session, self.signer, agent.key, agent.address)
        if token is None:
            return False
        agent.headers["Authorization"] = f"Bearer {token}"
        registration = {
            "name": f"studio-pc-{agent.index}",
            "cpu_cores": 16,
            "memory_bytes": 64 * 2**30,
            "gpus": [
                {
                    "uuid": f"GPU-{agent.index:08x}-0000-4000-8000-{secrets.token_hex(6)}",
                    "name": "Simulated RTX 4090",
                    "vram_bytes": 24 * 2**30,
                    "score": 100.0,
                }
            ],
            "price_floor_per_gpu_hour": 10**5,
            "price_floor_per_core_hour": 1000,
            "payout_address": agent.address,
        }
        reply = await rec.call(session, "register", "PUT", "/v1/provider", body=registration, headers=agent.headers)
        if reply is None or reply.status != 200:
            return False
        reply = await rec.call(
            session, "join", "POST", "/v1/provider/group", body={"code": self.code}, headers=agent.headers
        )
        if reply is None or reply.status != 200:
            return False
        agent.version = int(reply.body["policy_version"])
        return True

    async def report_loop(self, agent: SimAgent) -> None:
        every = float(self.args.report_every)
        await asyncio.sleep(self.rng.uniform(0, every))
        while not self.stop.is_set():
            started = time.monotonic()
            report = {
                "agent_version": "bench",
                "state": "working",
                "reason": "working: a render job",
                "gpus": [{"index": 0, "name": "Simulated RTX 4090", "state": "working", "reason": "working"}],
                "gpu_hours_today": 3.5,
                "energy_kwh_today": 1.2,
                "policy_version": agent.version,
            }
            reply = await self.rec.call(
                agent.session, "fleet report", "PUT", "/v1/provider/fleet", body=report, headers=agent.headers
            )
            if reply is not None and reply.status == 200 and reply.body["membership"] is not None:
                version = int(reply.body["membership"]["policy_version"])
                if version > agent.version:
                    agent.version = version
                    agent.seen.setdefault(version, time.time())
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    async def push(self, session: aiohttp.ClientSession, number: int) -> int:
        policy = {"mode": "schedule", "windows": ["Mon-Fri 19:00-08:00", "Sat-Sun"], "max_temperature_c": 70 + number}
        reply = await self.rec.call(
            session,
            "policy push",
            "PUT",
            f"/v1/admin/groups/{GROUP}/policy",
            body=policy,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if reply is None or reply.status != 200:
            raise SystemExit(f"the policy push failed: {reply}")
        version = int(reply.body["policy_version"])
        self.pushed[version] = time.time()
        return version

    async def run(self, monitor: Monitor) -> dict[str, Any]:
        from eth_account import Account

        def session(index: int) -> aiohttp.ClientSession:
            local = (f"127.3.{index // 250}.{1 + index % 250}", 0)
            return aiohttp.ClientSession(base_url=self.url, connector=aiohttp.TCPConnector(limit=2, local_addr=local))

        agents = []
        for index in range(self.args.agents):
            key = secrets.token_bytes(32)
            agents.append(SimAgent(index, key, Account.from_key(key).address, session(index)))
        operator = aiohttp.ClientSession(base_url=self.url)
        gate = asyncio.Semaphore(32)

        async def joined(agent: SimAgent) -> bool:
            async with gate:
                return await self.join(agent)

        started = time.time()
        ok = await asyncio.gather(*(joined(agent) for agent in agents))
        members = [agent for agent, good in zip(agents, ok, strict=True) if good]
        join_s = time.time() - started
        loops = [asyncio.create_task(self.report_loop(agent)) for agent in members]
        await asyncio.sleep(self.args.report_every * 1.5)  # every machine has reported once: steady state
        window_start = time.time()
        versions = []
        for number in range(self.args.pushes):
            versions.append(await self.push(operator, number))
            await asyncio.sleep(self.args.push_every)
        deadline = time.time() + 3 * self.args.report_every
        while time.time() < deadline and any(agent.version < versions[-1] for agent in members):  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # a look twice a second at 500 counters: simpler than an event per agent
        window_end = time.time()
        self.stop.set()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for agent in agents:
            await agent.session.close()
        await operator.close()

        delays = [
            agent.seen[version] - self.pushed[version]
            for agent in members
            for version in versions
            if version in agent.seen
        ]
        missing = sum(1 for agent in members for version in versions if version not in agent.seen)
        reports = self.rec.latencies.get("fleet report", [])
        return {
            "agents": len(members),
            "join_failures": len(agents) - len(members),
            "join_s": join_s,
            "versions": versions,
            "delays": delays,
            "missing": missing,
            "reports": len(reports),
            "report_latency": _summary(reports) if reports else None,
            "errors": dict(self.rec.errors),
            "server_cpu": monitor.percent("server0", window_start, window_end),
            "postgres_cpu": monitor.percent("postgres", window_start, window_end),
            "machine_cpu": monitor.percent("machine", window_start, window_end),
            "window_s": window_end - window_start,
            "peak_rss_mb": monitor.peak_rss[0] / 2**20,
        }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    delays = result["delays"]
    p50, p99, worst = (_quantile(delays, q) for q in (0.5, 0.99, 1.0)) if delays else (float("nan"),) * 3
    cpu = result["server_cpu"]
    verdict = "met" if p99 < TARGET_P99_S and cpu is not None and cpu < 100 else "NOT met"
    latency = result["report_latency"] or {}
    lines: list[str | None] = [
        "## Studio fleet: policy propagation (`bench/fleet_propagation.py`)",
        "",
        f"Machine: {machine()}. One `market serve` process on PostgreSQL (Debian 15), one load-generator process "
        f"playing {result['agents']} machines at the protocol level: each signed in, registered, joined the group "
        f"with an enrolment code, and reported its state every {args.report_every:g} s (at a random phase); "
        f"{args.pushes} policy pushes through the admin API, {args.push_every:g} s apart. "
        f"Joining all of them took {result['join_s']:.1f} s.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| policy propagation p50 / p99 / max | {p50:.1f} s / {p99:.1f} s / {worst:.1f} s "
        f"| p99 < {TARGET_P99_S:g} s |",
        f"| machine-versions not reached | {result['missing']} of {result['agents'] * len(result['versions'])} | 0 |",
        f"| server CPU over the pushes | {cpu:.0f} % of one core | under one core |" if cpu is not None else None,
        f"| PostgreSQL backends CPU | {result['postgres_cpu'] or 0:.0f} % | |",
        f"| whole machine CPU (2 cores = 200 %) | {result['machine_cpu'] or 0:.0f} % | |",
        f"| fleet reports answered | {result['reports']}, p50 {latency.get('p50', 0):.1f} ms, p99 "
        f"{latency.get('p99', 0):.1f} ms | |",
        f"| server peak memory | {result['peak_rss_mb']:.0f} MB | |",
        f"| errors | {json.dumps(result['errors']) if result['errors'] else 'none'} | |",
        "",
        f"Target {verdict}. Propagation is bounded by the report interval the marketplace asks for (a machine hears "
        "of a new policy at its next report), plus the answer's latency.",
    ]
    return "\n".join(line for line in lines if line is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--report-every", type=float, default=10.0)
    parser.add_argument("--pushes", type=int, default=6)
    parser.add_argument("--push-every", type=float, default=20.0)
    parser.add_argument("--postgres", default=os.environ.get("SPARECYCLES_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--write", type=Path, help="Record the figures in this Markdown file.")
    args = parser.parse_args()
    problem = postgres_problem(args.postgres)
    if problem is not None:
        raise SystemExit(f"PostgreSQL is needed ({args.postgres}): {problem}")
    with (
        tempfile.TemporaryDirectory(prefix="sparecycles-fleet-bench-") as folder,
        postgres_database(args.postgres) as (db_url, database),
    ):
        cluster = Cluster(
            Path(folder),
            db_url,
            serve_arguments=("--fleet-report-every", f"{args.report_every:g}"),
        )
        cluster.start(1)
        try:
            token = _operator(cluster, "admin-token", "bench")
            code = json.loads(_operator(cluster, "enrol-code", "--group", GROUP, "--json"))["code"]
            with Monitor([cluster.servers[0].pid], args.postgres, database) as monitor:
                result = asyncio.run(Fleet(cluster.urls[0], code, token, args).run(monitor))
        finally:
            cluster.stop()
    record(args.write, "fleet_propagation", markdown(result, args))
    if result["join_failures"]:
        print(f"{result['join_failures']} machine(s) could not join: {result['errors']}", file=sys.stderr)


def _operator(cluster: Cluster, *args: str) -> str:
    process = cluster.operator(*args)
    out, err = process.communicate(timeout=120)
    if process.returncode != 0:
        raise SystemExit(f"`sparecycles market {args[0]}` failed: {err.strip()}")
    return out.strip()


if __name__ == "__main__":
    main()
