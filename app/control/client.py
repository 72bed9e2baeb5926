"""Client of the agent's local control API, used by the CLI, the GUI and the tests."""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from sparecycles.control.benchmark import BenchmarkList, RunBenchmark
from sparecycles.control.endpoint import AgentEndpoint, EndpointFileError, pid_alive, read_endpoint
from sparecycles.control.errors import AgentNotAnswering, AgentRequestError, AgentUnavailable
from sparecycles.control.ledger import (
    EarningsSummary,
    LedgerExport,
    LedgerSettingsView,
    PayoutList,
    TodayFigure,
)
from sparecycles.control.models import (
    TOKEN_HEADER,
    TOKEN_SCHEME,
    AgentEvent,
    FleetStatus,
    JobAccepted,
    JobList,
    SettingsPatch,
    SnoozeRequest,
    StatusDocument,
)

NOT_RUNNING = "No SpareCycles agent is running. Start it with `sparecycles agent`."
# The agent's event stream sends a ping every 15 s (agent/api/server.py) besides its events: a stream silent
# for three pings is an agent that hangs, and the follower is told so (the stream ends) rather than waiting forever.
EVENTS_READ_TIMEOUT_S = 45.0


@functools.cache
def _no_certificates() -> ssl.SSLContext:
    """One TLS context with no certificate authorities, for every client of the plain-HTTP loopback API.

    httpx otherwise loads the whole CA bundle into a new context for each client, about 630 kB of native
    memory. The desktop app makes a client per call, and a closed client lingers until Python's full garbage
    collection, so its memory saw-toothed by about 5 MB (docs/benchmarks.md, "Desktop app"). This context never
    carries a request (the URL is http://); were one ever sent over TLS with it, verification would fail.
    """
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class ControlClient:
    """Talks to one running agent. Build it with :meth:`from_lock_file` or from an endpoint."""

    def __init__(self, endpoint: AgentEndpoint, *, timeout: float = 5.0) -> None:
        if endpoint.port is None or not endpoint.token:
            raise AgentUnavailable("The SpareCycles agent is still starting; try again in a moment.")
        self.endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.base_url,
            headers={TOKEN_HEADER: f"{TOKEN_SCHEME} {endpoint.token}"},
            timeout=timeout,
            trust_env=False,  # loopback only: never route through a proxy from the environment
            verify=_no_certificates(),
        )

    @classmethod
    def from_lock_file(cls, path: Path, *, timeout: float = 5.0) -> ControlClient:
        try:
            endpoint = read_endpoint(path)
        except EndpointFileError as exc:
            raise AgentUnavailable(f"{exc} {NOT_RUNNING}") from None
        if endpoint is None:
            raise AgentUnavailable(NOT_RUNNING)
        if not pid_alive(endpoint.pid):
            # A lock left by a killed agent names a port any local program may have bound since: the token (and
            # whatever the call carries, a wallet key being imported) must not go there.
            raise AgentUnavailable(f"The agent that wrote {path} (pid {endpoint.pid}) is gone. {NOT_RUNNING}")
        return cls(endpoint, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; ``params`` become the query string, those that are None left out; ``timeout`` replaces
        the client's for a request known to take long (a claim waits for its transaction to be mined)."""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = self._http.request(method, path, json=body, params=query or None, **extra)
        except httpx.TimeoutException:
            raise AgentNotAnswering(
                f"The SpareCycles agent (pid {self.endpoint.pid}) runs but did not answer in time: it may be busy "
                f"or stuck. If it stays so, stop it (`kill {self.endpoint.pid}`) and start it again with "
                "`sparecycles agent`."
            ) from None
        except httpx.TransportError:
            raise AgentUnavailable(
                f"The SpareCycles agent (pid {self.endpoint.pid}) does not answer on port "
                f"{self.endpoint.port}. If it crashed, start it again with `sparecycles agent`."
            ) from None
        if response.status_code == 401:
            raise AgentRequestError(401, "The agent refused our API token; restart the agent.")
        if response.status_code >= 400:
            try:
                payload = response.json()
                message = str(payload.get("message", response.text))
                problems = [str(p) for p in payload.get("problems", [])]
            except (ValueError, AttributeError):
                message, problems = response.text or response.reason_phrase, []
            raise AgentRequestError(response.status_code, message, problems)
        return response.json() if response.content else None

    def status(self) -> StatusDocument:
        return StatusDocument.model_validate(self._request("GET", "/v1/status"))

    @staticmethod
    def _controls_path(action: str, gpu: int | None) -> str:
        return f"/v1/{action}" if gpu is None else f"/v1/gpus/{gpu}/{action}"

    def pause(self, gpu: int | None = None) -> StatusDocument:
        """Pause the machine, or only GPU number ``gpu``."""
        return StatusDocument.model_validate(self._request("POST", self._controls_path("pause", gpu)))

    def resume(self, gpu: int | None = None) -> StatusDocument:
        """Resume everything, or only GPU number ``gpu``."""
        return StatusDocument.model_validate(self._request("POST", self._controls_path("resume", gpu)))

    def snooze(
        self, duration_seconds: int | None = None, *, until: datetime | None = None, gpu: int | None = None
    ) -> StatusDocument:
        body = SnoozeRequest(duration_seconds=duration_seconds, until=until).model_dump(mode="json")
        return StatusDocument.model_validate(self._request("POST", self._controls_path("snooze", gpu), body))

    def settings(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/settings")
        return result

    def update_settings(self, changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("PATCH", "/v1/settings", SettingsPatch(changes=changes).model_dump())
        return result

    def simulated_gpus(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/simulation/gpus")
        return result

    def script_simulated_gpu(self, index: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Script a simulated GPU (agent started with --simulated-gpus): utilization, temperature..."""
        result: dict[str, Any] = self._request("PATCH", f"/v1/simulation/gpus/{index}", changes)
        return result

    def submit_job(self, spec: dict[str, Any]) -> str:
        """Run a job spec on this machine; a refusal raises AgentRequestError with the reason."""
        accepted = JobAccepted.model_validate(self._request("POST", "/v1/jobs", {"spec": spec}))
        return accepted.job_id

    def jobs(self) -> list[dict[str, Any]]:
        return JobList.model_validate(self._request("GET", "/v1/jobs")).jobs

    # -- the ledger ---------------------------------------------------------------------------------

    def earnings(self, since: date | None = None, until: date | None = None, by: str = "day") -> EarningsSummary:
        """Gross, power cost and net by hour, day, week, month or job (the agent's defaults: the last 30 days)."""
        params = {"since": _day(since), "until": _day(until), "by": by}
        return EarningsSummary.model_validate(self._request("GET", "/v1/earnings", params=params))

    def today(self) -> TodayFigure:
        return TodayFigure.model_validate(self._request("GET", "/v1/earnings/today"))

    def export(self, since: date | None = None, until: date | None = None) -> LedgerExport:
        """One row per lease started in the period."""
        params = {"since": _day(since), "until": _day(until)}
        return LedgerExport.model_validate(self._request("GET", "/v1/export", params=params))

    def benchmarks(self) -> BenchmarkList:
        """The latest good benchmark of each GPU."""
        return BenchmarkList.model_validate(self._request("GET", "/v1/benchmarks"))

    def run_benchmark(self, gpu: int | None, mode: str = "quick", *, timeout: float = 900.0) -> BenchmarkList:
        """Benchmark one GPU (None: all) and wait for the result (under a minute per GPU in quick mode)."""
        body = RunBenchmark.model_validate({"gpu": gpu, "mode": mode}).model_dump()
        return BenchmarkList.model_validate(self._request("POST", "/v1/benchmarks", body, timeout=timeout))

    def payouts(self) -> PayoutList:
        """Every payout the vault made to this machine's payout addresses (mined claims, relayed ones too)."""
        return PayoutList.model_validate(self._request("GET", "/v1/payouts"))

    def ledger(self) -> LedgerSettingsView:
        return LedgerSettingsView.model_validate(self._request("GET", "/v1/ledger"))

    def set_tariff(self, document: str) -> LedgerSettingsView:
        """Adopt a tariff file's text from now on; a bad one raises AgentRequestError (422) saying why."""
        return LedgerSettingsView.model_validate(self._request("PUT", "/v1/ledger/tariff", {"document": document}))

    def set_token_rate(self, per_token: Decimal, currency: str, decimals: int = 18) -> LedgerSettingsView:
        """What one whole token is worth to the user in ``currency`` (their own figure; nothing is looked up).

        The agent checks the figures; one it refuses raises AgentRequestError (422) saying which.
        """
        body = {"per_token": str(per_token), "currency": currency, "decimals": decimals}
        return LedgerSettingsView.model_validate(self._request("PUT", "/v1/ledger/rate", body))

    # -- the wallet (secrets go in request bodies only, never in a URL or an argument) ----------------------

    def wallet_call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """A wallet request under /v1/wallets; the answer's JSON (see sparecycles.control.wallet)."""
        return self._request(method, f"/v1/wallets{path}", body, timeout=timeout)

    def join_studio(self, url: str, code: str) -> FleetStatus:
        """Join a studio's group (the agent signs in there with the machine's identity key)."""
        joined = self._request("POST", "/v1/fleet/join", {"url": url, "code": code}, timeout=60)
        return FleetStatus.model_validate(joined)

    def leave_studio(self) -> str:
        return str(self._request("POST", "/v1/fleet/leave", timeout=60)["group"])

    def shutdown(self) -> None:
        self._request("POST", "/v1/shutdown")

    def events(self, *, read_timeout: float | None = None) -> Iterator[AgentEvent]:
        """Follow the event stream until the agent closes it (e.g. on shutdown), or until it stays silent for
        ``read_timeout`` seconds (default :data:`EVENTS_READ_TIMEOUT_S`): a hung agent ends the stream too."""
        from httpx_sse import connect_sse

        read = EVENTS_READ_TIMEOUT_S if read_timeout is None else read_timeout
        try:
            with connect_sse(self._http, "GET", "/v1/events", timeout=httpx.Timeout(5.0, read=read)) as source:
                for message in source.iter_sse():
                    if message.data:
                        yield AgentEvent.model_validate(json.loads(message.data))
        except httpx.TransportError:
            return


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
