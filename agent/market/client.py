"""The agent's HTTP client of a marketplace (protocol v1): every answer size-capped and schema-checked.

A marketplace is a stranger on the network: an answer larger than :data:`MAX_RESPONSE_BYTES`, one
whose body does not decode (a ``Content-Encoding`` it does not follow), one that is not JSON, or one
that does not match the protocol's models is refused with a :class:`MarketResponseError` (and logged by
the caller), never half-used. Network trouble, any other failed exchange and 5xx answers are
:class:`MarketUnavailable` (worth retrying, with :class:`Backoff`); 4xx answers are
:class:`MarketRefused` (retrying the same request will not help). No httpx error leaves this client:
callers handle :class:`MarketError` alone, and a heartbeat that meets a broken answer must not take a
finished lease's report down with it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from sparecycles.protocol.fleet import FleetDirective, FleetReport, JoinRequest, Membership
from sparecycles.protocol.market import (
    API_PREFIX,
    Heartbeat,
    HeartbeatAck,
    MarketPrices,
    NonceResponse,
    Offer,
    OutputFile,
    PayoutChange,
    ProviderLeaseView,
    ProviderRegistration,
    ProviderView,
    RelayAck,
    ReportAck,
    ServerInfo,
    SessionToken,
    SignedResultReport,
    Voucher,
    WorkResponse,
)

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_UPLOAD_CHUNK = 1024 * 1024

Model = TypeVar("Model", bound=BaseModel)


class MarketError(Exception):
    """Talking to the marketplace failed; the message says how."""


class MarketUnavailable(MarketError):
    """The marketplace cannot be reached or failed (network, 5xx): try again later."""


class MarketRefused(MarketError):
    """The marketplace refused the request (4xx); ``status`` and its ``detail`` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the marketplace refused ({status}): {detail}")
        self.status = status
        self.detail = detail


class MarketResponseError(MarketError):
    """The marketplace answered something this agent will not use (too large, malformed, undecodable)."""


class ForeignChallenge(MarketResponseError):
    """The marketplace's sign-in challenge names another marketplace (domain, URI or chain): signing it could
    give whoever relayed it a session there as this machine, so nothing is signed."""


class Backoff:
    """Exponential backoff with full jitter: the n-th wait is random in [0.5, 1.5) × min(cap, first × 2ⁿ)."""

    def __init__(
        self, first_s: float = 1.0, cap_s: float = 60.0, random_unit: Callable[[], float] = random.random
    ) -> None:
        self._first, self._cap, self._random = first_s, cap_s, random_unit
        self._failures = 0

    def next_delay(self) -> float:
        base = min(self._cap, self._first * 2**self._failures)
        self._failures += 1
        return float(base * (0.5 + self._random()))

    def reset(self) -> None:
        self._failures = 0

    def limit(self, cap_s: float) -> None:
        """Wait at most ``cap_s`` (before jitter) from now on."""
        self._cap = cap_s


