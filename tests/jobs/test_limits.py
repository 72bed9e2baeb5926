"""From the owner's [jobs] settings to the limits a job is checked against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparecycles.agent.jobs.limits import provider_limits
from sparecycles.config import ConfigError, Settings, validate_settings
from sparecycles.protocol.job_refusal import JobRefused, check_job
from sparecycles.sizes import parse_size

EXAMPLE_JOB = Path(__file__).resolve().parents[2] / "examples" / "job.json"
GIB = 2**30


def test_unset_settings_leave_the_owner_a_core_and_half_the_memory() -> None:
    limits = provider_limits(Settings().jobs, gpu_count=1, gpu_vram_bytes=8 * GIB, cpu_count=8, memory_bytes=32 * GIB)
    assert limits.max_cpus == 7
    assert limits.max_memory_bytes == 16 * GIB
    assert limits.max_runtime_s == 24 * 3600
    assert limits.max_output_bytes == 10 * GIB
    assert limits.egress_allowed is False
    assert "docker.io" in limits.allowed_registries


def test_the_example_job_passes_the_default_limits_and_the_owner_can_refuse_it() -> None:
    raw = json.loads(EXAMPLE_JOB.read_text())
    limits = provider_limits(Settings().jobs, gpu_count=0, gpu_vram_bytes=None, cpu_count=4, memory_bytes=8 * GIB)
    assert check_job(raw, limits).gpus == 0
    strict = validate_settings({"jobs": {"allowed_registries": ["127.0.0.1:5000"]}}, source="test").jobs
    with pytest.raises(JobRefused, match="not in your allowed registries"):
        check_job(raw, provider_limits(strict, gpu_count=0, gpu_vram_bytes=None, cpu_count=4, memory_bytes=8 * GIB))


def test_egress_per_job_is_the_owners_choice() -> None:
    settings = validate_settings({"jobs": {"egress": "per_job", "max_memory": "4GiB"}}, source="test").jobs
    limits = provider_limits(settings, gpu_count=0, gpu_vram_bytes=None, cpu_count=2, memory_bytes=64 * GIB)
    assert limits.egress_allowed is True
    assert limits.max_memory_bytes == 4 * GIB


@pytest.mark.parametrize(
    ("section", "key", "hint"),
    [
        ({"max_memory": "lots"}, "jobs.max_memory", "8GiB"),
        ({"max_output": "2TiB"}, "jobs.max_output", "from 1MiB to 1TiB"),
        ({"egress": "always"}, "jobs.egress", "'per_job'"),
        ({"download_rate_limit": "1KiB"}, "jobs.download_rate_limit", "from 64KiB"),
    ],
)
def test_bad_job_settings_name_the_key(section: dict[str, str], key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validate_settings({"jobs": section}, source="test")
    assert key in str(raised.value)
    assert hint in str(raised.value)


@pytest.mark.parametrize(
    ("text", "size"), [("500MB", 500 * 10**6), ("8GiB", 8 * GIB), ("1.5 GB", 1_500_000_000), ("64", 64)]
)
def test_sizes_read_naturally(text: str, size: int) -> None:
    assert parse_size(text) == size
