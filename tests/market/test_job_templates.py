"""The studio's job templates in examples/jobs: they load, a frame-range template becomes one job per chunk of
frames, and `sparecycles submit --frames` submits those jobs to a real marketplace process."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from sparecycles.requester import RequesterError, frame_chunks, load_submission, load_submissions
from tests.conftest import CLI, agent_env
from tests.market.market_process import MarketProcess

REPO = Path(__file__).resolve().parents[2]
BLENDER = REPO / "examples" / "jobs" / "blender-frames.toml"
PYTORCH = REPO / "examples" / "jobs" / "pytorch-batch.toml"


def test_the_pytorch_template_carries_the_script_beside_it_and_the_docs_show_it() -> None:
    submission = load_submission(PYTORCH)
    assert (submission.spec.gpus, submission.project) == (1, "lookdev")
    [script] = submission.spec.inputs
    assert (
        base64.b64decode(script.content_base64 or "") == (REPO / "examples" / "jobs" / "pytorch_batch.py").read_bytes()
    )
    assert PYTORCH.read_text() in (REPO / "docs" / "studio-fleet.md").read_text()


def test_the_blender_template_becomes_one_job_per_chunk_of_frames() -> None:
    with pytest.raises(RequesterError, match="--frames"):
        load_submission(BLENDER)  # a template needs its frames
    jobs = load_submissions(BLENDER, "1-25", 10)
    commands = [job.spec.command or [] for job in jobs]
    ranges = [
        (command[command.index("--frame-start") + 1], command[command.index("--frame-end") + 1]) for command in commands
    ]
    assert ranges == [("1", "10"), ("11", "20"), ("21", "25")]
    assert {job.project for job in jobs} == {"sh010"}
    assert all("{" not in " ".join(command) for command in commands)
    assert BLENDER.read_text() in (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    ("frames", "chunk", "words"),
    [("240", 10, "frame range"), ("10-1", 5, "ends before"), ("1-10", 0, "1 or more"), ("1-100000", 1, "more than")],
)
def test_a_bad_frame_range_says_what_is_wrong(frames: str, chunk: int, words: str) -> None:
    with pytest.raises(RequesterError, match=words):
        frame_chunks(frames, chunk)


def test_frames_need_a_template() -> None:
    with pytest.raises(RequesterError, match="frame_start"):
        load_submissions(REPO / "examples" / "market-job.toml", "1-10", 5)


def test_submit_with_frames_sends_one_job_per_chunk(tmp_path: Path) -> None:
    market = MarketProcess(tmp_path / "market")
    market.start()
    try:
        key = market.operator("add-requester", "lighting-td")
        market.operator("credit", "lighting-td", str(10**16))
        result = subprocess.run(
            [CLI, "submit", str(BLENDER), "--frames", "101-130", "--chunk", "12", "--market", market.url()],
            env=agent_env(tmp_path, SPARECYCLES_API_KEY=key),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("submitted") == 3  # 101-112, 113-124, 125-130
        jobs = httpx.get(f"{market.url()}/v1/jobs", headers={"Authorization": f"Bearer {key}"}).json()
        assert sorted(json.dumps(job["project"]) for job in jobs) == ['"sh010"'] * 3
    finally:
        market.stop()
