"""A job's allowed egress: an allow-list forward proxy, the only way out of the job's internal network.

Docker cannot filter a container's traffic by destination, so a job whose owner allows egress runs on an
internal network with ``HTTP_PROXY``/``HTTPS_PROXY`` pointing here. The proxy admits ``CONNECT host:port``
and absolute-form plain-HTTP requests only for the (host, port) pairs the job declared. An admitted name
is resolved once and the connection goes to that very address, so a second DNS answer cannot redirect
it; an address on the provider's own machine or networks (loopback, private, link-local, the host's own
addresses) is refused even for a declared name or IP, unless the provider, never the job, permitted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import re
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
"""Opens a TCP connection to an IP address (text) and port; the proxy never hands it a name."""
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves a host name to IP addresses (text); called once per admitted connection to a name."""
AddressSource = Callable[[], Iterable[str]]
"""The host's own IP addresses (text), which a job must not reach through a declared name."""
DestinationSpec = tuple[str, int] | str

_CHUNK = 64 * 1024
_CLOSE_GRACE_S = 5.0
_LINGER_S = 2.0
_MAX_REFUSALS_KEPT = 1000
_MAX_REFUSALS_LOGGED_LOUDLY = 256
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "upgrade"}
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_AUTHORITY = re.compile(r"(?:\[(?P<v6>[^\[\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]{1,5})")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class EgressProxyError(Exception):
    """Something about a job's egress proxy or its allow-list is wrong."""


class InvalidDestination(EgressProxyError, ValueError):
    """A destination that is not ``host:port`` with a valid host name or IP address and port 1-65535."""


class MalformedRequest(EgressProxyError):
    """A request the proxy cannot read; ``reason`` is fixed text, never an echo of the request."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _normal_host(host: str) -> str:
    bracketed = host.startswith("[") and host.endswith("]")
    text = host[1:-1] if bracketed else host
    address: IPAddress | None = None
    if "%" not in text:  # a scoped IPv6 address only makes sense on the provider's own links
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(text)
    if bracketed and not isinstance(address, ipaddress.IPv6Address):
        raise InvalidDestination(f"{host!r}: only IPv6 addresses go in brackets")
    if address is not None:
        return str(address)
    name = text.lower().removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        # a numeric last label ("127.1", "0x7f.1") is an address shorthand the resolver would expand
        raise InvalidDestination(f"{host!r} is neither a host name nor an IP address")
    return name


@dataclass(frozen=True)
class Destination:
    """A host and port, normalised: names lower-case without a trailing dot, IP addresses in canonical form."""

    host: str
    port: int

    @classmethod
    def of(cls, host: str, port: int) -> Destination:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidDestination(f"port {port!r} of {host!r} is not between 1 and 65535")
        return cls(_normal_host(host), port)

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``host:port`` or ``[IPv6]:port``."""
        match = _AUTHORITY.fullmatch(text)
        if match is None:
            raise InvalidDestination(f"{text!r} is not host:port")
        host = match["host"] if match["v6"] is None else f"[{match['v6']}]"
        return cls.of(host, int(match["port"]))

    @classmethod
    def from_spec(cls, spec: DestinationSpec) -> Destination:
        return cls.parse(spec) if isinstance(spec, str) else cls.of(*spec)

    @property
    def ip(self) -> IPAddress | None:
        """The address when the host is an IP literal, else None."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def host_header(self) -> str:
        """The host as it goes in a Host header or URL (IPv6 in brackets, no port)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return f"{self.host_header}:{self.port}"


class EgressAllowList:
    """The exact (host, port) pairs a job may reach: no wildcards, and an IP matches only an IP entry."""

    def __init__(self, entries: Iterable[DestinationSpec] = ()) -> None:
        self._entries = frozenset(Destination.from_spec(entry) for entry in entries)

    def __contains__(self, destination: object) -> bool:
        return destination in self._entries

    def __iter__(self) -> Iterator[Destination]:
        return iter(sorted(self._entries, key=str))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"EgressAllowList({[str(entry) for entry in self]!r})"


