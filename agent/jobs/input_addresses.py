"""Where a job's input download may connect when the owner has not allowed private networks.

An input URL is the requester's choice. Its host, a public name that resolves to 127.0.0.1, or a
redirect from a public server could point the download at the provider's own machine or LAN (a
router's admin page, a cloud metadata service), and what answered would go back to the marketplace
in the job's error. So every hop is resolved once, refused when any of its addresses is internal
(as the egress proxy decides it, :func:`is_internal_address`), and connected to by that checked
address, so that a second DNS answer cannot slip in between the check and the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Iterable

import httpx

from sparecycles.agent.jobs.egress_proxy import (
    AddressSource,
    Destination,
    DestinationSpec,
    EgressAllowList,
    IPAddress,
    Resolver,
    host_addresses,
    is_internal_address,
    system_resolver,
)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_INSIDE = (
    "leads to an address inside this provider's own machine or network (loopback, private, link-local or "
    "its own addresses); only public hosts may be reached"
)


class InputAddressError(Exception):
    """A URL, or a redirect on its way, that cannot be fetched safely; ``str()`` may go to the marketplace.

    The text names only what the requester gave or its own server answered, never an address the
    provider's DNS returned nor anything a host inside the provider's network said.
    """


class InternalAddressRefused(InputAddressError):
    """The URL (or a redirect) leads to the provider's own machine or networks, which the owner did not allow."""


def _address(text: str) -> IPAddress | None:
    """The IP address ``text`` spells (an IPv6 scope dropped), or None for a host name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _port(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS[url.scheme]


class AddressGuard:
    """Resolves a URL's host once and refuses it when any address leads inside the provider's machine or networks.

    ``permit_internal`` lists ``ip:port`` pairs the provider (never the job) lets downloads reach although
    they are internal, like the egress proxy's option of the same name; everything else internal is refused.
    """

    def __init__(
        self,
        *,
        resolver: Resolver = system_resolver,
        own_addresses: AddressSource = host_addresses,
        permit_internal: Iterable[DestinationSpec] = (),
        resolve_timeout_s: float = 10.0,
    ) -> None:
        self._resolver = resolver
        self._own_addresses = own_addresses
        self._permit_internal = EgressAllowList(permit_internal)
        if any(entry.ip is None for entry in self._permit_internal):
            raise ValueError("permit_internal takes IP addresses only, never host names")
        self._resolve_timeout_s = resolve_timeout_s

    async def addresses(self, url: httpx.URL, shown: str) -> list[IPAddress]:
        """The addresses ``url``'s host resolves to, all of them checked; ``shown`` names the URL in errors."""
        if url.scheme not in _DEFAULT_PORTS:
            raise InputAddressError(f"{shown} is not an http:// or https:// URL")
        host = url.raw_host.decode("ascii")
        if not host:
            raise InputAddressError(f"{shown} names no host")
        port = _port(url)
        literal = _address(host)
        addresses = [literal] if literal is not None else await self._resolve(host, port, shown)
        own = [address for text in self._own_addresses() if (address := _address(text)) is not None]
        for address in addresses:
            permitted = Destination(str(address), port) in self._permit_internal
            if not permitted and is_internal_address(address, own):
                log.warning("Input download refused: %s:%d is %s, inside this machine's networks", host, port, address)
                raise InternalAddressRefused(f"refused: {shown} {_INSIDE}")
        return addresses

    async def _resolve(self, host: str, port: int, shown: str) -> list[IPAddress]:
        try:
            answers = await asyncio.wait_for(self._resolver(host, port), self._resolve_timeout_s)
        except (OSError, ValueError, TimeoutError) as error:
            log.info("Input download: cannot resolve %s (%s)", host, type(error).__name__)
            answers = []
        addresses = [address for answer in answers if (address := _address(answer)) is not None]
        if not addresses or len(addresses) != len(answers):
            raise InputAddressError(f"{shown} cannot be fetched: its host name does not resolve")
        return addresses


@contextlib.asynccontextmanager
async def open_public(
    client: httpx.AsyncClient, url: str, guard: AddressGuard, *, max_redirects: int = MAX_REDIRECTS
) -> AsyncIterator[httpx.Response]:
    """GET ``url``, following at most ``max_redirects`` redirects, each hop checked by ``guard``.

    Yields the final response with its body not read yet. A redirect's body is never read, and a hop
    that leads inside the provider's network is refused before anything connects to it.
    """
    target = httpx.URL(url)
    for hop in range(max_redirects + 1):
        shown = url if hop == 0 else f"{url} (redirected to {target})"
        response = await _get_pinned(client, target, await guard.addresses(target, shown))
        try:
            following = _redirect_target(response, target, url)
            if following is None:
                yield response
                return
        finally:
            await response.aclose()
        target = following
    raise InputAddressError(f"{url} redirects more than {max_redirects} times")


async def _get_pinned(client: httpx.AsyncClient, target: httpx.URL, addresses: list[IPAddress]) -> httpx.Response:
    """Connect to the first checked address that answers, by address: the name is never looked up again.

    The request's URL carries the address while the Host header and, for HTTPS, the TLS server name
    (``sni_hostname``, which the certificate is verified against) stay the URL's own name. Through a
    proxy from the environment the proxy is handed the address too; plain HTTP then works as directly,
    while HTTPS fails the certificate check (httpcore's tunnel ignores ``sni_hostname``): it fails closed.
    """
    failure: httpx.TransportError | None = None
    for address in addresses:
        try:
            return await client.send(_pinned_request(client, target, address), stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            failure = error
    raise failure or InputAddressError(f"{target} has no address to connect to")


def _pinned_request(client: httpx.AsyncClient, target: httpx.URL, address: IPAddress) -> httpx.Request:
    name = target.raw_host.decode("ascii")
    if _address(name) is not None:  # an IP literal: the URL is pinned already
        return client.build_request("GET", target)
    return client.build_request(
        "GET",
        target.copy_with(host=str(address)),
        headers={"Host": target.netloc.decode("ascii")},
        extensions={"sni_hostname": name},
    )


def _redirect_target(response: httpx.Response, target: httpx.URL, url: str) -> httpx.URL | None:
    """Where a redirect points (relative to the URL as named, not the pinned address), or None for an answer."""
    location = response.headers.get("location")
    if response.status_code not in _REDIRECT_STATUSES or location is None:
        return None
    try:
        following = target.join(location)
    except httpx.InvalidURL:
        raise InputAddressError(f"{url} redirects to an invalid URL") from None
    if following.scheme not in _DEFAULT_PORTS:
        raise InputAddressError(f"{url} redirects to {following}, which is not an http:// or https:// URL")
    return following
