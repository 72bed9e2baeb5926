"""Jobs with declared egress on the real engine: their own internal network, their proxy, their allow-list.

What these tests cannot show here: that the internal network alone stops a job reaching the outside.
Docker enforces an internal network with iptables rules, and this machine's engine runs with
``--iptables=false`` (MACHINE.md), so a container on it still has a route to the host. They show what
the agent does: the job's network is internal and its own, the job's environment points at its proxy,
and the proxy admits only the destinations the job declared (and, unless the owner allowed private
networks, none on the owner's own machine or networks). The allow-list's details (CONNECT, absolute
URLs, DNS pinning, internal addresses) are tested on the proxy itself in test_egress_proxy.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.jobs.containers import ContainerRunner
from sparecycles.agent.jobs.egress import PROXY_VARIABLES, egress_opener
from sparecycles.agent.jobs.runtime import JobResult, JobState
from sparecycles.agent.jobs.sandbox import egress_network_name

from .test_runtime import Harness, job_state, lease, run, spec, until


class Destination:
    """A plain HTTP server on loopback that records the paths asked of it and answers ``status``."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.status = HTTPStatus.OK
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                body = f"hello from {self.path}\n".encode()
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def destinations() -> Iterator[tuple[Destination, Destination]]:
    declared, undeclared = Destination(), Destination()
    yield declared, undeclared
    declared.close()
    undeclared.close()


def fetch_script(declared: Destination, undeclared: Destination) -> str:
    return (
        f"wget -q -O /job/output/declared http://{declared.address}/declared; echo $? > /job/output/declared-exit; "
        f"wget -q -O /tmp/x http://{undeclared.address}/undeclared; echo $? > /job/output/undeclared-exit; "
        "env | grep -i _proxy= | sort > /job/output/env"
    )


@pytest.mark.docker
def test_an_egress_job_reaches_its_declared_destination_through_its_proxy_and_nothing_else(
    tmp_path: Path, runner: ContainerRunner, busybox_image: str, destinations: tuple[Destination, Destination]
) -> None:
    declared, undeclared = destinations
    harness = Harness(tmp_path, lambda: runner, open_egress=egress_opener(internal_allowed=lambda: True))
    script = fetch_script(declared, undeclared) + "; sleep 1"
    job = spec(busybox_image, ["sh", "-c", script], egress=[declared.address])
    inspected: list[dict[str, Any]] = []
    results: list[JobResult] = []

    async def scenario() -> None:
        task = asyncio.create_task(harness.runtime.run(lease("egress", job)))
        await until(lambda: job_state(harness.runtime, "egress") is JobState.RUNNING)
        container_id = harness.records.load()["egress"].container_id
        inspected.append(runner.client.api.inspect_container(container_id)["NetworkSettings"]["Networks"])
        inspected.append(runner.client.api.inspect_network(egress_network_name("egress")))
        results.append(await asyncio.wait_for(task, 30))

    run(scenario())
    [result] = results
    assert result.state is JobState.FINISHED, result
    outputs = result.outputs_dir
    assert outputs is not None
    assert (outputs / "declared").read_text() == "hello from /declared\n"
    assert (outputs / "declared-exit").read_text() == "0\n"
    assert (outputs / "undeclared-exit").read_text() != "0\n"
    assert declared.paths == ["/declared"]
    assert undeclared.paths == []  # the proxy refused it before connecting

    container_networks, network = inspected
    assert network["Internal"] is True
    assert list(container_networks) == [egress_network_name("egress")]  # and no other network
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    proxy = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in (outputs / "env").read_text().splitlines()}
    assert sorted(proxy) == sorted(PROXY_VARIABLES)
    [url] = set(proxy.values())
    assert url.startswith(f"http://{gateway}:")
    # The network and the proxy went with the job (the runner fixture fails the test on any leftover).
    assert runner.egress_network("egress") is None


@pytest.mark.docker
def test_without_private_networks_allowed_a_declared_destination_on_this_machine_is_refused(
    tmp_path: Path,
    runner: ContainerRunner,
    busybox_image: str,
    destinations: tuple[Destination, Destination],
    caplog: pytest.LogCaptureFixture,
) -> None:
    declared, undeclared = destinations
    harness = Harness(tmp_path, lambda: runner, open_egress=egress_opener())
    job = spec(busybox_image, ["sh", "-c", fetch_script(declared, undeclared)], egress=[declared.address])

    async def scenario() -> None:
        result = await harness.runtime.run(lease("home", job))
        assert result.state is JobState.FINISHED
        assert result.outputs_dir is not None
        assert (result.outputs_dir / "declared-exit").read_text() != "0\n"

    with caplog.at_level("INFO"):
        run(scenario())
    assert declared.paths == []
    assert undeclared.paths == []
    assert any(declared.address in record.getMessage() for record in caplog.records if "egress" in record.name)


@pytest.mark.docker
def test_after_a_crash_an_egress_job_is_adopted_with_its_proxy_where_its_environment_expects_it(
    tmp_path: Path, runner: ContainerRunner, busybox_image: str, destinations: tuple[Destination, Destination]
) -> None:
    declared, _ = destinations
    declared.status = HTTPStatus.SERVICE_UNAVAILABLE  # the job keeps asking until the test lets it through
    harness = Harness(tmp_path, lambda: runner, open_egress=egress_opener(internal_allowed=lambda: True))
    script = f"until wget -q -O /job/output/page http://{declared.address}/page; do sleep 0.2; done"
    job = spec(busybox_image, ["sh", "-c", script], egress=[declared.address])

    async def scenario() -> None:
        crashed = asyncio.create_task(harness.runtime.run(lease("adopted", job)))
        await until(lambda: len(declared.paths) >= 1)  # it is running and its proxy works
        port = harness.records.load()["adopted"].egress_port
        crashed.cancel()  # the agent goes away: its proxy with it, the container stays
        with pytest.raises(asyncio.CancelledError):
            await crashed
        asked = len(declared.paths)
        await asyncio.sleep(0.6)
        assert len(declared.paths) == asked  # no proxy, no way out

        restarted = harness.new_runtime()
        recovery = await restarted.recover(lambda record: record.lease.expires_at > datetime.now(UTC))
        assert list(recovery.adopted) == ["adopted"]
        assert harness.records.load()["adopted"].egress_port == port
        declared.status = HTTPStatus.OK
        result = await asyncio.wait_for(recovery.adopted["adopted"], 30)
        assert result.state is JobState.FINISHED
        assert result.outputs_dir is not None
        assert (result.outputs_dir / "page").read_text() == "hello from /page\n"

    run(scenario())
    assert runner.egress_network("adopted") is None
