"""The reference marketplace's HTTP API, protocol v1, over :class:`Marketplace`.

Providers authenticate with the session token of their Sign-In with Ethereum (``scs_…``), requesters
with the API key the operator issued (``scr_…``), both as ``Authorization: Bearer``. Every error is a
:class:`Problem` (code and sentence), never a traceback; the OpenAPI document is served at
``/v1/openapi.json`` and published in docs/.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sparecycles import __version__
from sparecycles.agent.market_server.admin import MarketAdmin
from sparecycles.agent.market_server.db import POSTGRESQL_WORKER_THREADS, WORKER_THREADS
from sparecycles.agent.market_server.hot_routes import HotRequest, HotRoute, HotRoutes, wait_s_within
from sparecycles.agent.market_server.limits import (
    ApiLimits,
    BodySizeLimit,
    FailedAuthLimit,
    RateLimiter,
    retry_after_header,
)
from sparecycles.agent.market_server.market import (
    Conflict,
    MarketError,
    Marketplace,
    TooLarge,
    TooMany,
    Unauthorized,
)
from sparecycles.agent.market_server.wakeups import OFFERED_AGAIN_S, Told, Wakeups
from sparecycles.protocol.admin import (
    AuditEntry,
    BanRequest,
    CostRow,
    CreditRequest,
    DepositAddressRequest,
    NewApiKey,
    OperatorAck,
    OperatorJobView,
    ProjectQuotaRequest,
    ProjectQuotaView,
    ProviderSummary,
    QuotaRequest,
    RequesterAccount,
    RetentionResult,
)
from sparecycles.protocol.fleet import (
    GROUP_NAME,
    DrainRequest,
    EnrolCode,
    EnrolCodeRequest,
    FleetDirective,
    FleetMachine,
    FleetReport,
    GroupPolicy,
    GroupView,
    JoinRequest,
    Membership,
    PauseRequest,
    RequesterGroup,
)
from sparecycles.protocol.market import (
    API_PREFIX,
    Address,
    Heartbeat,
    HeartbeatAck,
    JobState,
    JobSubmission,
    JobView,
    MarketPrices,
    NonceRequest,
    NonceResponse,
    Offer,
    OutputFile,
    PayoutChange,
    Problem,
    ProviderLeaseView,
    ProviderRegistration,
    ProviderView,
    RelayAck,
    ReportAck,
    RequesterView,
    ServerInfo,
    SessionToken,
    SignedResultReport,
    SignInRequest,
    Voucher,
    WorkResponse,
)

if TYPE_CHECKING:
    from sparecycles.agent.market_server.vault_chain import ClaimRelayer

log = logging.getLogger(__name__)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_OUTPUT_PATH = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")
_SPOOL_BYTES = 8 * 1024 * 1024
MAX_WAIT_S = 30.0
RECHECK_S = 10.0  # a waiting long poll looks at the database at least this often
TICK_EVERY_S = 1.0
STANDING_BIDDERS = 64  # waiting providers a batch of auctions counts as bidders at their floors (_spare_bids)

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (400, "The request is not acceptable (the detail says why)."),
        (401, "Missing, unknown or expired credentials."),
        (403, "A signature does not hold."),
        (404, "No such thing for this caller."),
        (409, "It conflicts with the current state."),
        (413, "The request body is too large."),
        (429, "Too many requests, or too many queued jobs: retry after the Retry-After header's seconds."),
    )
}
_CREDIT = {402: {"model": Problem, "description": "Not enough credit for the job's maximum cost."}}
_UPLOADS = re.compile(rf"^{API_PREFIX}/provider/leases/[^/]+/outputs/")

_bearer = HTTPBearer(
    auto_error=False,
    description="A provider session token (scs_…), a requester API key (scr_…) or an operator's admin token (sco_…).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
JobId = Annotated[str, Path(pattern=ID_PATTERN)]
LeaseId = Annotated[str, Path(pattern=ID_PATTERN)]
RequesterName = Annotated[str, Path(min_length=1, max_length=64)]
GroupPathName = Annotated[str, Path(pattern=GROUP_NAME)]
ProjectName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$")]


@dataclass(frozen=True)
class _Limiters:
    provider: RateLimiter
    requester: RateLimiter
    sign_in: RateLimiter


def _market(request: Request) -> Marketplace:
    market: Marketplace = request.app.state.market
    return market


def _limit(limiter: RateLimiter, key: str, who: str) -> None:
    wait_s = limiter.wait_s(key)
    if wait_s > 0:
        raise TooMany(f"too many requests from this {who}: slow down and retry after the Retry-After seconds", wait_s)


def _limiters(request: Request) -> _Limiters:
    limiters: _Limiters = request.app.state.limiters
    return limiters


def _provider_address(market: Marketplace, limiters: _Limiters, token: str | None) -> str:
    """The signed-in provider's identity address, from its session token (within its request rate)."""
    if token is None or not token.startswith("scs_"):
        raise Unauthorized("sign in as a provider first (POST /v1/auth/nonce, then /v1/auth/sign-in)")
    address = market.provider_for_token(token)
    _limit(limiters.provider, address, "provider")
    return address


