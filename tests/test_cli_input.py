"""Files and addresses a user hands the CLI: one that is not UTF-8 text gets a message saying so (never a
traceback), one saved with a byte-order mark (Windows Notepad) is read as if it had none, a --market that is not a
URL says so; and a metrics token file that is not text is a MetricsError, which the agent logs and works on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sparecycles.agent.metrics.server import MetricsError, read_token
from tests.conftest import run_cli, start_agent

REPO = Path(__file__).resolve().parent.parent
NOT_UTF8 = b'{"image": "caf\xe9"}\n'  # Latin-1, as an old editor saves it
BOM = b"\xef\xbb\xbf"


def test_run_here_with_a_file_that_is_not_utf8_says_so(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "bad.json"
    spec.write_bytes(NOT_UTF8)
    result = run_cli(home, "run-here", str(spec))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{spec} is not UTF-8 text" in result.stderr
    assert "save it as UTF-8" in result.stderr


def test_run_here_reads_a_file_with_a_byte_order_mark(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "job.json"
    spec.write_bytes(BOM + (REPO / "examples" / "job.json").read_bytes())
    result = run_cli(home, "run-here", str(spec))
    assert "not valid JSON" not in result.stderr
    assert result.returncode == 3  # read and parsed; it stops only because no agent runs here
    assert "Traceback" not in result.stderr


def test_run_here_with_a_file_nested_too_deeply_says_so(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "deep.json"
    spec.write_text("[" * 100_000)
    result = run_cli(home, "run-here", str(spec))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nested too deeply" in result.stderr


def test_submit_with_a_file_that_is_not_utf8_says_so(home: Path, tmp_path: Path) -> None:
    job = tmp_path / "bad.toml"
    job.write_bytes(b"max_price_per_core_hour = 1\n# caf\xe9\n")
    result = run_cli(home, "submit", str(job))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{job} is not UTF-8 text" in result.stderr
    assert "save it as UTF-8 TOML" in result.stderr


def test_submit_reads_a_file_with_a_byte_order_mark(home: Path, tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_bytes(BOM + (REPO / "examples" / "market-job.toml").read_bytes())
    result = run_cli(home, "submit", str(job))
    assert "not valid TOML" not in result.stderr
    assert "no private marketplace here yet" in result.stderr  # read and checked; no agent runs here
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["http://[::1", "market.example.org"])
def test_a_market_that_is_not_a_url_says_so(home: Path, url: str) -> None:
    result = run_cli(home, "jobs", "--market", url, "--api-key", "x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "is not a URL" in result.stderr
    assert "--market" in result.stderr


def test_a_metrics_token_file_that_is_not_text_is_a_metrics_error(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_bytes(b"\xff\xfe\x00binary-token-binary-token\x80")
    token_file.chmod(0o600)
    with pytest.raises(MetricsError, match=r"is not UTF-8 text.*openssl rand -hex 32"):
        read_token(token_file)


def test_a_metrics_token_no_scraper_can_send_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text("tökén-with-accents-and-more\n", encoding="utf-8")
    token_file.chmod(0o600)
    with pytest.raises(MetricsError, match="characters a scraper cannot send"):
        read_token(token_file)


def test_the_agent_starts_without_metrics_when_the_token_file_is_not_text(home: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_bytes(b"\xff" * 40)
    token_file.chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[metrics]\nenabled = true\nport = {port}\ntoken_file = "{token_file}"\n')
    agent = start_agent(home, "--simulated-gpus", "1")
    try:
        assert agent.process.poll() is None
    finally:
        assert agent.stop() == 0
    log = agent.paths.agent_log_file.read_text(errors="replace")
    assert "Metrics are not served" in log
    assert "is not UTF-8 text" in log


@pytest.mark.parametrize("name", ["~no-such-user-here/metrics.token", "/tmp/metrics\0.token"])
def test_a_metrics_token_file_name_that_names_no_file_is_a_metrics_error(name: str) -> None:
    with pytest.raises(MetricsError, match="metrics token file"):
        read_token(Path(name))
