"""A studio fleet on the control API: join a group with an enrolment code, and leave it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from sparecycles.agent.fleet.service import FleetError, FleetService
from sparecycles.control.models import ErrorBody, FleetStatus, JoinStudio, LeftStudio


def add_fleet_routes(app: FastAPI, fleet: FleetService | None) -> None:
    errors: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (409, 422, 503)}

    def service() -> FleetService:
        if fleet is None:
            raise StarletteHTTPException(503, "This agent does not take part in studio fleets.")
        return fleet

    @app.post("/v1/fleet/join", response_model=FleetStatus, tags=["fleet"], responses=errors)
    async def join(request: JoinStudio) -> FleetStatus:
        """Join a studio's group with the enrolment code its operator made, signing in with the machine's identity
        key; the group's policy applies at once, and the machine takes work from that marketplace."""
        try:
            await service().join(request.url, request.code)
        except FleetError as exc:
            raise StarletteHTTPException(409, str(exc)) from None
        status = service().status()
        assert status is not None  # noqa: S101 - just joined
        return status

    @app.post("/v1/fleet/leave", response_model=LeftStudio, tags=["fleet"], responses=errors)
    async def leave() -> LeftStudio:
        """Leave the studio group: the machine's own settings apply again."""
        try:
            return LeftStudio(group=await service().leave())
        except FleetError as exc:
            raise StarletteHTTPException(409, str(exc)) from None
