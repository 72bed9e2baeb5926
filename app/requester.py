"""The requester's side of the marketplace protocol, for the CLI: submit jobs, follow them, fetch results.

With no marketplace named, it talks to the owner's private marketplace, which the agent runs and
describes in ``state/market/endpoint.json`` (its URL and the owner's API key, readable only by the
owner). A job file is TOML (or JSON): the submission's terms at the top, the job spec under ``[spec]``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from sparecycles.paths import AppPaths
from sparecycles.protocol.market import API_PREFIX, JobSubmission, JobView, RequesterView


class RequesterError(Exception):
    """A requester command cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class MarketEndpoint:
    url: str
    api_key: str


def private_endpoint(paths: AppPaths) -> MarketEndpoint:
    """The private marketplace the local agent runs (it must be running, or have run once)."""
    file = paths.state_dir / "market" / "endpoint.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return MarketEndpoint(str(data["url"]), str(data["requester_key"]))
    except FileNotFoundError:
        raise RequesterError(
            "no private marketplace here yet: start the agent (`sparecycles agent`), "
            "or name a marketplace with --market URL --api-key KEY"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise RequesterError(f"{file} cannot be read ({exc}); restart the agent to write it again") from None


def load_submission(path: Path) -> JobSubmission:
    """A job file: TOML (terms at the top, the spec under [spec]) or the same as JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequesterError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RequesterError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    try:
        return JobSubmission.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise RequesterError(f"{path}: {where}: {first['msg']}") from None


class RequesterClient:
    def __init__(self, endpoint: MarketEndpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(
            base_url=endpoint.url.rstrip("/") + API_PREFIX,
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
            timeout=30,
            transport=transport,
        )

    def __enter__(self) -> RequesterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise RequesterError(f"the marketplace at {self._http.base_url} is not reachable: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise RequesterError(f"the marketplace refused ({response.status_code}): {str(detail)[:300]}")
        return response

    def submit(self, submission: JobSubmission) -> JobView:
        return JobView.model_validate(self._call("POST", "/jobs", json=submission.model_dump(mode="json")).json())

    def jobs(self) -> list[JobView]:
        return [JobView.model_validate(item) for item in self._call("GET", "/jobs").json()]

    def job(self, job_id: str) -> JobView:
        return JobView.model_validate(self._call("GET", f"/jobs/{job_id}").json())

    def cancel(self, job_id: str) -> JobView:
        return JobView.model_validate(self._call("POST", f"/jobs/{job_id}/cancel").json())

    def account(self) -> RequesterView:
        return RequesterView.model_validate(self._call("GET", "/requester").json())

    def download(self, job_id: str, dest: Path) -> list[Path]:
        """Every output of a completed job into ``dest``, each checked against its SHA-256."""
        import hashlib

        view = self.job(job_id)
        if view.state != "completed":
            raise RequesterError(f"job {job_id} is {view.state.value}: {view.reason}")
        written = []
        for output in view.outputs:
            target = dest / output.path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with self._http.stream("GET", f"/jobs/{job_id}/outputs/{output.path}") as response:
                if response.status_code != 200:
                    raise RequesterError(f"downloading {output.path} failed ({response.status_code})")
                partial = target.with_name(target.name + ".part")
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        digest.update(chunk)
                        handle.write(chunk)
            if digest.hexdigest() != output.sha256:
                partial.unlink(missing_ok=True)
                raise RequesterError(f"{output.path} does not match its SHA-256; it was not kept")
            partial.replace(target)
            written.append(target)
        return written
