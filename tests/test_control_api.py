"""The control API's security defaults, checked against a real agent process."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from sparecycles.agent.api.server import create_app
from sparecycles.config import Settings
from sparecycles.control.client import ControlClient
from sparecycles.control.endpoint import AgentEndpoint
from sparecycles.control.models import AgentEvent, EventType, StatusDocument
from tests.conftest import RunningAgent, start_agent


@pytest.fixture(scope="module")
def shared_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    """One agent for the tests that only look at it (requests refused, documents read, its files and sockets):
    starting and stopping an agent takes seconds. A test that changes the agent (pauses it, changes or tries to
    change its settings, stops it) has an agent of its own (the ``agent`` fixture)."""
    home = tmp_path_factory.mktemp("control-api") / "home"
    home.mkdir()
    running = start_agent(home)
    yield running
    running.stop()


def test_request_without_token_is_401_with_no_detail(shared_agent: RunningAgent) -> None:
    response = httpx.get(f"{shared_agent.url}/v1/status")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


WRONG_HEADERS = {
    "another token": lambda token: "Bearer wrong-token-of-plausible-length-0123456789abcdef",
    "empty token": lambda token: "Bearer",
    "other scheme": lambda token: "Basic dXNlcjpwYXNz",
    "one character more": lambda token: f"Bearer {token}x",
    "one character less": lambda token: f"Bearer {token[:-1]}",
    "no scheme": lambda token: token,
}


@pytest.mark.parametrize("case", WRONG_HEADERS)
def test_request_with_a_wrong_token_is_401(shared_agent: RunningAgent, case: str) -> None:
    assert shared_agent.endpoint.token is not None
    header = WRONG_HEADERS[case](shared_agent.endpoint.token)
    response = httpx.get(f"{shared_agent.url}/v1/status", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


def test_right_token_in_the_header_is_200(shared_agent: RunningAgent) -> None:
    response = httpx.get(f"{shared_agent.url}/v1/status", headers=shared_agent.auth)
    assert response.status_code == 200
    StatusDocument.model_validate(response.json())


def test_token_in_the_url_is_never_accepted(shared_agent: RunningAgent) -> None:
    token = shared_agent.endpoint.token
    for query in (f"token={token}", f"access_token={token}", f"api_key={token}"):
        assert httpx.get(f"{shared_agent.url}/v1/status?{query}").status_code == 401


def test_every_route_needs_the_token_including_the_openapi_document(shared_agent: RunningAgent) -> None:
    for path in ("/openapi.json", "/v1/settings", "/v1/events", "/nonexistent"):
        assert httpx.get(f"{shared_agent.url}{path}").status_code == 401
    assert httpx.post(f"{shared_agent.url}/v1/shutdown").status_code == 401
    assert shared_agent.process.poll() is None
    document = httpx.get(f"{shared_agent.url}/openapi.json", headers=shared_agent.auth).json()
    assert "/v1/status" in document["paths"]


def test_lock_file_with_port_and_token_is_readable_only_by_the_user(shared_agent: RunningAgent) -> None:
    mode = stat.S_IMODE(shared_agent.paths.agent_lock_file.stat().st_mode)
    assert mode == 0o600
    assert shared_agent.endpoint.token is not None
    assert len(shared_agent.endpoint.token) >= 43  # 32 random bytes, URL-safe base64


def test_control_api_listens_on_loopback_only(shared_agent: RunningAgent) -> None:
    listening = [
        conn.laddr
        for conn in psutil.Process(shared_agent.process.pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert listening, "the agent listens on nothing"
    assert all(address.ip == "127.0.0.1" for address in listening), listening
    assert shared_agent.endpoint.port in {address.port for address in listening}
    other_addresses = [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]
    for address in other_addresses:  # this machine's own, non-loopback addresses
        with (
            pytest.raises((ConnectionRefusedError, TimeoutError)),
            socket.create_connection((address, shared_agent.endpoint.port), timeout=1),
        ):
            pass


def test_token_never_appears_in_the_log_file(agent: RunningAgent) -> None:
    token = agent.endpoint.token
    assert token is not None
    with ControlClient(agent.endpoint) as client:
        client.status()
        client.pause()
        client.resume()
        client.update_settings({"general": {"log_level": "debug"}})
        client.status()
    httpx.get(f"{agent.url}/v1/status?token={token}")
    httpx.get(f"{agent.url}/v1/status", headers={"Authorization": "Bearer nope"})
    agent.stop()
    log_text = "".join(p.read_text() for p in agent.paths.log_dir.glob("*.log*"))
    assert "Control API listening" in log_text  # the log was written at all
    assert "Settings changed: general.log_level" in log_text
    assert token not in log_text
    assert token not in agent.console


def test_event_stream_pushes_status_changes(agent: RunningAgent) -> None:
    received: list[AgentEvent] = []
    with ControlClient(agent.endpoint) as client, ControlClient(agent.endpoint) as commander:

        def listen() -> None:
            for event in client.events():
                received.append(event)
                if event.type is EventType.STATUS_CHANGED and event.data.get("state") == "paused":
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        for _ in range(100):  # until the subscription is in place
            commander.pause()
            listener.join(timeout=0.1)
            if not listener.is_alive():
                break
            commander.resume()
    assert not listener.is_alive()
    assert received[-1].data["state"] == "paused"
    StatusDocument.model_validate(received[-1].data)


def test_settings_change_through_the_api_takes_effect_and_is_written_back(agent: RunningAgent) -> None:
    with ControlClient(agent.endpoint) as client:
        result = client.update_settings({"work": {"idle_threshold": "5m"}})
        assert result["work"]["idle_threshold"] == "5m"
        assert client.settings()["work"]["idle_threshold"] == "5m"
    text = agent.paths.config_file.read_text()
    assert 'idle_threshold = "5m"' in text


def test_invalid_settings_change_is_refused_with_the_key_named(agent: RunningAgent) -> None:
    response = httpx.patch(
        f"{agent.url}/v1/settings", headers=agent.auth, json={"changes": {"work": {"idle_threshold": "0s"}}}
    )
    assert response.status_code == 409
    body = response.json()
    assert "work.idle_threshold" in body["message"]
    assert not agent.paths.config_file.exists()


def test_malformed_request_gets_json_problems(shared_agent: RunningAgent) -> None:
    response = httpx.post(f"{shared_agent.url}/v1/snooze", headers=shared_agent.auth, json={"duration_seconds": "soon"})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "The request is not valid."
    assert any("duration_seconds" in problem for problem in body["problems"])


class _BrokenService:
    """A control service whose status blows up, to exercise the unhandled-error path."""

    def status(self) -> StatusDocument:
        raise RuntimeError("sensor exploded at /secret/path line 42")

    def pause(self, gpu: int | None = None) -> StatusDocument:
        raise NotImplementedError

    resume = pause

    def snooze(self, duration_seconds: int, gpu: int | None = None) -> StatusDocument:
        raise NotImplementedError

    def settings(self) -> Settings:
        return Settings()

    def update_settings(self, changes: dict[str, dict[str, Any]]) -> Settings:
        raise NotImplementedError

    def request_shutdown(self) -> None:
        raise NotImplementedError

    async def subscribe(self) -> AsyncIterator[AgentEvent]:
        return
        yield


def test_unhandled_error_returns_json_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    token = "t" * 43
    transport = httpx.ASGITransport(app=create_app(_BrokenService(), token), raise_app_exceptions=False)

    async def get_status() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get("/v1/status", headers={"Authorization": f"Bearer {token}"})

    response = asyncio.run(get_status())
    assert response.status_code == 500
    body = response.json()
    assert body == {"message": "The agent hit an internal error; details are in its log file.", "problems": []}
    text = response.text
    assert "Traceback" not in text
    assert "exploded" not in text
    assert "RuntimeError" in caplog.text  # the details went to the log instead


def test_openapi_document_in_docs_matches_the_api(shared_agent: RunningAgent) -> None:
    served = httpx.get(f"{shared_agent.url}/openapi.json", headers=shared_agent.auth).json()
    committed = json.loads((Path(__file__).parent.parent / "docs" / "control-api.openapi.json").read_text())
    assert served == committed, "docs/control-api.openapi.json is stale: run `make docs`"


def test_a_control_client_loads_no_certificate_authorities(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback API is plain HTTP: a client per call (as the desktop app makes them) must not load the CA
    bundle each time, about 630 kB of native memory that lingers until Python's full garbage collection."""
    loaded: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def load_verify_locations(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", load_verify_locations)
    endpoint = AgentEndpoint(pid=1, version="0", port=9, token="t")
    for _ in range(3):
        ControlClient(endpoint).close()
    assert loaded == []
    with httpx.Client(trust_env=False):  # and the check does see a default client load the bundle
        assert loaded
