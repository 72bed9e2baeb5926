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


FRAME_START, FRAME_END = "{frame_start}", "{frame_end}"
MAX_CHUNKS = 1000


def _read_job_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequesterError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RequesterError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None


def _validated(path: Path, data: Any) -> JobSubmission:
    try:
        return JobSubmission.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise RequesterError(f"{path}: {where}: {first['msg']}") from None


def load_submission(path: Path) -> JobSubmission:
    """A job file: TOML (terms at the top, the spec under [spec]) or the same as JSON."""
    [submission] = load_submissions(path)
    return submission


def frame_chunks(frames: str, chunk: int) -> list[tuple[int, int]]:
    """A frame range ("1-240") cut into consecutive chunks of at most ``chunk`` frames: (first, last) each."""
    first_text, dash, last_text = frames.partition("-")
    if not dash or not first_text.strip().isdigit() or not last_text.strip().isdigit():
        raise RequesterError(f"--frames {frames!r} is not a frame range like 1-240")
    first, last = int(first_text), int(last_text)
    if last < first:
        raise RequesterError(f"--frames {frames!r} ends before it starts")
    if chunk < 1:
        raise RequesterError("--chunk is a number of frames, 1 or more")
    if (last - first) // chunk + 1 > MAX_CHUNKS:
        raise RequesterError(f"--frames {frames} in chunks of {chunk} makes more than {MAX_CHUNKS} jobs: larger chunks")
    return [(start, min(start + chunk - 1, last)) for start in range(first, last + 1, chunk)]


def _mentions(data: Any, placeholder: str) -> bool:
    if isinstance(data, str):
        return placeholder in data
    if isinstance(data, dict):
        return any(_mentions(value, placeholder) for value in data.values())
    if isinstance(data, list):
        return any(_mentions(value, placeholder) for value in data)
    return False


def _filled(data: Any, values: dict[str, str]) -> Any:
    if isinstance(data, str):
        for placeholder, value in values.items():
            data = data.replace(placeholder, value)
        return data
    if isinstance(data, dict):
        return {key: _filled(value, values) for key, value in data.items()}
    if isinstance(data, list):
        return [_filled(value, values) for value in data]
    return data


def load_submissions(path: Path, frames: str | None = None, chunk: int = 10) -> list[JobSubmission]:
    """The job file's submission; or, for a frame-range template (``{frame_start}`` and ``{frame_end}`` in it,
    examples/jobs/blender-frames.toml), one submission per chunk of ``frames``."""
    data = _read_job_file(path)
    templated = _mentions(data, FRAME_START) or _mentions(data, FRAME_END)
    if frames is None:
        if templated:
            raise RequesterError(f"{path} is a frame-range template: give --frames FIRST-LAST (and --chunk N)")
        return [_validated(path, data)]
    if not templated:
        raise RequesterError(f"--frames needs a job file with {FRAME_START} and {FRAME_END} in it; {path} has none")
    return [
        _validated(path, _filled(data, {FRAME_START: str(first), FRAME_END: str(last)}))
        for first, last in frame_chunks(frames, chunk)
    ]


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
