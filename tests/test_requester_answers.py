"""Whatever a marketplace answers, and whatever URL the requester gives, the requester's client raises only
RequesterError, with a message that says what happened and what to check: never a JSON, pydantic or httpx error
(which the CLI would show as a traceback)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparecycles.protocol.market import JobSubmission, JobView
from sparecycles.requester import MAX_ANSWER_BYTES, MarketEndpoint, RequesterClient, RequesterError, load_submission

REPO = Path(__file__).resolve().parent.parent
ENDPOINT = MarketEndpoint("http://market.test", "requester-key")
JOB_ID = "job-1"


def job_json(**changes: Any) -> dict[str, Any]:
    view = JobView(
        job_id=JOB_ID,
        state="completed",
        reason="done",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        replicas=1,
        units=1,
        max_price_per_unit_hour=10,
        held_base_units=0,
        charged_base_units=10,
    )
    return view.model_dump(mode="json") | changes


def submission() -> JobSubmission:
    return load_submission(REPO / "examples" / "market-job.toml")


CALLS: dict[str, Callable[[RequesterClient], object]] = {
    "submit": lambda client: client.submit(submission()),
    "jobs": lambda client: client.jobs(),
    "job": lambda client: client.job(JOB_ID),
    "cancel": lambda client: client.cancel(JOB_ID),
    "account": lambda client: client.account(),
}


def answered(response: httpx.Response | Exception, call: str = "job") -> RequesterError:
    """The RequesterError that ``call`` raises against a marketplace answering ``response`` (or raising it)."""

    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    with (
        pytest.raises(RequesterError) as raised,
        RequesterClient(ENDPOINT, transport=httpx.MockTransport(respond)) as client,
    ):
        CALLS[call](client)
    assert raised.value.__cause__ is None  # nothing of httpx or pydantic is carried along
    return raised.value


HTML = httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html><body>Welcome!</body></html>")


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(
    ("response", "words"),
    [
        (HTML, "not JSON but text/html"),
        (httpx.Response(200, json={"ok": True}), "is not protocol v1"),
        (httpx.Response(200, json=[1, 2, 3]), "is not protocol v1"),
        (httpx.Response(200, json="job-1"), "is not protocol v1"),
        (httpx.Response(200, content=b"\xff\xfe not utf-8"), "not JSON"),
        (httpx.Response(200, content=b"[" * 100_000), "is not protocol v1"),
    ],
    ids=["html", "wrong schema", "a list", "a string", "not utf-8", "nested too deeply"],
)
def test_an_answer_that_is_not_protocol_v1_says_so_and_to_check_the_url(
    call: str, response: httpx.Response, words: str
) -> None:
    error = answered(response, call)
    assert words in str(error)
    assert "check the --market URL" in str(error)


def test_a_list_where_the_job_list_should_hold_jobs_names_the_entry() -> None:
    error = answered(httpx.Response(200, json=[job_json(), {"job_id": "x"}]), "jobs")
    assert "is not protocol v1 (1." in str(error)


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (httpx.Response(500, json=["internal", "error"]), 'the marketplace failed (500): ["internal","error"]'),
        (httpx.Response(502, text="<html>Bad gateway</html>"), "failed (502): <html>Bad gateway</html>; try again"),
        (httpx.Response(404, json={"detail": "no such job"}), "refused (404): no such job"),
        (httpx.Response(404, content=b"[" * 100_000), "refused (404): [[[["),
        (httpx.Response(403, json={"detail": None}), "refused (403): {"),
        (httpx.Response(401), "refused (401): no reason given"),
    ],
)
def test_an_error_answer_of_any_shape_gives_its_reason(response: httpx.Response, words: str) -> None:
    error = str(answered(response))
    assert words in error
    assert len(error) < 400


def test_an_answer_that_does_not_decode_says_so() -> None:
    broken = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all"))
    assert "cannot be decoded" in str(answered(broken))


def test_network_trouble_says_the_marketplace_is_not_reachable() -> None:
    request = httpx.Request("GET", "http://market.test/v1/jobs/job-1")
    assert "is not reachable" in str(answered(httpx.ConnectError("refused", request=request)))
    assert "TooManyRedirects" in str(answered(httpx.TooManyRedirects("too many", request=request)))


@pytest.mark.parametrize(
    "url", ["http://[::1", "market.example.org", "ftp://market.example.org", "http://", "", "http://a b:x/"]
)
def test_a_market_url_that_is_not_one_says_so(url: str) -> None:
    with pytest.raises(RequesterError, match=r"is not a URL.*check the --market URL") as raised:
        RequesterClient(MarketEndpoint(url, "key"))
    assert raised.value.__cause__ is None


@pytest.mark.parametrize("job_id", ["../requester", "job?x=1", "", "a/b", "é"])
def test_a_job_id_that_is_not_one_is_refused_before_any_request(job_id: str) -> None:
    requests: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=job_json())

    with RequesterClient(ENDPOINT, transport=httpx.MockTransport(respond)) as client:
        with pytest.raises(RequesterError, match="is not a job id"):
            client.job(job_id)
        with pytest.raises(RequesterError, match="is not a job id"):
            client.cancel(job_id)
    assert requests == []


def test_a_download_cut_short_says_so_and_leaves_no_partial_file(tmp_path: Path) -> None:
    content = b"frame 1"
    output = {"path": "out/frame1.png", "size_bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/outputs/out/frame1.png"):
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(200, json=job_json(outputs=[output]))

    with (
        RequesterClient(ENDPOINT, transport=httpx.MockTransport(respond)) as client,
        pytest.raises(RequesterError, match=r"downloading out/frame1.png .* failed \(ReadError"),
    ):
        client.download(JOB_ID, tmp_path)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_a_good_answer_still_reads() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[job_json()] if request.url.path == "/v1/jobs" else job_json())

    with RequesterClient(ENDPOINT, transport=httpx.MockTransport(respond)) as client:
        assert [view.job_id for view in client.jobs()] == [JOB_ID]
        assert client.job(JOB_ID).state == "completed"


def test_a_destination_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    content = b"frame 1"
    output = {"path": "out/frame1.png", "size_bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    blocker = tmp_path / "dest"
    blocker.write_text("a file where the folder should be")

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/outputs/out/frame1.png"):
            return httpx.Response(200, content=content)
        return httpx.Response(200, json=job_json(outputs=[output]))

    with (
        RequesterClient(ENDPOINT, transport=httpx.MockTransport(respond)) as client,
        pytest.raises(RequesterError, match=r"cannot write .*choose another folder"),
    ):
        client.download(JOB_ID, blocker)


@pytest.mark.parametrize("call", list(CALLS))
def test_an_answer_larger_than_any_of_the_protocol_is_not_read_into_memory(call: str) -> None:
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        chunk = b"[" + b" " * (1024 * 1024 - 1)
        while True:  # a body with no end: only a cap stops the reading
            sent.append(len(chunk))
            yield chunk

    error = answered(httpx.Response(200, headers={"Content-Type": "application/json"}, content=endless()), call)
    assert "larger than 16 MiB" in str(error)
    assert "--market URL" in str(error)
    assert sum(sent) <= MAX_ANSWER_BYTES + 2 * 1024 * 1024  # it stopped at the cap


def test_a_small_gzip_answer_that_unpacks_past_the_cap_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_ANSWER_BYTES + 1))
    assert len(bomb) < 100_000
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = httpx.Response(200, headers=headers, content=bomb)
    assert "larger than 16 MiB" in str(answered(response))


def test_a_refusal_still_gives_its_reason_and_an_html_page_its_type() -> None:
    refused = answered(httpx.Response(403, json={"detail": "this API key was revoked"}))
    assert "refused (403): this API key was revoked" in str(refused)
    assert "not JSON but text/html" in str(answered(HTML))


def test_a_download_longer_than_its_reported_size_is_cut_off_and_not_kept(tmp_path: Path) -> None:
    content = b"frame 1"
    output = {"path": "out/frame1.png", "size_bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/outputs/out/frame1.png"):
            return httpx.Response(200, content=content + b"and then much more")
        return httpx.Response(200, json=job_json(outputs=[output]))

    with (
        RequesterClient(ENDPOINT, transport=httpx.MockTransport(respond)) as client,
        pytest.raises(RequesterError, match=r"larger than the 7 bytes its job reported; it was not kept"),
    ):
        client.download(JOB_ID, tmp_path)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []
