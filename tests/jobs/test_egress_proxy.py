"""The egress proxy's allow-list, with real sockets on 127.0.0.1.

A job whose owner allows egress runs on an internal Docker network whose only way out is this proxy.
That isolation itself is not shown here: Docker's internal networks isolate only through the iptables
rules the engine manages, and the engine on this test machine runs with ``--iptables=false``, so a
container on an "internal" network here is not actually cut off and a test of it would prove nothing.
What is tested is the proxy's own allow-list: what it admits, refuses, relays and counts.

Network rule: every socket here is on 127.0.0.1. Other addresses (93.184.216.34, 10.0.0.5, ...) appear
only as fake DNS answers from an injected resolver; they are either refused, which the recording opener
proves by never being called, or routed by that opener to a loopback server, so no packet leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import socketserver
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from ipaddress import ip_address
from typing import Any

import pytest

from sparecycles.agent.jobs.egress_proxy import (
    Destination,
    EgressAllowList,
    EgressProxy,
    EgressProxyThread,
    InvalidDestination,
    MalformedRequest,
    RefusalReason,
    host_addresses,
    is_internal_address,
    parse_request_head,
)

LOOPBACK = "127.0.0.1"
PROXY_LOGGER = "sparecycles.agent.jobs.egress_proxy"
PUBLIC = "93.184.216.34"  # only ever a fake DNS answer; the opener below never connects to it
NO_OWN_ADDRESSES: Callable[[], list[str]] = list
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# -- harness -----------------------------------------------------------------------------------------------


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one scenario under a generous deadline, then insist that it left no task behind."""

    async def main() -> None:
        await asyncio.wait_for(scenario(), 60)
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leftovers, leftovers

    asyncio.run(main())


async def within(awaitable: Awaitable[Any], seconds: float = 15) -> Any:
    return await asyncio.wait_for(awaitable, seconds)


async def eventually(predicate: Callable[[], bool], seconds: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class LocalServer:
    """A TCP server on 127.0.0.1 running ``handler`` per connection; counts accepted and finished ones."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.accepted = 0
        self.finished = 0

    async def __aenter__(self) -> LocalServer:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._run(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handler(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self.finished += 1


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends every byte back; closes when the peer ends its stream."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


class HttpOrigin:
    """A one-request HTTP server that records the request head it got and answers with the request body."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = b"hello from the origin:" + await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    def headers(self, index: int = 0) -> dict[str, str]:
        lines = self.heads[index].decode("latin-1").split("\r\n")[1:-2]
        return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


class FakeResolver:
    """DNS answers from a table; records every name asked (unknown names fail like NXDOMAIN)."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


class FakeOpener:
    """Records every connection the proxy opens; reaches 127.0.0.1 directly and any other address only
    through ``routes`` to a loopback port, so nothing leaves the machine."""

    def __init__(self, routes: dict[tuple[str, int], int] | None = None) -> None:
        self.routes = routes or {}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.calls.append((address, port))
        if (address, port) in self.routes:
            return await asyncio.open_connection(LOOPBACK, self.routes[(address, port)])
        if address == LOOPBACK:
            return await asyncio.open_connection(address, port)
        raise ConnectionRefusedError(errno.ECONNREFUSED, "the test opener reaches loopback only")


@contextlib.asynccontextmanager
async def client(proxy: EgressProxy) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await within(asyncio.open_connection(*proxy.address))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one proxy answer (a CONNECT's 200 has no body)."""
    head = await within(reader.readuntil(b"\r\n\r\n"))
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await within(reader.readexactly(length))


async def ask(proxy: EgressProxy, request: bytes) -> tuple[int, bytes]:
    async with client(proxy) as (reader, writer):
        writer.write(request)
        await writer.drain()
        return await read_response(reader)


async def open_tunnel(proxy: EgressProxy, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await within(asyncio.open_connection(*proxy.address))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    status, _ = await read_response(reader)
    assert status == 200
    return reader, writer


async def shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def proxy_for(*allowed: str, **options: Any) -> EgressProxy:
    options.setdefault("own_addresses", NO_OWN_ADDRESSES)
    return EgressProxy(allowed, **options)


# -- pure decisions ----------------------------------------------------------------------------------------


def test_destinations_are_normalised_and_matched_exactly() -> None:
    allowed = EgressAllowList([("Example.COM.", 443), "[::1]:8080", "10.0.0.5:80"])
    assert Destination.parse("example.com:443") in allowed
    assert Destination.parse("EXAMPLE.com.:443") in allowed
    assert Destination.parse("example.com:80") not in allowed  # port must match
    assert Destination.parse("www.example.com:443") not in allowed  # no suffix matching
    assert Destination.parse("[0:0::1]:8080") in allowed
    assert str(Destination.parse("[::1]:8080")) == "[::1]:8080"
    assert Destination.parse("10.0.0.5:80").ip is not None
    assert Destination.parse("localhost:80") not in EgressAllowList(["127.0.0.1:80"])  # IPs match only IPs
    assert Destination.parse("127.0.0.1:80") not in EgressAllowList(["localhost:80"])


@pytest.mark.parametrize(
    "text",
    [
        "example.com",
        "example.com:0",
        "example.com:65536",
        "exa mple.com:80",
        "a..b:80",
        ":80",
        "user@example.com:80",
        "[example.com]:80",
        "[10.0.0.1]:80",
        "[fe80::1%eth0]:80",
        "127.1:80",
        "0x7f.1:80",
        "2130706433:80",
    ],
)
def test_invalid_destinations_are_rejected(text: str) -> None:
    with pytest.raises(InvalidDestination):
        Destination.parse(text)


def test_the_provider_permits_internal_addresses_by_ip_only() -> None:
    with pytest.raises(InvalidDestination):
        EgressProxy([], permit_internal=["localhost:80"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.17.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "::7f00:1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::1",
    ],
)
def test_addresses_of_the_providers_machine_and_networks_are_internal(address: str) -> None:
    assert is_internal_address(ip_address(address))


def test_public_addresses_are_external_unless_the_host_owns_them() -> None:
    assert not is_internal_address(ip_address(PUBLIC))
    assert not is_internal_address(ip_address("2606:4700:4700::1111"))
    assert is_internal_address(ip_address(PUBLIC), [ip_address(PUBLIC)])


def test_a_plain_http_request_is_rewritten_for_the_origin() -> None:
    head = (
        b"POST http://Example.com/upload?x=1#frag HTTP/1.1\r\nHost: evil.test\r\n"
        b"Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
        b"Connection: X-Trace\r\nX-Trace: 1\r\nContent-Length: 3\r\n\r\n"
    )
    request = parse_request_head(head)
    assert request.destination == Destination("example.com", 80)
    assert not request.tunnel
    assert request.forward_head == (
        b"POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    )
    assert parse_request_head(b"GET http://[::1]:8080 HTTP/1.0\r\n\r\n").forward_head.startswith(
        b"GET / HTTP/1.0\r\nHost: [::1]:8080\r\n"
    )
    connect = parse_request_head(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert connect.tunnel
    assert connect.destination == Destination("example.com", 443)
    with pytest.raises(MalformedRequest):
        parse_request_head(b"GET http://example.com/ HTTP/1.1\r\nX: 1\r\n")


# -- the proxy, on loopback --------------------------------------------------------------------------------


def test_connect_to_a_declared_target_relays_both_ways_and_counts_bytes() -> None:
    async def scenario() -> None:
        async with LocalServer(echo) as server:
            target = f"{LOOPBACK}:{server.port}"
            async with proxy_for(target, permit_internal=[target]) as proxy:
                reader, writer = await within(asyncio.open_connection(*proxy.address))
                try:
                    # the first bytes of the tunnel arrive with the CONNECT, as TLS clients send them
                    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nearly".encode())
                    status, _ = await read_response(reader)
                    assert status == 200
                    assert await within(reader.readexactly(5)) == b"early"
                    payload = bytes(range(256)) * 800
                    writer.write(payload)
                    assert await within(reader.readexactly(len(payload))) == payload
                    writer.write_eof()  # our end of stream travels through: the echo server closes
                    assert await within(reader.read()) == b""
                finally:
                    await shut(writer)
                await eventually(lambda: proxy.active_connections == 0)
                assert proxy.bytes_up == proxy.bytes_down == 5 + len(payload)
                assert proxy.refused == []
        assert server.accepted == 1

    run(scenario)


def test_a_declared_name_is_resolved_once_and_matched_case_insensitively() -> None:
    async def scenario() -> None:
        async with LocalServer(echo) as server:
            resolver = FakeResolver({"allowed.test": [LOOPBACK]})
            opener = FakeOpener()
            async with proxy_for(
                f"allowed.test:{server.port}",
                permit_internal=[f"{LOOPBACK}:{server.port}"],  # the provider, not the job, opens loopback
                resolver=resolver,
                connect=opener,
            ) as proxy:
                reader, writer = await open_tunnel(proxy, f"Allowed.TEST.:{server.port}")
                try:
                    writer.write(b"ping")
                    assert await within(reader.readexactly(4)) == b"ping"
                finally:
                    await shut(writer)
        assert resolver.calls == ["allowed.test"]
        assert opener.calls == [(LOOPBACK, server.port)]

    run(scenario)


def test_a_public_answer_is_connected_to_by_address_never_by_name_again() -> None:
    async def scenario() -> None:
        async with LocalServer(echo) as server:
            resolver = FakeResolver({"api.example.test": [PUBLIC]})
            opener = FakeOpener(routes={(PUBLIC, 443): server.port})  # "the internet" is a loopback echo
            async with proxy_for("api.example.test:443", resolver=resolver, connect=opener) as proxy:
                reader, writer = await open_tunnel(proxy, "api.example.test:443")
                try:
                    writer.write(b"hello")
                    assert await within(reader.readexactly(5)) == b"hello"
                finally:
                    await shut(writer)
        assert resolver.calls == ["api.example.test"]
        assert opener.calls == [(PUBLIC, 443)]

    run(scenario)


def test_an_undeclared_port_on_a_declared_host_is_refused_before_any_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=PROXY_LOGGER)

    async def scenario() -> None:
        async with LocalServer(echo) as declared, LocalServer(echo) as other:
            permitted = [f"{LOOPBACK}:{declared.port}", f"{LOOPBACK}:{other.port}"]
            async with proxy_for(f"{LOOPBACK}:{declared.port}", permit_internal=permitted) as proxy:
                status, body = await ask(proxy, f"CONNECT {LOOPBACK}:{other.port} HTTP/1.1\r\n\r\n".encode())
                assert status == 403
                assert f"{LOOPBACK}:{other.port}".encode() in body
                assert b"not in the job's declared egress" in body
                assert [str(refusal) for refusal in proxy.refused] == [f"{LOOPBACK}:{other.port}"]
                assert proxy.refused[0].reason is RefusalReason.NOT_DECLARED
        assert other.accepted == 0
        assert declared.accepted == 0

    run(scenario)
    refusals = [record for record in caplog.records if "egress refused" in record.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING


def test_an_undeclared_host_is_refused_without_resolving_or_connecting() -> None:
    async def scenario() -> None:
        resolver = FakeResolver({"elsewhere.test": [PUBLIC]})
        opener = FakeOpener()
        async with proxy_for("allowed.test:443", resolver=resolver, connect=opener) as proxy:
            status, body = await ask(proxy, b"CONNECT elsewhere.test:443 HTTP/1.1\r\n\r\n")
            assert (status, body) == (403, b"Egress to elsewhere.test:443 refused: not in the job's declared egress.\n")
            status, body = await ask(proxy, b"GET http://elsewhere.test/index.html HTTP/1.1\r\n\r\n")
            assert status == 403
            assert b"elsewhere.test:80" in body  # http's default port
            assert proxy.refused_total == 2
        assert resolver.calls == []
        assert opener.calls == []

    run(scenario)


def test_plain_http_to_a_declared_origin_is_forwarded_without_proxy_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=PROXY_LOGGER)

    async def scenario() -> None:
        origin = HttpOrigin()
        async with LocalServer(origin) as server:
            target = f"{LOOPBACK}:{server.port}"
            async with proxy_for(target, permit_internal=[target]) as proxy:
                request = (
                    f"POST http://{target}/hello?x=1 HTTP/1.1\r\nHost: {target}\r\n"
                    "Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
                    "Content-Length: 3\r\n\r\nabc"
                ).encode()
                status, body = await ask(proxy, request)
                assert (status, body) == (200, b"hello from the origin:abc")
                await eventually(lambda: proxy.active_connections == 0)
                assert origin.heads[0].startswith(b"POST /hello?x=1 HTTP/1.1\r\n")
                headers = origin.headers()
                assert headers["host"] == target
                assert headers["connection"] == "close"
                assert "proxy-authorization" not in headers
                assert "proxy-connection" not in headers
                assert proxy.bytes_up == len(origin.heads[0]) + 3
                assert proxy.bytes_down > len(body)

    run(scenario)
    assert "c2VjcmV0" not in caplog.text


def test_plain_http_to_an_undeclared_origin_is_refused_and_its_headers_stay_out_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=PROXY_LOGGER)
    refused_target = ""

    async def scenario() -> None:
        nonlocal refused_target
        origin = HttpOrigin()
        async with LocalServer(origin) as server:
            target = f"{LOOPBACK}:{server.port}"
            refused_target = f"localhost:{server.port}"
            async with proxy_for(target, permit_internal=[target]) as proxy:
                # the same server by name: not declared (and a name never matches an IP entry)
                status, body = await ask(
                    proxy,
                    f"GET http://localhost:{server.port}/ HTTP/1.1\r\nProxy-Authorization: Basic c2VjcmV0\r\n"
                    "Cookie: session=hunter2\r\n\r\n".encode(),
                )
                assert status == 403
                assert f"localhost:{server.port}".encode() in body
        assert server.accepted == 0

    run(scenario)
    assert f"egress refused for job: {refused_target} not in the job's declared egress" in caplog.text
    assert "c2VjcmV0" not in caplog.text
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize(
    "request_head",
    [
        b"hello\r\n\r\n",
        b"CONNECT example.com HTTP/1.1\r\n\r\n",
        b"CONNECT example.com:99999 HTTP/1.1\r\n\r\n",
        b"CONNECT exa_mple!.com:443 HTTP/1.1\r\n\r\n",
        b"CONNECT  example.com:443 HTTP/1.1\r\n\r\n",
        b"GET /relative HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"GET https://example.com/ HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
        b"GET http://example.com/ HTTP/2.0\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
        b"GET http://ex\xe4mple.com/ HTTP/1.1\r\n\r\n",
        b"GET http://example.com/ HTTP/1.1\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n",
    ],
    ids=lambda head: head[:40].decode("latin-1"),
)
def test_malformed_requests_get_400_and_go_nowhere(request_head: bytes) -> None:
    async def scenario() -> None:
        resolver = FakeResolver({"example.com": [PUBLIC]})
        opener = FakeOpener()
        async with proxy_for("example.com:443", "example.com:80", resolver=resolver, connect=opener) as proxy:
            status, body = await ask(proxy, request_head)
            assert status == 400
            assert body.startswith(b"Malformed proxy request")
            assert proxy.refused == []
        assert resolver.calls == []
        assert opener.calls == []

    run(scenario)


@pytest.mark.parametrize(
    ("answers", "own"),
    [
        ([LOOPBACK], []),
        (["127.0.0.53"], []),
        (["10.0.0.5"], []),
        (["172.17.0.1"], []),  # Docker's default bridge gateway
        (["169.254.169.254"], []),  # cloud metadata
        (["0.0.0.0"], []),
        (["::1"], []),
        (["::ffff:127.0.0.1"], []),
        ([PUBLIC, LOOPBACK], []),  # one hostile answer among good ones spoils them all
        ([PUBLIC], [PUBLIC]),  # the host's own public address
    ],
)
def test_a_hostile_dns_answer_for_a_declared_name_is_refused(answers: list[str], own: list[str]) -> None:
    async def scenario() -> None:
        resolver = FakeResolver({"allowed.test": answers})
        opener = FakeOpener()
        async with proxy_for("allowed.test:443", resolver=resolver, connect=opener, own_addresses=lambda: own) as proxy:
            status, body = await ask(proxy, b"CONNECT allowed.test:443 HTTP/1.1\r\n\r\n")
            assert status == 403
            assert b"allowed.test:443" in body
            assert b"provider's own machine or network" in body
            for answer in answers:
                assert answer.encode() not in body  # the job learns no internal address
            [refusal] = proxy.refused
            assert refusal.reason is RefusalReason.INTERNAL_ADDRESS
            assert refusal.address is not None
            assert ip_address(refusal.address) in {ip_address(answer) for answer in answers}
        assert resolver.calls == ["allowed.test"]
        assert opener.calls == []

    run(scenario)


def test_a_job_cannot_declare_its_way_onto_the_providers_loopback() -> None:
    """A stranger's job declaring 127.0.0.1:PORT is refused: only the provider permits internal addresses."""

    async def scenario() -> None:
        async with LocalServer(echo) as server, proxy_for(f"{LOOPBACK}:{server.port}") as proxy:
            status, _ = await ask(proxy, f"CONNECT {LOOPBACK}:{server.port} HTTP/1.1\r\n\r\n".encode())
            assert status == 403
            assert proxy.refused[0].reason is RefusalReason.INTERNAL_ADDRESS
        assert server.accepted == 0

    run(scenario)


@pytest.mark.parametrize("address", sorted(set(host_addresses())))
def test_an_answer_naming_one_of_this_machines_real_addresses_is_refused(address: str) -> None:
    """The default address source (psutil) feeds the check; these addresses are only fake DNS answers."""

    async def scenario() -> None:
        resolver = FakeResolver({"allowed.test": [address]})
        opener = FakeOpener()
        async with EgressProxy(["allowed.test:443"], resolver=resolver, connect=opener) as proxy:
            status, _ = await ask(proxy, b"CONNECT allowed.test:443 HTTP/1.1\r\n\r\n")
            assert status == 403
        assert opener.calls == []

    run(scenario)


def test_an_unresolvable_or_unreachable_destination_gets_502() -> None:
    async def scenario() -> None:
        with socket.socket() as probe:  # a loopback port that nothing listens on
            probe.bind((LOOPBACK, 0))
            closed_port = probe.getsockname()[1]
        target = f"{LOOPBACK}:{closed_port}"
        async with proxy_for("missing.test:443", target, permit_internal=[target], resolver=FakeResolver()) as proxy:
            status, body = await ask(proxy, b"CONNECT missing.test:443 HTTP/1.1\r\n\r\n")
            assert status == 502
            assert b"does not resolve" in body
            status, _ = await ask(proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            assert status == 502
            assert proxy.refused == []

    run(scenario)


def test_an_idle_connection_is_closed_on_both_sides() -> None:
    async def scenario() -> None:
        async with LocalServer(echo) as server:
            target = f"{LOOPBACK}:{server.port}"
            async with proxy_for(target, permit_internal=[target], idle_timeout=0.5) as proxy:
                reader, writer = await open_tunnel(proxy, target)
                try:
                    writer.write(b"x")
                    assert await within(reader.readexactly(1)) == b"x"
                    assert await within(reader.read(), 30) == b""  # then silence: the proxy hangs up
                finally:
                    await shut(writer)
                await eventually(lambda: server.finished == 1, 30)  # and its upstream side went too
                async with client(proxy) as (quiet_reader, _):  # a job that never sends a request
                    assert await within(quiet_reader.read(), 30) == b""

    run(scenario)


def test_connections_over_the_cap_get_503_until_one_closes() -> None:
    async def scenario() -> None:
        async with LocalServer(echo) as server:
            target = f"{LOOPBACK}:{server.port}"
            async with proxy_for(target, permit_internal=[target], max_connections=2) as proxy:
                tunnels = [await open_tunnel(proxy, target) for _ in range(2)]
                try:
                    status, body = await ask(proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
                    assert status == 503
                    assert b"Too many" in body
                    await shut(tunnels.pop()[1])
                    await eventually(lambda: proxy.active_connections == 1)
                    tunnels.append(await open_tunnel(proxy, target))
                finally:
                    for _, writer in tunnels:
                        await shut(writer)

    run(scenario)


def test_closing_the_proxy_ends_open_tunnels() -> None:
    async def scenario() -> None:
        async with LocalServer(echo) as server:
            target = f"{LOOPBACK}:{server.port}"
            proxy = proxy_for(target, permit_internal=[target])
            await proxy.start()
            reader, writer = await open_tunnel(proxy, target)
            try:
                await within(proxy.close())
                assert await within(reader.read()) == b""
                assert proxy.active_connections == 0
            finally:
                await shut(writer)
            await eventually(lambda: server.finished == 1)

    run(scenario)


class _ThreadedEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@contextlib.contextmanager
def threaded_echo_server() -> Iterator[int]:
    with socketserver.ThreadingTCPServer((LOOPBACK, 0), _ThreadedEcho) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join(10)


def test_the_thread_wrapper_serves_synchronous_callers() -> None:
    with threaded_echo_server() as echo_port:
        target = f"{LOOPBACK}:{echo_port}"
        with EgressProxyThread(proxy_for(target, permit_internal=[target])) as running:
            host, port = running.proxy.address
            with socket.create_connection((host, port), timeout=15) as sock:
                sock.sendall(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    head += sock.recv(1)
                assert head.startswith(b"HTTP/1.1 200 ")
                sock.sendall(b"sync")
                received = b""
                while len(received) < 4:
                    received += sock.recv(4 - len(received))
                assert received == b"sync"
        assert running.proxy.bytes_up == 4


def test_only_the_jobs_own_network_may_use_its_proxy() -> None:
    """Every container can reach every host address, so a proxy also checks who is calling."""

    async def scenario() -> None:
        async with LocalServer(echo) as server:
            target = f"{LOOPBACK}:{server.port}"
            async with proxy_for(target, permit_internal=[target], clients=["10.9.0.0/24"]) as proxy:
                async with client(proxy) as (reader, writer):
                    writer.write(f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
                    with contextlib.suppress(ConnectionError):
                        assert await within(reader.read()) == b""  # dropped without an answer
                assert proxy.refused == []
            async with proxy_for(target, permit_internal=[target], clients=["127.0.0.0/8"]) as proxy:
                reader, writer = await open_tunnel(proxy, target)
                await shut(writer)
        assert server.accepted == 1

    run(scenario)
