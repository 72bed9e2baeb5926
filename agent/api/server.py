"""The control API's routes: a thin HTTP layer over the agent's controller.

Every response is JSON; every error is ``{"message": ..., "problems": [...]}`` without a
traceback (the traceback goes to the log file, with secrets masked).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import sparecycles
from sparecycles.agent.api.auth import TokenAuthMiddleware
from sparecycles.agent.api.benchmark_routes import add_benchmark_routes
from sparecycles.agent.api.fleet_routes import add_fleet_routes
from sparecycles.agent.api.ledger_routes import LedgerApi, add_ledger_routes
from sparecycles.agent.api.wallet_routes import add_wallet_routes
from sparecycles.agent.benchmark.control import BenchmarkControl
from sparecycles.agent.controller import SimulationUnavailable, UnknownGpu
from sparecycles.agent.fleet.service import FleetService
from sparecycles.agent.wallet.control import WalletControl
from sparecycles.config import ConfigError, Settings
from sparecycles.control.models import (
    MAX_SNOOZE_SECONDS,
    AgentEvent,
    ErrorBody,
    JobAccepted,
    JobList,
    JobSubmission,
    SettingsPatch,
    SnoozeRequest,
    StatusDocument,
)
from sparecycles.protocol.job_refusal import JobRefused

log = logging.getLogger(__name__)


def _snooze_seconds(request: SnoozeRequest) -> int:
    seconds = request.seconds_from(datetime.now(UTC))
    if not 60 <= seconds <= MAX_SNOOZE_SECONDS:
        raise StarletteHTTPException(422, "Snooze until a time between one minute and seven days from now.")
    return seconds


class ControlService(Protocol):
    """What the API needs from the agent; the real one is :class:`AgentController`."""

    def status(self) -> StatusDocument: ...
    def pause(self, gpu: int | None = None) -> StatusDocument: ...
    def resume(self, gpu: int | None = None) -> StatusDocument: ...
    def snooze(self, duration_seconds: int, gpu: int | None = None) -> StatusDocument: ...
    def settings(self) -> Settings: ...
    def update_settings(self, changes: dict[str, dict[str, Any]]) -> Settings: ...
    def request_shutdown(self) -> None: ...
    def subscribe(self) -> AsyncIterator[AgentEvent]: ...
    def simulated_gpus(self) -> dict[str, Any]: ...
    def submit_job(self, spec: dict[str, Any]) -> str: ...
    def jobs(self) -> list[dict[str, Any]]: ...
    def script_simulated_gpu(self, index: int, changes: dict[str, Any]) -> dict[str, Any]: ...


def _error(status_code: int, message: str, problems: list[str] | None = None) -> JSONResponse:
    body = ErrorBody(message=message, problems=problems or [])
    return JSONResponse(body.model_dump(), status_code=status_code)


def create_app(
    service: ControlService,
    token: str,
    *,
    ledger: LedgerApi | None = None,
    ledger_problem: str | None = None,
    wallets: WalletControl | None = None,
    benchmarks: BenchmarkControl | None = None,
    fleet: FleetService | None = None,
) -> FastAPI:
    app = FastAPI(
        title="SpareCycles agent control API",
        version=sparecycles.__version__,
        description="Loopback-only API of the SpareCycles agent. Every request needs "
        "`Authorization: Bearer <token>`, the token being in the agent's lock file.",
        docs_url=None,
        redoc_url=None,
        responses={401: {"description": "Missing or wrong token"}},
    )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(422, "The request is not valid.", problems)

    @app.exception_handler(ConfigError)
    async def _config_error(_request: Request, exc: ConfigError) -> JSONResponse:
        return _error(409, str(exc), list(exc.problems))

    @app.exception_handler(SimulationUnavailable)
    async def _no_simulation(_request: Request, exc: SimulationUnavailable) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(UnknownGpu)
    async def _unknown_gpu(_request: Request, exc: UnknownGpu) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(JobRefused)
    async def _job_refused(_request: Request, exc: JobRefused) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.error("Unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "The agent hit an internal error; details are in its log file.")

    # Routes are async on purpose: they run on the agent's event loop, never in a worker
    # thread, so the controller and the event bus need no locking.
    @app.get("/v1/status", response_model=StatusDocument)
    async def get_status() -> StatusDocument:
        return service.status()

    @app.post("/v1/pause", response_model=StatusDocument)
    async def pause() -> StatusDocument:
        return service.pause()

    @app.post("/v1/resume", response_model=StatusDocument)
    async def resume() -> StatusDocument:
        return service.resume()

    @app.post("/v1/snooze", response_model=StatusDocument)
    async def snooze(request: SnoozeRequest) -> StatusDocument:
        return service.snooze(_snooze_seconds(request))

    # One GPU alone: the owner keeps the card a game runs on and lends the other.
    @app.post("/v1/gpus/{index}/pause", response_model=StatusDocument, responses={404: {"model": ErrorBody}})
    async def pause_gpu(index: int) -> StatusDocument:
        return service.pause(gpu=index)

    @app.post("/v1/gpus/{index}/resume", response_model=StatusDocument, responses={404: {"model": ErrorBody}})
    async def resume_gpu(index: int) -> StatusDocument:
        return service.resume(gpu=index)

    @app.post("/v1/gpus/{index}/snooze", response_model=StatusDocument, responses={404: {"model": ErrorBody}})
    async def snooze_gpu(index: int, request: SnoozeRequest) -> StatusDocument:
        return service.snooze(_snooze_seconds(request), gpu=index)

    @app.get("/v1/settings", response_model=Settings)
    async def get_settings() -> Settings:
        return service.settings()

    @app.patch("/v1/settings", response_model=Settings, responses={409: {"model": ErrorBody}})
    async def patch_settings(patch: SettingsPatch) -> Settings:
        return service.update_settings(patch.changes)

    @app.post("/v1/shutdown", status_code=202)
    async def shutdown() -> dict[str, str]:
        service.request_shutdown()
        return {"message": "The agent is shutting down."}

    @app.post("/v1/jobs", response_model=JobAccepted, status_code=202, responses={422: {"model": ErrorBody}})
    async def submit_job(submission: JobSubmission) -> JobAccepted:
        """Run a job spec on this machine (checked first: a refusal says why, and nothing is pulled)."""
        return JobAccepted(job_id=service.submit_job(submission.spec))

    @app.get("/v1/jobs", response_model=JobList)
    async def list_jobs() -> JobList:
        return JobList(jobs=service.jobs())

    @app.get("/v1/simulation/gpus", tags=["simulation"])
    async def get_simulated_gpus() -> dict[str, Any]:
        """The simulated GPUs' scripted state (only with `sparecycles agent --simulated-gpus N`)."""
        return service.simulated_gpus()

    @app.patch("/v1/simulation/gpus/{index}", tags=["simulation"])
    async def script_simulated_gpu(index: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Script what simulated GPU ``index`` reports: utilization, temperature, power, foreign processes."""
        try:
            return service.script_simulated_gpu(index, changes)
        except IndexError as exc:
            raise StarletteHTTPException(404, str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise StarletteHTTPException(422, str(exc)) from None

    @app.get("/v1/events", response_class=EventSourceResponse)
    async def events() -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, str]]:
            async for event in service.subscribe():
                yield {"event": event.type.value, "data": event.model_dump_json()}

        return EventSourceResponse(stream(), ping=15)

    add_ledger_routes(app, ledger, ledger_problem)
    add_wallet_routes(app, wallets)
    add_benchmark_routes(app, benchmarks)
    add_fleet_routes(app, fleet)
    app.add_middleware(TokenAuthMiddleware, token=token)
    return app
