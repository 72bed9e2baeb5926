"""The requester's job file: the example loads, the README shows it, and a bad file says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparecycles.requester import RequesterError, load_submission

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "market-job.toml"


def test_the_example_job_file_loads_and_the_readme_shows_it() -> None:
    submission = load_submission(EXAMPLE)
    assert submission.spec.gpus == 0
    assert submission.max_price_per_core_hour == 5_000_000
    assert submission.units == 1
    assert EXAMPLE.read_text() in (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("max_price_per_core_hour = 1\n[spec]\nimage = 'busybox:latest'\n", "spec.image"),
        ("[spec]\nimage = 'x@sha256:" + "a" * 64 + "'\n", "max_price_per_core_hour"),
        ("max_price_per_core_hour = 1\nsurprise = 1\n[spec]\nimage = 'x@sha256:" + "a" * 64 + "'\n", "surprise"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_a_bad_job_file_says_what_is_wrong(tmp_path: Path, text: str, words: str) -> None:
    job_file = tmp_path / "job.toml"
    job_file.write_text(text)
    with pytest.raises(RequesterError, match=words):
        load_submission(job_file)