class MarketClient:
    """One marketplace, one session token; ``transport`` is for tests (a hostile marketplace)."""

    def __init__(
        self, base_url: str, *, timeout_s: float = 30.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url + API_PREFIX, timeout=timeout_s, transport=transport, follow_redirects=False
        )
        self.token: str | None = None

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, model: type[Model], *, json: Any = None, params: Any = None, **extra: Any
    ) -> Model:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with self._http.stream(method, path, json=json, params=params, headers=headers, **extra) as answer:
                body = await _read_capped(answer)
        except httpx.TimeoutException as exc:
            raise MarketUnavailable(f"the marketplace did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise MarketUnavailable(f"the marketplace at {self.base_url} is not reachable ({exc})") from None
        except httpx.DecodingError as exc:
            raise MarketResponseError(
                f"the marketplace's answer to {method} {path} cannot be decoded: it is not protocol v1 ({exc})"
            ) from None
        except httpx.HTTPError as exc:  # any other failure of the exchange (httpx adds kinds over time)
            raise MarketUnavailable(
                f"the exchange with the marketplace at {self.base_url} failed ({type(exc).__name__}: {exc})"
            ) from None
        if answer.status_code >= 500:
            raise MarketUnavailable(f"the marketplace failed ({answer.status_code})")
        if answer.status_code >= 400:
            raise MarketRefused(answer.status_code, _detail(body))
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise MarketResponseError(
                f"the marketplace's answer to {method} {path} does not match protocol v1 "
                f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']})"
            ) from None

    async def info(self) -> ServerInfo:
        return await self._call("GET", "/info", ServerInfo)

    async def nonce(self, address: str) -> NonceResponse:
        return await self._call("POST", "/auth/nonce", NonceResponse, json={"address": address})

    async def sign_in(self, message: str, signature: str) -> SessionToken:
        session = await self._call(
            "POST", "/auth/sign-in", SessionToken, json={"message": message, "signature": signature}
        )
        self.token = session.token
        return session

    async def register(self, registration: ProviderRegistration) -> ProviderView:
        return await self._call("PUT", "/provider", ProviderView, json=registration.model_dump(mode="json"))

    async def change_payout(self, change: PayoutChange) -> ProviderView:
        return await self._call("PUT", "/provider/payout", ProviderView, json=change.model_dump(mode="json"))

    async def offer(self, offer: Offer) -> ProviderView:
        return await self._call("PUT", "/provider/offer", ProviderView, json=offer.model_dump(mode="json"))

    async def work(self, wait_s: float) -> WorkResponse:
        return await self._call("GET", "/provider/work", WorkResponse, params={"wait_s": wait_s}, timeout=wait_s + 30.0)

    async def heartbeat(self, lease_id: str, beat: Heartbeat) -> HeartbeatAck:
        return await self._call(
            "POST", f"/provider/leases/{lease_id}/heartbeat", HeartbeatAck, json=beat.model_dump(mode="json")
        )

    async def upload(self, lease_id: str, path: str, source: Path) -> None:
        """Send one output file (streamed from disk)."""

        async def chunks() -> Any:
            with source.open("rb") as handle:
                while chunk := handle.read(_UPLOAD_CHUNK):
                    yield chunk

        await self._call("PUT", f"/provider/leases/{lease_id}/outputs/{path}", OutputFile, content=chunks())

    async def report(self, signed: SignedResultReport) -> ReportAck:
        lease_id = signed.report.lease_id
        return await self._call(
            "POST", f"/provider/leases/{lease_id}/report", ReportAck, json=signed.model_dump(mode="json")
        )

    async def lease(self, lease_id: str) -> ProviderLeaseView:
        """One of this provider's leases: what it earned and the cumulative total of the vouchers that cover it."""
        return await self._call("GET", f"/provider/leases/{lease_id}", ProviderLeaseView)

    async def prices(self) -> MarketPrices:
        """What the marketplace's queued jobs pay at best now."""
        return await self._call("GET", "/provider/prices", MarketPrices)

    async def claim_relay(self) -> RelayAck:
        """Ask the operator to relay the claim of this provider's latest voucher (it pays the gas)."""
        return await self._call("POST", "/provider/claim-relay", RelayAck)

    async def join_group(self, code: str) -> Membership:
        """Join the studio group whose enrolment code this is (this machine leaves any other group)."""
        return await self._call("POST", "/provider/group", Membership, json=JoinRequest(code=code).model_dump())

    async def leave_group(self) -> FleetDirective:
        return await self._call("DELETE", "/provider/group", FleetDirective)

    async def fleet_report(self, report: FleetReport) -> FleetDirective:
        """Tell the studio this machine's state; the answer carries the group's policy and the operator's requests."""
        return await self._call("PUT", "/provider/fleet", FleetDirective, json=report.model_dump(mode="json"))

    async def voucher(self) -> Voucher | None:
        try:
            return await self._call("GET", "/provider/voucher", Voucher)
        except MarketRefused as exc:
            if exc.status == 404:
                return None
            raise


async def _read_capped(answer: httpx.Response) -> bytes:
    declared = answer.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise MarketResponseError(f"the marketplace's answer is {int(declared)} bytes, more than this agent reads")
    body = bytearray()
    async for chunk in answer.aiter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise MarketResponseError(
                f"the marketplace's answer is larger than {MAX_RESPONSE_BYTES} bytes, more than this agent reads"
            )
    return bytes(body)


def _detail(body: bytes) -> str:
    import json

    try:
        detail = json.loads(body).get("detail", "")
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, nested past the parser's depth
        detail = ""
    text = detail if isinstance(detail, str) else json.dumps(detail)[:300]
    return text[:300] or "no reason given"