def _requester_id(market: Marketplace, limiters: _Limiters, token: str | None) -> str:
    """The requester's id, from the API key the operator issued (within its request rate)."""
    if token is None or not token.startswith("scr_"):
        raise Unauthorized("send the requester API key the operator issued, as a Bearer token")
    requester_id = market.requester_for_key(token)
    _limit(limiters.requester, requester_id, "API key")
    return requester_id


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


async def _provider(request: Request, credentials: Credentials) -> str:
    """Run on the event loop, as are the other credential checks: FastAPI runs a plain function dependency in its
    thread pool, a second hand-over per request, and a remembered credential is a dictionary lookup."""
    return _provider_address(_market(request), _limiters(request), _token(credentials))


async def _requester(request: Request, credentials: Credentials) -> str:
    return _requester_id(_market(request), _limiters(request), _token(credentials))


def _operator(request: Request, credentials: Credentials) -> str:
    """The admin token's name, as the audit log records the operator who acted."""
    if credentials is None or not credentials.credentials.startswith("sco_"):
        raise Unauthorized("send an operator's admin token (`sparecycles market admin-token NAME`) as a Bearer token")
    admin: MarketAdmin = request.app.state.admin
    return admin.actor_for_token(credentials.credentials)


async def _signing_in(request: Request) -> None:
    """Sign-in is open to anyone, so its rate is limited per client address."""
    client = request.client.host if request.client is not None else "unknown"
    _limit(_limiters(request).sign_in, client, "address")


ProviderAddress = Annotated[str, Depends(_provider)]
RequesterId = Annotated[str, Depends(_requester)]
OperatorActor = Annotated[str, Depends(_operator)]
SignInRate = Depends(_signing_in)


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(Problem(code=code, detail=detail[:500]).model_dump(), status_code=status)


def _refusal(exc: MarketError) -> Response:
    """The answer to a request the marketplace refused: a problem, with Retry-After for a limit that lifts."""
    response = _problem(exc.status, exc.code, exc.detail)
    if isinstance(exc, TooMany):
        response.headers["Retry-After"] = retry_after_header(exc.retry_after_s)
    return response


