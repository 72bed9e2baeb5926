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
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from sparecycles import __version__
from sparecycles.agent.market_server.market import MarketError, Marketplace, TooLarge, Unauthorized
from sparecycles.protocol.market import (
    API_PREFIX,
    Heartbeat,
    HeartbeatAck,
    JobSubmission,
    JobView,
    NonceRequest,
    NonceResponse,
    Offer,
    OutputFile,
    PayoutChange,
    Problem,
    ProviderRegistration,
    ProviderView,
    ReportAck,
    RequesterView,
    ServerInfo,
    SessionToken,
    SignedResultReport,
    SignInRequest,
    Voucher,
    WorkResponse,
)

log = logging.getLogger(__name__)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_OUTPUT_PATH = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")
_SPOOL_BYTES = 8 * 1024 * 1024
MAX_WAIT_S = 30.0
_POLL_EVERY_S = 1.0
TICK_EVERY_S = 1.0

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (400, "The request is not acceptable (the detail says why)."),
        (401, "Missing, unknown or expired credentials."),
        (403, "A signature does not hold."),
        (404, "No such thing for this caller."),
        (409, "It conflicts with the current state."),
    )
}
_CREDIT = {402: {"model": Problem, "description": "Not enough credit for the job's maximum cost."}}
_TOO_LARGE = {413: {"model": Problem, "description": "Beyond the output cap."}}

_bearer = HTTPBearer(auto_error=False, description="A provider session token (scs_…) or a requester API key (scr_…).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
JobId = Annotated[str, Path(pattern=ID_PATTERN)]
LeaseId = Annotated[str, Path(pattern=ID_PATTERN)]


def _market(request: Request) -> Marketplace:
    market: Marketplace = request.app.state.market
    return market


def _provider(request: Request, credentials: Credentials) -> str:
    """The signed-in provider's identity address, from its session token."""
    if credentials is None or not credentials.credentials.startswith("scs_"):
        raise Unauthorized("sign in as a provider first (POST /v1/auth/nonce, then /v1/auth/sign-in)")
    return _market(request).provider_for_token(credentials.credentials)


def _requester(request: Request, credentials: Credentials) -> str:
    """The requester's id, from the API key the operator issued."""
    if credentials is None or not credentials.credentials.startswith("scr_"):
        raise Unauthorized("send the requester API key the operator issued, as a Bearer token")
    return _market(request).requester_for_key(credentials.credentials)


ProviderAddress = Annotated[str, Depends(_provider)]
RequesterId = Annotated[str, Depends(_requester)]


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(Problem(code=code, detail=detail[:500]).model_dump(), status_code=status)


def _output_path(path: str) -> str:
    if len(path) > 1024 or not _OUTPUT_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise MarketError("an output path is relative, of letters, digits, '.', '_', '-' and '/', without '..'")
    return path


def create_app(  # noqa: PLR0915 - every route of the protocol, read in one place
    market: Marketplace, *, tick_every_s: float = TICK_EVERY_S
) -> FastAPI:
    """The marketplace as an ASGI app; a background task ticks it (auctions close, leases expire)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def ticking() -> None:
            while True:
                try:
                    await run_in_threadpool(market.tick)
                except Exception:  # a bad tick must not stop the next one
                    log.exception("The marketplace tick failed")
                await asyncio.sleep(tick_every_s)

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
    async def refused(_request: Request, exc: MarketError) -> JSONResponse:
        return _problem(exc.status, exc.code, exc.detail)

    @app.exception_handler(Exception)
    async def failed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unhandled error in the marketplace API")
        return _problem(500, "internal_error", "the marketplace failed to handle this request; see its log")

    app.state.market = market

    def route(method: Callable[..., Any], path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        options.setdefault("responses", _PROBLEMS)
        return method(API_PREFIX + path, **options)  # type: ignore[no-any-return]

    @route(app.get, "/info", tags=["server"])
    def info() -> ServerInfo:
        return market.info()

    # -- sign-in ---------------------------------------------------------------------------------------

    @route(app.post, "/auth/nonce", tags=["sign-in"])
    def nonce(request: NonceRequest) -> NonceResponse:
        return market.issue_nonce(request.address)

    @route(app.post, "/auth/sign-in", tags=["sign-in"])
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

    @route(app.get, "/provider/work", tags=["providers"])
    async def work(
        address: ProviderAddress, wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0
    ) -> WorkResponse:
        """Bid on open jobs and collect new leases, waiting up to ``wait_s`` for one (long poll)."""
        deadline = time.monotonic() + wait_s
        while True:
            answer: WorkResponse = await run_in_threadpool(market.poll, address)
            if answer.leases or answer.cancelled or time.monotonic() >= deadline:
                return answer
            await asyncio.sleep(min(_POLL_EVERY_S, max(0.0, deadline - time.monotonic())))

    @route(app.post, "/provider/leases/{lease_id}/heartbeat", tags=["providers"])
    def heartbeat(lease_id: LeaseId, beat: Heartbeat, address: ProviderAddress) -> HeartbeatAck:
        return market.heartbeat(address, lease_id, beat.run_time_ms)

    @route(
        app.put,
        "/provider/leases/{lease_id}/outputs/{path:path}",
        tags=["providers"],
        responses=_PROBLEMS | _TOO_LARGE,
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

    @route(app.post, "/provider/leases/{lease_id}/report", tags=["providers"])
    def report(lease_id: LeaseId, signed: SignedResultReport, address: ProviderAddress) -> ReportAck:
        return market.report(address, lease_id, signed)

    @route(app.get, "/provider/voucher", tags=["providers"])
    def voucher(address: ProviderAddress) -> Voucher:
        """The operator's voucher for this provider's payout address's cumulative earnings."""
        return market.latest_voucher(address)

    # -- requesters ------------------------------------------------------------------------------------

    @route(app.get, "/requester", tags=["requesters"])
    def account(requester_id: RequesterId) -> RequesterView:
        return market.requester(requester_id)

    @route(app.post, "/jobs", tags=["requesters"], status_code=201, responses=_PROBLEMS | _CREDIT)
    def submit(submission: JobSubmission, requester_id: RequesterId) -> JobView:
        return market.submit(requester_id, submission)

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

    return app
