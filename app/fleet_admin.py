"""The studio operator's side of the admin API, for ``sparecycles fleet`` and the desktop app's Fleet page: see
every machine of the studio and act on one (drain, pause until, cancel a job). It holds an admin token
(``sco_…``), never the operator's signing key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from sparecycles.protocol.fleet import FleetMachine
from sparecycles.protocol.market import API_PREFIX, JobView

_MACHINES = TypeAdapter(list[FleetMachine])


class FleetAdminError(Exception):
    """The fleet cannot be read or acted on; the message says why and what to do."""


class FleetAdminClient:
    def __init__(self, url: str, token: str, *, timeout: float = 15.0) -> None:
        if not token.startswith("sco_"):
            raise FleetAdminError(
                "give an admin token (sco_…): `sparecycles market admin-token NAME` makes one on the marketplace's "
                "machine"
            )
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FleetAdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        try:
            answer = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise FleetAdminError(f"the marketplace at {self.url} is not reachable ({exc})") from None
        if answer.status_code == 401:
            raise FleetAdminError("the marketplace refused the admin token: it is unknown or revoked")
        if answer.status_code >= 400:
            try:
                detail = str(answer.json().get("detail", answer.text))
            except ValueError:
                detail = answer.text or answer.reason_phrase
            raise FleetAdminError(f"the marketplace refused ({answer.status_code}): {detail}")
        try:
            return answer.json()
        except ValueError:
            raise FleetAdminError(f"the marketplace's answer to {method} {path} is not JSON") from None

    def machines(self, group: str | None = None) -> list[FleetMachine]:
        found = self._call("GET", "/admin/fleet", params={"group": group} if group else None)
        try:
            return _MACHINES.validate_python(found)
        except ValidationError as exc:
            raise FleetAdminError(
                f"the marketplace's fleet does not match protocol v1 ({exc.error_count()} problem(s))"
            ) from None

    def drain(self, address: str, drain: bool = True) -> FleetMachine:
        return FleetMachine.model_validate(self._call("POST", f"/admin/fleet/{address}/drain", {"drain": drain}))

    def pause(self, address: str, until: datetime | None) -> FleetMachine:
        body = {"until": until.isoformat() if until is not None else None}
        return FleetMachine.model_validate(self._call("POST", f"/admin/fleet/{address}/pause", body))

    def cancel(self, job_id: str) -> JobView:
        return JobView.model_validate(self._call("POST", f"/admin/jobs/{job_id}/cancel"))