def is_internal_address(address: IPAddress, own: Iterable[IPAddress] = ()) -> bool:
    """Whether an address leads back into the provider's machine or networks rather than the internet.

    Loopback, private, shared (CGNAT), link-local (cloud metadata at 169.254.169.254), multicast,
    reserved and unspecified addresses, IPv6 forms that embed such an IPv4 address, and ``own``
    (the host's addresses, which may be public) all count.
    """
    own_set = set(own)
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if int(address) < 2**32:  # "::" and the deprecated IPv4-compatible "::a.b.c.d"
            return True
        candidates += [embedded for embedded in (address.ipv4_mapped, address.sixtofour) if embedded is not None]
    return any(
        not candidate.is_global
        or candidate.is_multicast
        or candidate.is_reserved
        or candidate.is_unspecified
        or candidate in own_set
        for candidate in candidates
    )


def _parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])


class RefusalReason(enum.StrEnum):
    NOT_DECLARED = "not in the job's declared egress"
    INTERNAL_ADDRESS = "resolves to an address on the provider's own machine or network"


@dataclass(frozen=True)
class Refusal:
    """One refused request: where it wanted to go and why (``address`` is the offending DNS answer)."""

    destination: Destination
    reason: RefusalReason
    address: str | None = None

    def __str__(self) -> str:
        return str(self.destination)


@dataclass(frozen=True)
class ProxyRequest:
    """A parsed request: where to, whether it is a tunnel, and for plain HTTP the head to send upstream."""

    destination: Destination
    tunnel: bool
    forward_head: bytes = b""


def parse_request_head(head: bytes) -> ProxyRequest:
    """Read a proxy request head (up to and including the blank line); raise :class:`MalformedRequest`."""
    if not head.endswith(b"\r\n\r\n"):
        raise MalformedRequest("the request head does not end with an empty line")
    lines = head[:-4].decode("latin-1").split("\r\n")
    request_line, header_lines = lines[0], lines[1:]
    if _CONTROL.search(request_line) or not request_line.isascii() or "\t" in request_line:
        raise MalformedRequest("the request line holds control or non-ASCII characters")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise MalformedRequest("the request line is not METHOD TARGET VERSION")
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise MalformedRequest("the method or HTTP version is not valid")
    headers = [_parse_header(line) for line in header_lines]
    if method == "CONNECT":
        try:
            return ProxyRequest(Destination.parse(target), tunnel=True)
        except InvalidDestination:
            raise MalformedRequest("CONNECT needs host:port") from None
    destination, path = _absolute_http_target(target)
    dropped = _HOP_BY_HOP | {"host"} | _connection_options(headers)
    kept = [(name, value) for name, value in headers if name.lower() not in dropped]
    host = destination.host_header if destination.port == 80 else str(destination)
    lines_out = [f"{method} {path} {version}", f"Host: {host}", *(f"{n}: {v}" for n, v in kept), "Connection: close"]
    return ProxyRequest(destination, tunnel=False, forward_head=("\r\n".join(lines_out) + "\r\n\r\n").encode("latin-1"))


def _parse_header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not _TOKEN.fullmatch(name):  # also refuses folded lines and "Name :" (request smuggling)
        raise MalformedRequest("a header line is not Name: value")
    if _CONTROL.search(value):
        raise MalformedRequest("a header value holds control characters")
    return name, value.strip(" \t")


def _connection_options(headers: list[tuple[str, str]]) -> set[str]:
    """Header names listed in Connection, which are hop-by-hop too."""
    return {
        option.strip().lower()
        for name, value in headers
        if name.lower() in ("connection", "proxy-connection")
        for option in value.split(",")
    }