def _answer(model: BaseModel, status_code: int = 200) -> Response:
    """The model as its JSON. The busiest routes answer this way: the model was just built (and validated) by
    the marketplace, and FastAPI would validate it again against the route's response model."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


_T = TypeVar("_T")


class _Calls:
    """How the busiest routes (work, heartbeat, report, submit) and the ticking timer call the marketplace.

    On SQLite, on the event loop itself: its calls take a fraction of a millisecond of CPU, and its writers
    queue for one lock anyway. Handing each call to a worker thread and back cost more CPU than the call did
    (thread switches, threads contending for the GIL while one of them held the write lock), and a tick in
    a thread held the write lock through all its batches while every writer waited. There the tick runs one
    transaction at a time, and requests are answered between its steps. On PostgreSQL, in the thread pool:
    there a call waits on the network, and the loop must go on meanwhile."""

    def __init__(self, market: Marketplace, *, inline: bool) -> None:
        self._market = market
        self.inline = inline and not market.is_postgresql

    async def __call__(self, function: Callable[..., _T], *args: Any) -> _T:
        if self.inline:
            return function(*args)
        return await run_in_threadpool(function, *args)

    async def tick(self) -> None:
        if not self.inline:
            await run_in_threadpool(self._market.tick)
            return
        for _step in self._market.tick_steps():
            await asyncio.sleep(0)  # the requests that came meanwhile are answered before the next step


def _output_path(path: str) -> str:
    if len(path) > 1024 or not _OUTPUT_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise MarketError("an output path is relative, of letters, digits, '.', '_', '-' and '/', without '..'")
    return path


def create_app(  # noqa: PLR0915 - every route of the protocol, read in one place
    market: Marketplace,
    *,
    tick_every_s: float = TICK_EVERY_S,
    limits: ApiLimits | None = None,
    recheck_s: float = RECHECK_S,
    relayer: ClaimRelayer | None = None,
    inline: bool = True,
    hot_routes: bool = True,
) -> FastAPI:
    """The marketplace as an ASGI app; a background task ticks it (auctions close, leases expire). With a
    ``relayer`` (a payout vault and a gas key), providers may ask the operator to relay their claims.

    ``inline=False`` keeps every database call in worker threads, also on SQLite: for a marketplace served
    on an event loop that has other work to answer at once (the agent's own private one, whose loop pauses
    jobs when the owner comes back and must not wait for a SQLite commit or checkpoint).

    ``hot_routes`` answers the busiest routes below FastAPI's routing (hot_routes.py); without it every request
    goes through FastAPI, which is what they must answer like."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def ticking() -> None:
            while True:
                try:
                    await call.tick()
                except Exception:  # a bad tick must not stop the next one
                    log.exception("The marketplace tick failed")
                await asyncio.sleep(tick_every_s)

        loop = asyncio.get_running_loop()
        threads = POSTGRESQL_WORKER_THREADS if market.is_postgresql else WORKER_THREADS
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        market.on_leased = lambda addresses: loop.call_soon_threadsafe(wakeups.wake, addresses)
        market.standing = lambda: wakeups.idle(STANDING_BIDDERS)
        if market.is_postgresql:
            # Other server processes may close the auctions, and count only their own waiting providers as
            # standing bidders: those waiting here are woken to bid when jobs open and when a report frees room
            # (not when their bids lost: market.py says why). On SQLite this process is the only one (its data
            # folder's lock), so every waiting provider is a standing bidder of its auctions already, and waking
            # them to bid only cost polls (in the load benchmark, 187 -> 233 assignments/s without these wakes).
            market.on_open = lambda jobs: loop.call_soon_threadsafe(
                wakeups.want_bids, jobs * market.config.bidders_per_job, market.config.bids_per_poll
            )
            market.on_freed = lambda address: loop.call_soon_threadsafe(wakeups.wake, [address])
        market.studio_preemption = fleet.preempt_for_studio_jobs
        await run_in_threadpool(market.resume)
        task = asyncio.create_task(ticking())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(
        title="SpareCycles marketplace",
        version=__version__,
        description="Protocol v1 between GPU providers, requesters and a marketplace.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.exception_handler(MarketError)
    async def refused(_request: Request, exc: MarketError) -> Response:
        return _refusal(exc)

    @app.exception_handler(Exception)
    async def failed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unhandled error in the marketplace API")
        return _problem(500, "internal_error", "the marketplace failed to handle this request; see its log")

    limits = limits or ApiLimits()
    wakeups = Wakeups()
    # A long poll answers at once only with news. A lease the provider was told of and has not heartbeated
    # within one heartbeat interval is told again (the answer may have been lost), well before it expires.
    told = Told(again_after_s=min(OFFERED_AGAIN_S, market.config.heartbeat_interval_s))
    call = _Calls(market, inline=inline)
    app.state.release_polls = wakeups.release_all  # for a server stopping gracefully (the private one)
    app.state.market = market
    app.state.admin = admin = MarketAdmin(market)
    fleet = admin.fleet
    app.state.limiters = limiters = _Limiters(
        provider=RateLimiter(limits.provider),
        requester=RateLimiter(limits.requester),
        sign_in=RateLimiter(limits.sign_in),
    )

    # -- the busiest routes' handlers: answered below FastAPI's routing (hot_routes.py), and declared below too

    async def work_answer(address: str, wait_s: float) -> Response:
        """Bid on open jobs and collect new leases, waiting up to ``wait_s`` for one (long poll)."""
        deadline = time.monotonic() + wait_s
        answer: WorkResponse = await call(market.poll, address)
        while (
            not told.has_news(address, answer)
            and not wakeups.closing
            and (remaining := deadline - time.monotonic()) > 0
        ):
            # Sleep until this process leases it a job or has a new job it may bid on. Every ``recheck_s``
            # look (without bidding) for what another server process did meanwhile, and when what it was
            # told may be told again; at the deadline just answer: the provider's next poll looks anyway.
            if await wakeups.wait(address, min(recheck_s, remaining, told.again_in(address, answer))):
                answer = await call(market.poll, address)
            elif deadline - time.monotonic() > 0:
                answer = await call(market.deliveries, address)
        told.remember(address, answer)
        return _answer(answer)

    async def heartbeat_answer(address: str, lease_id: str, beat: Heartbeat) -> Response:
        return _answer(await call(market.heartbeat, address, lease_id, beat.run_time_ms))

    async def report_answer(address: str, lease_id: str, signed: SignedResultReport) -> Response:
        return _answer(await call(market.report, address, lease_id, signed))

    async def submit_answer(requester_id: str, submission: JobSubmission) -> Response:
        return _answer(await call(market.submit, requester_id, submission), status_code=201)

    def provider_of(request: HotRequest) -> str:
        return _provider_address(market, limiters, request.token)

    lease = {"lease_id": ID_PATTERN}
    hot = [
        HotRoute(
            "GET",
            f"{API_PREFIX}/provider/work",
            lambda r: work_answer(provider_of(r), float(r.query.get("wait_s", 0))),
            accepts=wait_s_within(MAX_WAIT_S),
        ),
        HotRoute(
            "POST",
            f"{API_PREFIX}/provider/leases/{{lease_id}}/heartbeat",
            lambda r: heartbeat_answer(provider_of(r), r.path["lease_id"], r.body),
            body=Heartbeat,
            params=lease,
        ),
        HotRoute(
            "POST",
            f"{API_PREFIX}/provider/leases/{{lease_id}}/report",
            lambda r: report_answer(provider_of(r), r.path["lease_id"], r.body),
            body=SignedResultReport,
            params=lease,
        ),
        HotRoute(
            "POST",
            f"{API_PREFIX}/jobs",
            lambda r: submit_answer(_requester_id(market, limiters, r.token), r.body),
            body=JobSubmission,
        ),
    ]
    if hot_routes:  # False: every request through FastAPI, the reference tests/market/test_hot_routes.py compares
        app.add_middleware(HotRoutes, routes=hot, problem=_refusal)  # inside the body size limit
    app.add_middleware(
        BodySizeLimit, max_bytes=limits.max_body_bytes, exempt=lambda path: _UPLOADS.match(path) is not None
    )
    app.add_middleware(FailedAuthLimit, limiter=RateLimiter(limits.failed_auth))  # outside: before any body is read

    def route(method: Callable[..., Any], path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        options.setdefault("responses", _PROBLEMS)
        return method(API_PREFIX + path, **options)  # type: ignore[no-any-return]

    @route(app.get, "/info", tags=["server"])
    def info() -> ServerInfo:
        return market.info()

    # -- sign-in ---------------------------------------------------------------------------------------

    @route(app.post, "/auth/nonce", tags=["sign-in"], dependencies=[SignInRate])
    def nonce(request: NonceRequest) -> NonceResponse:
        return market.issue_nonce(request.address)

    @route(app.post, "/auth/sign-in", tags=["sign-in"], dependencies=[SignInRate])
    def sign_in(request: SignInRequest) -> SessionToken:
        return market.sign_in(request.message, request.signature)

    # -- providers -------------------------------------------------------------------------------------

    @route(app.put, "/provider", tags=["providers"])
    def register(registration: ProviderRegistration, address: ProviderAddress) -> ProviderView:
        return market.register(address, registration)

    @route(app.put, "/provider/payout", tags=["providers"])
    def change_payout(change: PayoutChange, address: ProviderAddress) -> ProviderView:
        return market.change_payout(address, change)

    @route(app.put, "/provider/offer", tags=["providers"])
    def offer(offer: Offer, address: ProviderAddress) -> ProviderView:
        return market.set_offer(address, offer)

    @route(app.get, "/provider/work", tags=["providers"], response_model=WorkResponse)
    async def work(address: ProviderAddress, wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0) -> Response:
        """Bid on open jobs and collect new leases, waiting up to ``wait_s`` for one (long poll)."""
        return await work_answer(address, wait_s)

    @route(app.get, "/provider/leases/{lease_id}", tags=["providers"])
    def provider_lease(lease_id: LeaseId, address: ProviderAddress) -> ProviderLeaseView:
        """One of this provider's leases: what it earned, and the cumulative total a voucher must reach to cover it."""
        return market.provider_lease(address, lease_id)

    @route(app.post, "/provider/leases/{lease_id}/heartbeat", tags=["providers"], response_model=HeartbeatAck)
    async def heartbeat(lease_id: LeaseId, beat: Heartbeat, address: ProviderAddress) -> Response:
        return await heartbeat_answer(address, lease_id, beat)

    @route(
        app.put,
        "/provider/leases/{lease_id}/outputs/{path:path}",
        tags=["providers"],
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string"}}}}
        },
    )
    async def upload(lease_id: LeaseId, path: str, request: Request, address: ProviderAddress) -> OutputFile:
        """Upload one output file of the lease (before its report), checked against the job's output cap."""
        path = _output_path(path)
        limit = market.config.max_output_bytes
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge("the output is larger than this marketplace accepts")
                spool.write(chunk)
            spool.seek(0)
            return await run_in_threadpool(market.store_output, address, lease_id, path, spool)

    @route(app.post, "/provider/leases/{lease_id}/report", tags=["providers"], response_model=ReportAck)
    async def report(lease_id: LeaseId, signed: SignedResultReport, address: ProviderAddress) -> Response:
        return await report_answer(address, lease_id, signed)

    @route(app.get, "/provider/voucher", tags=["providers"])
    def voucher(address: ProviderAddress) -> Voucher:
        """The operator's voucher for this provider's payout address's cumulative earnings."""
        return market.latest_voucher(address)

    @route(app.post, "/provider/claim-relay", tags=["providers"])
    def claim_relay(address: ProviderAddress) -> RelayAck:
        """Ask the operator to send the claim of this provider's latest voucher to the payout vault, paying the
        gas (for a payout address without coin for gas). 409 where this marketplace does not relay claims."""
        if relayer is None:
            raise Conflict("this marketplace does not relay claims: claim from a wallet that holds coin for gas")
        asked = relayer.request(market.latest_voucher(address))
        return RelayAck(queued=asked.queued, owed_base_units=asked.owed, detail=asked.detail)

    @route(app.get, "/provider/prices", tags=["providers"])
    def prices(_address: ProviderAddress) -> MarketPrices:
        """What the queued jobs pay at best now, per GPU-hour and per core-hour (a few seconds old at most)."""
        return market.prices()

    # -- a studio's fleet ------------------------------------------------------------------------------

    @route(app.post, "/provider/group", tags=["fleet"])
    def join_group(request: JoinRequest, address: ProviderAddress) -> Membership:
        """Join the studio group of an enrolment code (leaving any other group here)."""
        return fleet.join(address, request.code)

    @route(app.delete, "/provider/group", tags=["fleet"])
    def leave_group(address: ProviderAddress) -> FleetDirective:
        return fleet.leave(address)

    @route(app.put, "/provider/fleet", tags=["fleet"])
    def fleet_report(report: FleetReport, address: ProviderAddress) -> FleetDirective:
        """A group member's state, every ``report_every_s``; the answer is its group's policy and the operator's
        requests (drain, pause until)."""
        return fleet.report(address, report)

    # -- requesters ------------------------------------------------------------------------------------

    @route(app.get, "/requester", tags=["requesters"])
    def account(requester_id: RequesterId) -> RequesterView:
        return market.requester(requester_id)

    @route(
        app.post, "/jobs", tags=["requesters"], status_code=201, responses=_PROBLEMS | _CREDIT, response_model=JobView
    )
    async def submit(submission: JobSubmission, requester_id: RequesterId) -> Response:
        return await submit_answer(requester_id, submission)

    @route(app.get, "/jobs", tags=["requesters"])
    def jobs(requester_id: RequesterId) -> list[JobView]:
        return market.jobs(requester_id)

    @route(app.get, "/jobs/{job_id}", tags=["requesters"])
    def job(job_id: JobId, requester_id: RequesterId) -> JobView:
        return market.job(requester_id, job_id)

    @route(app.post, "/jobs/{job_id}/cancel", tags=["requesters"])
    def cancel(job_id: JobId, requester_id: RequesterId) -> JobView:
        return market.cancel(requester_id, job_id)

    @route(
        app.get,
        "/jobs/{job_id}/outputs/{path:path}",
        tags=["requesters"],
        response_class=FileResponse,
        responses=_PROBLEMS | {200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
    )
    def output(job_id: JobId, path: str, requester_id: RequesterId) -> FileResponse:
        """One accepted output file of a completed job."""
        located = market.output_file(requester_id, job_id, _output_path(path))
        return FileResponse(located, media_type="application/octet-stream")

    _admin_routes(app, admin, route)
    return app


Route = Callable[..., Callable[[Callable[..., Any]], Any]]


def _admin_routes(app: FastAPI, admin: MarketAdmin, route: Route) -> None:
    """The operator's tools over HTTP (``/v1/admin``), each guarded by an admin token and audited by its name."""
    tags = ["admin"]

    @route(app.get, "/admin/providers", tags=tags)
    def providers(
        _actor: OperatorActor,
        online: bool | None = None,
        banned: bool | None = None,
        search: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[ProviderSummary]:
        return admin.providers(online=online, banned=banned, search=search, limit=limit)

    @route(app.post, "/admin/providers/{address}/ban", tags=tags)
    def ban(address: Address, request: BanRequest, actor: OperatorActor) -> OperatorAck:
        """Ban a provider: its unfinished leases are requeued unpaid and it cannot sign in."""
        withdrawn = admin.ban(address, request.reason, actor=actor)
        return OperatorAck(detail=f"banned {address}; {len(withdrawn)} lease(s) requeued")

    @route(app.post, "/admin/providers/{address}/unban", tags=tags)
    def unban(address: Address, actor: OperatorActor) -> OperatorAck:
        admin.unban(address, actor=actor)
        return OperatorAck(detail=f"unbanned {address}")

    @route(app.get, "/admin/jobs", tags=tags)
    def jobs(
        _actor: OperatorActor,
        state: JobState | None = None,
        requester: Annotated[str | None, Query(max_length=64)] = None,
        provider: Annotated[str | None, Query(max_length=42)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[OperatorJobView]:
        return admin.jobs(state=state, requester=requester, provider=provider, limit=limit)

    @route(app.post, "/admin/jobs/{job_id}/cancel", tags=tags)
    def cancel(job_id: JobId, actor: OperatorActor) -> JobView:
        """Cancel any job: running providers are paid their time, the rest of the held credit returns."""
        return admin.cancel_job(job_id, actor=actor)

    @route(app.get, "/admin/requesters/{name}", tags=tags)
    def requester(name: RequesterName, _actor: OperatorActor) -> RequesterAccount:
        return admin.account(name)

    @route(app.post, "/admin/requesters/{name}/credit", tags=tags)
    def credit(name: RequesterName, request: CreditRequest, actor: OperatorActor) -> RequesterAccount:
        admin.credit(name, request.amount_base_units, actor=actor)
        return admin.account(name)

    @route(app.post, "/admin/requesters/{name}/rotate-key", tags=tags)
    def rotate_key(name: RequesterName, actor: OperatorActor) -> NewApiKey:
        """A new API key for the requester (shown once); the old one stops working."""
        return NewApiKey(name=name, api_key=admin.rotate_key(name, actor=actor))

    @route(app.post, "/admin/requesters/{name}/revoke-key", tags=tags)
    def revoke_key(name: RequesterName, actor: OperatorActor) -> OperatorAck:
        admin.revoke_key(name, actor=actor)
        return OperatorAck(detail=f"the API key of {name} is revoked")

    @route(app.put, "/admin/requesters/{name}/deposit-address", tags=tags)
    def deposit_address(name: RequesterName, request: DepositAddressRequest, actor: OperatorActor) -> RequesterAccount:
        """Name the address whose deposits to the payout vault credit the requester (earlier ones included)."""
        return admin.set_deposit_address(name, request.deposit_address, actor=actor)

    @route(app.put, "/admin/requesters/{name}/quota", tags=tags)
    def quota(name: RequesterName, request: QuotaRequest, actor: OperatorActor) -> RequesterAccount:
        return admin.set_quota(name, request.storage_quota_bytes, actor=actor)

    @route(app.post, "/admin/retention", tags=tags)
    def retention(actor: OperatorActor, older_than_days: Annotated[float, Query(ge=0, le=36500)]) -> RetentionResult:
        """Delete the stored outputs of jobs that ended more than ``older_than_days`` ago."""
        files, freed = admin.delete_expired_outputs(older_than_days, actor=actor)
        return RetentionResult(files_deleted=files, bytes_freed=freed)

    @route(app.get, "/admin/fleet", tags=tags)
    def machines(
        _actor: OperatorActor, group: Annotated[str | None, Query(max_length=63)] = None
    ) -> list[FleetMachine]:
        """Every machine of a studio group (or of every group): state and reason, jobs, today's GPU-hours and
        energy, last seen (offline after ``provider_online_s`` without a word), agent version."""
        return admin.fleet.machines(group)

    @route(app.post, "/admin/fleet/{address}/drain", tags=tags)
    def drain(address: Address, request: DrainRequest, actor: OperatorActor) -> FleetMachine:
        """Drain a machine (it finishes its jobs and takes no new one), or end the drain."""
        return admin.fleet.drain(address, request.drain, actor=actor)

    @route(app.post, "/admin/fleet/{address}/pause", tags=tags)
    def pause(address: Address, request: PauseRequest, actor: OperatorActor) -> FleetMachine:
        """Pause a machine until a time (its jobs go back to the queue), or resume it (``until``: null)."""
        return admin.fleet.pause(address, request.until, actor=actor)

    @route(app.get, "/admin/groups", tags=tags)
    def groups(_actor: OperatorActor) -> list[GroupView]:
        return admin.fleet.groups()

    @route(app.put, "/admin/groups/{name}/policy", tags=tags)
    def group_policy(name: GroupPathName, policy: GroupPolicy, actor: OperatorActor) -> GroupView:
        """Set a group's policy (creating the group); its machines apply it at their next report."""
        return admin.fleet.set_policy(name, policy, actor=actor)

    @route(app.post, "/admin/groups/{name}/enrol-codes", tags=tags, status_code=201)
    def enrol_code(name: GroupPathName, request: EnrolCodeRequest, actor: OperatorActor) -> EnrolCode:
        """A code machines join the group with (`sparecycles join URL CODE`), shown once."""
        return admin.fleet.enrol_code(name, request.expires_s, actor=actor)

    @route(app.delete, "/admin/groups/{name}/enrol-codes", tags=tags)
    def revoke_enrol_codes(name: GroupPathName, actor: OperatorActor) -> OperatorAck:
        """End every enrolment code of the group that still works (a leaked one, say); its machines stay."""
        revoked = admin.fleet.revoke_enrol_codes(name, actor=actor)
        return OperatorAck(detail=f"{revoked} enrolment code(s) of group {name} revoked; machines that joined stay")

    @route(app.put, "/admin/requesters/{name}/group", tags=tags)
    def requester_group(name: RequesterName, request: RequesterGroup, actor: OperatorActor) -> OperatorAck:
        """Make a requester one of a studio's own (its jobs run on the group's machines, before outside work)."""
        admin.fleet.set_requester_group(name, request.group, actor=actor)
        return OperatorAck(
            detail=f"requester {name} is in group {request.group}"
            if request.group
            else f"requester {name} is in no group"
        )

    @route(app.put, "/admin/requesters/{name}/projects/{project}/quota", tags=tags)
    def project_quota(
        name: RequesterName, project: ProjectName, request: ProjectQuotaRequest, actor: OperatorActor
    ) -> ProjectQuotaView | None:
        """Cap what a requester may commit to one project's jobs (held and charged); ``null`` removes the cap.
        A submission past it gets 402, saying so."""
        return admin.set_project_quota(name, project, request.max_base_units, actor=actor)

    @route(app.get, "/admin/costs", tags=tags)
    def costs(
        _actor: OperatorActor,
        by: Annotated[str, Query(pattern="^(requester|project|requester-project)$")] = "requester",
        since: datetime | None = None,
    ) -> list[CostRow]:
        """What the jobs created since ``since`` cost, per requester, per project or per requester's project."""
        return admin.costs(by=by, since=since)

    @route(app.get, "/admin/audit", tags=tags)
    def audit(
        _actor: OperatorActor,
        after_id: Annotated[int, Query(ge=0)] = 0,
        action: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> list[AuditEntry]:
        """The audit log in order, after entry ``after_id``: page through it to export it all."""
        return admin.audit(after_id=after_id, action=action, limit=limit)
