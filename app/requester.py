"""The requester's side of the marketplace protocol, for the CLI: submit jobs, follow them, fetch results.

With no marketplace named, it talks to the owner's private marketplace, which the agent runs and
describes in ``state/market/endpoint.json`` (its URL and the owner's API key, readable only by the
owner). A job file is TOML (or JSON): the submission's terms at the top, the job spec under ``[spec]``.
"""

from __future__ import annotations

import contextlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from sparecycles.paths import AppPaths
from sparecycles.protocol.market import API_PREFIX, Identifier, JobSubmission, JobView, RequesterView


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
            "or name a marketplace with --market URL (its API key from SPARECYCLES_API_KEY, --api-key-file "
            "or the prompt)"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise RequesterError(f"{file} cannot be read ({exc}); restart the agent to write it again") from None


FRAME_START, FRAME_END = "{frame_start}", "{frame_end}"
MAX_CHUNKS = 1000
MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""The most of a marketplace's answer (decompressed) the client reads: a list of a requester's jobs is kilobytes,
and a marketplace (or whatever answers at its URL) that sends more must not take the requester's memory."""


def _read_job_file(path: Path) -> Any:
    """The job file's data; "utf-8-sig" reads a file that Windows Notepad saved with a byte-order mark, which TOML
    and JSON would refuse."""
    language = "JSON" if path.suffix == ".json" else "TOML"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RequesterError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RequesterError(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be read): save it as UTF-8 {language} and submit it "
            "again"
        ) from None
    try:
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RequesterError(f"{path} is not valid {language}: {exc}") from None
    except RecursionError:
        raise RequesterError(f"{path} is nested too deeply to be a job file (see examples/market-job.toml)") from None


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


T = TypeVar("T")

_CHECK_URL = "check the --market URL"


def _not_protocol(exc: ValidationError, content_type: str | None) -> str:
    """What is wrong with an answer, in a few words: not JSON at all (an HTML page: often a URL that names a web
    site rather than a marketplace), or the first field that does not fit."""
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return f"not JSON but {content_type or 'a body of no declared type'}"
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    return f"{where}: {first['msg']}"