def _absolute_http_target(target: str) -> tuple[Destination, str]:
    if target[:8].lower() == "https://":
        raise MalformedRequest("https goes through CONNECT, not an absolute https:// request")
    if target[:7].lower() != "http://":
        raise MalformedRequest("the target is not an absolute http:// URL (is this a proxy request?)")
    rest = target[7:]
    cut = min((index for index in (rest.find(mark) for mark in "/?#") if index >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:].split("#", 1)[0]
    if "@" in authority:
        raise MalformedRequest("credentials in the URL are not accepted")
    try:
        if authority.endswith("]") or ":" not in authority:
            destination = Destination.of(authority, 80)
        else:
            destination = Destination.parse(authority)
    except InvalidDestination:
        raise MalformedRequest("the URL's host or port is not valid") from None
    return destination, path if path.startswith("/") else f"/{path}"


async def system_resolver(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host``, in its order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def open_tcp(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(address, port)


def host_addresses() -> list[str]:
    """Every address on the host's interfaces, including public ones and Docker's bridge gateways."""
    import psutil

    families = (socket.AF_INET, socket.AF_INET6)
    interfaces = psutil.net_if_addrs().values()
    return [entry.address for entries in interfaces for entry in entries if entry.family in families]


class _Activity:
    """When bytes last moved on a connection, for the idle timeout."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.last = loop.time()

    def touch(self) -> None:
        self.last = self._loop.time()


class EgressProxy:
    """One job's egress proxy: listens on the job network's gateway, admits only the declared destinations.

    ``permit_internal`` lists ``ip:port`` pairs on the provider's side that the provider (never the
    job) lets this job reach although they are internal; ``internal_allowed`` lets every declared
    destination through wherever it leads (the owner allowed private networks: a studio's own
    servers); either way a destination must be declared in ``allowed``. ``clients``, when given, are
    the networks allowed to use the proxy (the job's own network): every container can reach every
    host address, including another job's proxy.
    """

    def __init__(
        self,
        allowed: EgressAllowList | Iterable[DestinationSpec],
        *,
        bind_host: str = "127.0.0.1",
        port: int = 0,
        permit_internal: Iterable[DestinationSpec] = (),
        internal_allowed: bool = False,
        connect: Opener = open_tcp,
        resolver: Resolver = system_resolver,
        own_addresses: AddressSource = host_addresses,
        clients: Iterable[str] | None = None,
        job: str = "job",
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        max_connections: int = 64,
        max_head_bytes: int = 16 * 1024,
    ) -> None:
        if connect_timeout <= 0 or idle_timeout <= 0 or max_connections < 1 or max_head_bytes < 1024:
            raise ValueError("timeouts must be positive, max_connections at least 1, max_head_bytes at least 1024")
        self._allowed = allowed if isinstance(allowed, EgressAllowList) else EgressAllowList(allowed)
        self._permit_internal = EgressAllowList(permit_internal)
        if any(entry.ip is None for entry in self._permit_internal):
            raise InvalidDestination("permit_internal takes IP addresses only, never host names")
        self._internal_allowed = internal_allowed
        self._bind_host = bind_host
        self._port = port
        self._connect = connect
        self._resolver = resolver
        self._own_addresses = own_addresses
        self._clients = (
            None if clients is None else [ipaddress.ip_network(network, strict=False) for network in clients]
        )
        self._strangers_seen: set[str] = set()
        self._cap_reported = False
        self._job = job
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._max_head_bytes = max_head_bytes
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._active = 0
        self._closing = False
        self._bytes_up = 0
        self._bytes_down = 0
        self._refusals: deque[Refusal] = deque(maxlen=_MAX_REFUSALS_KEPT)
        self._refused_total = 0
        self._logged_refusals: set[tuple[Destination, RefusalReason]] = set()
        self._address: tuple[str, int] | None = None

    @property
    def allowed(self) -> EgressAllowList:
        return self._allowed

    @property
    def address(self) -> tuple[str, int]:
        """Where the proxy listens (set by :meth:`start`)."""
        if self._address is None:
            raise EgressProxyError("the egress proxy has not been started")
        return self._address

    @property
    def bytes_up(self) -> int:
        """Bytes sent from the job to its destinations (request heads included), for accounting."""
        return self._bytes_up

    @property
    def bytes_down(self) -> int:
        """Bytes received from destinations and passed to the job."""
        return self._bytes_down

    @property
    def refused(self) -> list[Refusal]:
        """The latest refused requests (at most 1000; :attr:`refused_total` counts them all)."""
        return list(self._refusals)

    @property
    def refused_total(self) -> int:
        return self._refused_total

    @property
    def active_connections(self) -> int:
        return self._active

    async def start(self) -> tuple[str, int]:
        if self._server is not None:
            return self.address
        if self._closing:
            raise EgressProxyError("this egress proxy has been closed; a job's new run gets a new proxy")
        try:
            self._server = await asyncio.start_server(
                self._accept, self._bind_host, self._port, limit=self._max_head_bytes
            )
        except OSError as error:
            raise EgressProxyError(
                f"cannot listen on {self._bind_host}:{self._port} for {self._job}'s egress proxy: {error}"
            ) from error
        host, port = self._server.sockets[0].getsockname()[:2]
        self._address = (str(host), int(port))
        declared = len(self._allowed)
        log.info("egress proxy for %s listening on %s:%d, %d destinations declared", self._job, host, port, declared)
        return self._address

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> EgressProxy:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing or len(self._tasks) >= 2 * self._max_connections or not self._is_client(writer):
            writer.transport.abort()  # shutting down, a flood, or not this job: not even worth an answer
            return
        admitted = self._active < self._max_connections
        if admitted:
            self._active += 1
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer, admitted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _is_client(self, writer: asyncio.StreamWriter) -> bool:
        if self._clients is None:
            return True
        peer = str(writer.get_extra_info("peername", ("",))[0])
        with contextlib.suppress(ValueError):
            if any(_parse_address(peer) in network for network in self._clients):
                return True
        loud = peer not in self._strangers_seen and len(self._strangers_seen) < _MAX_REFUSALS_LOGGED_LOUDLY
        if loud:
            self._strangers_seen.add(peer)
        log.log(
            logging.WARNING if loud else logging.DEBUG,
            "egress proxy for %s: dropped a connection from %s, which is not on the job's network",
            self._job,
            peer,
        )
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, admitted: bool) -> None:
        try:
            if not admitted:
                level, self._cap_reported = (logging.DEBUG if self._cap_reported else logging.WARNING), True
                log.log(level, "egress proxy for %s: %d connections open, refusing more", self._job, self._active)
                raise _Answer(HTTPStatus.SERVICE_UNAVAILABLE, "Too many egress connections open for this job.")
            await self._handle(reader, writer)
        except _Answer as answer:
            with contextlib.suppress(OSError, TimeoutError):  # the job may be gone already
                await _reply(writer, answer.status, answer.message)
                await _linger(reader, writer)
        except asyncio.CancelledError:
            pass  # close() ends the connection; nothing waits on this task's outcome
        except ConnectionError:
            pass  # the job or the destination dropped the connection
        except Exception:
            log.exception("egress proxy for %s: unexpected error on a connection", self._job)
        finally:
            if admitted:
                self._active -= 1
            await _shut(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._idle_timeout)
        except (asyncio.IncompleteReadError, TimeoutError):
            return  # the job went away or went quiet before asking for anything
        except asyncio.LimitOverrunError:
            log.info("egress proxy for %s: request head over %d bytes", self._job, self._max_head_bytes)
            raise _Answer(HTTPStatus.BAD_REQUEST, "Malformed proxy request: the request head is too long.") from None
        try:
            request = parse_request_head(head)
        except MalformedRequest as error:
            log.info("egress proxy for %s: malformed request (%s)", self._job, error.reason)
            raise _Answer(HTTPStatus.BAD_REQUEST, f"Malformed proxy request: {error.reason}.") from None
        destination = request.destination
        if destination not in self._allowed:
            raise self._refusal(Refusal(destination, RefusalReason.NOT_DECLARED))
        up_reader, up_writer = await self._open(destination, await self._addresses(destination))
        try:
            log.debug("egress proxy for %s: connected to %s", self._job, destination)
            if request.tunnel:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                up_writer.write(request.forward_head)
                self._bytes_up += len(request.forward_head)
                await up_writer.drain()
            await self._relay(reader, writer, up_reader, up_writer)
        finally:
            await _shut(up_writer)

    async def _addresses(self, destination: Destination) -> list[IPAddress]:
        """The addresses to try, resolved once; refuse if any of them is internal and not permitted."""
        literal = destination.ip
        if literal is not None:
            addresses = [literal]
        else:
            try:
                answers = await asyncio.wait_for(
                    self._resolver(destination.host, destination.port), self._connect_timeout
                )
                addresses = [_parse_address(answer) for answer in answers]
            except (OSError, ValueError, TimeoutError) as error:
                log.info("egress proxy for %s: cannot resolve %s (%s)", self._job, destination, type(error).__name__)
                addresses = []
            if not addresses:
                raise _Answer(HTTPStatus.BAD_GATEWAY, f"Egress to {destination} failed: the name does not resolve.")
        if self._internal_allowed:
            return addresses
        own = [_parse_address(text) for text in self._own_addresses()]
        for address in addresses:
            permitted = Destination(str(address), destination.port) in self._permit_internal
            if not permitted and is_internal_address(address, own):
                raise self._refusal(Refusal(destination, RefusalReason.INTERNAL_ADDRESS, str(address)))
        return addresses

    async def _open(
        self, destination: Destination, addresses: list[IPAddress]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the first address that answers, by address: the name is never looked up again."""
        failure = "no address answered"
        try:
            async with asyncio.timeout(self._connect_timeout):
                for address in addresses:
                    try:
                        return await self._connect(str(address), destination.port)
                    except OSError as error:
                        failure = error.strerror or type(error).__name__
        except TimeoutError:
            log.info("egress proxy for %s: connecting to %s timed out", self._job, destination)
            raise _Answer(HTTPStatus.GATEWAY_TIMEOUT, f"Connecting to {destination} timed out.") from None
        log.info("egress proxy for %s: cannot connect to %s (%s)", self._job, destination, failure)
        raise _Answer(HTTPStatus.BAD_GATEWAY, f"Egress to {destination} failed: could not connect ({failure}).")

    def _refusal(self, refusal: Refusal) -> _Answer:
        """Record and log a refusal (the first of a kind loudly, repeats quietly); the 403 to send."""
        self._refusals.append(refusal)
        self._refused_total += 1
        key = (refusal.destination, refusal.reason)
        loud = key not in self._logged_refusals and len(self._logged_refusals) < _MAX_REFUSALS_LOGGED_LOUDLY
        if loud:
            self._logged_refusals.add(key)
        log.log(
            logging.WARNING if loud else logging.DEBUG,
            "egress refused for %s: %s%s %s",
            self._job,
            refusal.destination,
            f" (answered {refusal.address})" if refusal.address else "",
            refusal.reason.value,
        )
        return _Answer(HTTPStatus.FORBIDDEN, f"Egress to {refusal.destination} refused: {refusal.reason.value}.")

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Copy bytes both ways; one side's end of stream is passed on, and the whole connection ends on idle."""
        loop = asyncio.get_running_loop()
        activity = _Activity(loop)
        pumps = {
            asyncio.create_task(self._pump(reader, up_writer, activity, up=True)),
            asyncio.create_task(self._pump(up_reader, writer, activity, up=False)),
        }
        pending = set(pumps)
        try:
            while pending:
                remaining = activity.last + self._idle_timeout - loop.time()
                if remaining <= 0:
                    log.debug("egress proxy for %s: connection idle, closing", self._job)
                    return
                done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if any(task.exception() is not None for task in done):
                    return  # a side reset or broke its connection: end both
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, activity: _Activity, *, up: bool
    ) -> None:
        while data := await source.read(_CHUNK):
            activity.touch()
            if up:
                self._bytes_up += len(data)
            else:
                self._bytes_down += len(data)
            sink.write(data)
            await sink.drain()
            activity.touch()
        if sink.can_write_eof() and not sink.is_closing():
            sink.write_eof()


class _Answer(Exception):
    """An HTTP answer that ends the connection (refusal, malformed request, failed connect)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _reply(writer: asyncio.StreamWriter, status: HTTPStatus, message: str) -> None:
    body = f"{message}\n".encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("ascii") + body)
    await asyncio.wait_for(writer.drain(), _CLOSE_GRACE_S)


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Stop sending, then discard what the job still sends for a moment before closing.

    Closing a socket with unread input makes the kernel reset the connection, which can destroy the
    answer before the job reads it.
    """
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_LINGER_S):
            while await reader.read(_CHUNK):
                pass


async def _shut(writer: asyncio.StreamWriter) -> None:
    """Close a connection, dropping it outright if the peer will not take what is still buffered."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), _CLOSE_GRACE_S)
    except (OSError, TimeoutError):
        writer.transport.abort()
    except BaseException:
        writer.transport.abort()
        raise


class EgressProxyThread:
    """Runs an :class:`EgressProxy` on its own event loop in a daemon thread, for synchronous callers."""

    def __init__(self, proxy: EgressProxy, *, name: str = "egress-proxy") -> None:
        self.proxy = proxy
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> tuple[str, int]:
        if self._loop is not None:
            return self.proxy.address
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            return asyncio.run_coroutine_threadsafe(self.proxy.start(), loop).result(timeout)
        except BaseException:
            self.stop(timeout)
            raise

    def stop(self, timeout: float = 30.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.proxy.close(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> EgressProxyThread:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