def _refusal_detail(body: bytes) -> str:
    """The marketplace's reason for a refusal: its JSON ``detail`` when it sent one, else the start of the body."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    if detail is None:
        detail = body[:1000].decode("utf-8", "replace").strip() or "no reason given"
    return str(detail)[:300]


def _capped_body(response: httpx.Response, what: str) -> bytes:
    """The answer's body, read as it streams in, up to MAX_ANSWER_BYTES (decompressed: a small gzip answer may
    unpack to gigabytes); RequesterError past that."""
    declared = response.headers.get("content-length")
    too_large = RequesterError(
        f"the marketplace's answer to {what} is larger than {MAX_ANSWER_BYTES // 2**20} MiB, more than any answer "
        f"of protocol v1: {_CHECK_URL}"
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise too_large
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise too_large
    return bytes(body)


def _segment(job_id: str) -> str:
    """``job_id`` as a path segment, once it is one: a typo with a '/' or '?' in it must not reach another route."""
    try:
        return TypeAdapter(Identifier).validate_python(job_id)
    except ValidationError:
        raise RequesterError(
            f"{job_id!r} is not a job id (1-63 letters, digits, '.', '_' or '-'): `sparecycles jobs` lists yours"
        ) from None


def _discard(partial: Path) -> None:
    """Remove a half-downloaded file, if there is one; a folder that cannot even be written leaves none."""
    with contextlib.suppress(OSError):
        partial.unlink()


class RequesterClient:
    """The requester's calls of protocol v1; every failure, whatever the marketplace answers, is a RequesterError."""

    def __init__(self, endpoint: MarketEndpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        try:
            url = httpx.URL(endpoint.url)
        except httpx.InvalidURL as exc:
            raise RequesterError(
                f"the marketplace address {endpoint.url!r} is not a URL ({exc}): {_CHECK_URL}, e.g. "
                "https://market.example.org"
            ) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise RequesterError(
                f"the marketplace address {endpoint.url!r} is not a URL: {_CHECK_URL}, which starts with http:// or "
                "https://, e.g. https://market.example.org"
            )
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

    def _call(self, method: str, path: str, parse: Callable[[bytes], T], **options: Any) -> T:
        """``method path``'s answer, read by ``parse`` (a model's JSON validator)."""
        what = f"{method} {path}"
        try:
            with self._http.stream(method, path, **options) as response:
                status, content_type = response.status_code, response.headers.get("content-type")
                body = _capped_body(response, what)
        except httpx.TransportError as exc:
            raise RequesterError(f"the marketplace at {self._http.base_url} is not reachable: {exc}") from None
        except httpx.DecodingError as exc:
            raise RequesterError(
                f"the marketplace's answer to {method} {path} cannot be decoded ({exc}): it is not protocol v1; "
                f"{_CHECK_URL}"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # any other failed exchange (httpx adds kinds over time)
            raise RequesterError(
                f"the exchange with the marketplace at {self._http.base_url} failed ({type(exc).__name__}: {exc})"
            ) from None
        if status >= 500:
            raise RequesterError(f"the marketplace failed ({status}): {_refusal_detail(body)}; try again later")
        if status >= 400:
            raise RequesterError(f"the marketplace refused ({status}): {_refusal_detail(body)}")
        try:
            return parse(body)
        except ValidationError as exc:  # pydantic's own JSON parser: not JSON at all is a ValidationError too
            why = _not_protocol(exc, content_type)
            raise RequesterError(
                f"the marketplace's answer to {what} is not protocol v1 ({why}): {_CHECK_URL}"
            ) from None

    def submit(self, submission: JobSubmission) -> JobView:
        return self._call("POST", "/jobs", JobView.model_validate_json, json=submission.model_dump(mode="json"))

    def jobs(self) -> list[JobView]:
        return self._call("GET", "/jobs", TypeAdapter(list[JobView]).validate_json)

    def job(self, job_id: str) -> JobView:
        return self._call("GET", f"/jobs/{_segment(job_id)}", JobView.model_validate_json)

    def cancel(self, job_id: str) -> JobView:
        return self._call("POST", f"/jobs/{_segment(job_id)}/cancel", JobView.model_validate_json)

    def account(self) -> RequesterView:
        return self._call("GET", "/requester", RequesterView.model_validate_json)

    def download(self, job_id: str, dest: Path) -> list[Path]:
        """Every output of a completed job into ``dest``, each checked against its SHA-256."""
        import hashlib

        view = self.job(job_id)
        if view.state != "completed":
            raise RequesterError(f"job {job_id} is {view.state.value}: {view.reason}")
        written = []
        for output in view.outputs:
            target = dest / output.path
            partial = target.with_name(target.name + ".part")
            digest = hashlib.sha256()
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with self._http.stream("GET", f"/jobs/{_segment(job_id)}/outputs/{output.path}") as response:
                    if response.status_code != 200:
                        raise RequesterError(f"downloading {output.path} failed ({response.status_code})")
                    size = 0
                    with partial.open("wb") as handle:
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > output.size_bytes:  # not the file the job reported: stop before the disk fills
                                raise RequesterError(
                                    f"{output.path} is larger than the {output.size_bytes} bytes its job reported; "
                                    "it was not kept"
                                )
                            digest.update(chunk)
                            handle.write(chunk)
                if digest.hexdigest() != output.sha256:
                    partial.unlink(missing_ok=True)
                    raise RequesterError(f"{output.path} does not match its SHA-256; it was not kept")
                partial.replace(target)
            except RequesterError:
                _discard(partial)
                raise
            except httpx.HTTPError as exc:
                _discard(partial)
                raise RequesterError(
                    f"downloading {output.path} from {self._http.base_url} failed ({type(exc).__name__}: {exc}); "
                    "run `sparecycles result` again"
                ) from None
            except OSError as exc:
                _discard(partial)
                raise RequesterError(f"cannot write {target}: {exc.strerror or exc}; choose another folder") from None
            written.append(target)
        return written
