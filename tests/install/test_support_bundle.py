"""The support bundle: everything a bug report needs is in the zip, and no planted secret is, in any member."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from eth_account.hdaccount.mnemonic import Language, Mnemonic
from typer.testing import CliRunner

import sparecycles
from sparecycles.cli import app
from sparecycles.control.endpoint import AgentEndpoint
from sparecycles.diagnostics import CheckOutcome, CheckResult
from sparecycles.paths import AppPaths
from sparecycles.support_bundle import mask_secrets, write_bundle

LOCK_TOKEN = "Zq8kTT3vR0w_lockfile-token-Xy7PmN2sQ4aB9cD1eF5gH"
PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
API_KEY = "sk-live-51HmockmockAPIkeyDoNotLeak"
URL_PASSWORD = "hunter2-rpc-password"
RPC_KEY = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c"  # an RPC provider's key in the URL's path (Infura-style)
MNEMONIC = Mnemonic(Language.ENGLISH).generate(12)
PAYOUT = "0x" + "ab" * 20
SECRETS = [LOCK_TOKEN, PRIVATE_KEY, PRIVATE_KEY[2:], API_KEY, URL_PASSWORD, RPC_KEY, MNEMONIC]


@pytest.fixture
def planted(tmp_path: Path) -> AppPaths:
    """A SPARECYCLES_HOME whose settings, logs and lock file hold secrets, next to ordinary content."""
    paths = AppPaths.from_environment({"SPARECYCLES_HOME": str(tmp_path / "home")})
    paths.ensure()
    paths.config_file.write_text(
        "[general]\n"
        'log_level = "debug"\n'
        "[marketplace]\n"
        f'payout_address = "{PAYOUT}"\n'
        'identity_key_file = "/var/lib/sparecycles/identity.key"\n'
        f'api_key = "{API_KEY}"\n'
        "[chain]\n"
        f'rpc_url = "https://rig:{URL_PASSWORD}@rpc.example.net/v2/{RPC_KEY}"\n'
        "chain_id = 8453\n"
    )
    endpoint = AgentEndpoint(pid=os.getpid(), version="x", port=4242, token=LOCK_TOKEN)
    paths.agent_lock_file.write_text(endpoint.to_json())
    paths.agent_log_file.write_text(
        "2026-01-01 INFO agent: Control API listening on 127.0.0.1:4242\n"
        f"2026-01-01 DEBUG api: request with {LOCK_TOKEN}\n"
        f"2026-01-01 ERROR wallet: imported {PRIVATE_KEY} by mistake\n"
        f"2026-01-01 ERROR wallet: raw {PRIVATE_KEY[2:]}\n"
        f"2026-01-01 ERROR wallet: phrase {MNEMONIC}\n"
        f"2026-01-01 ERROR wallet: phrase one per line\n{MNEMONIC.replace(' ', chr(10))}\n"
        f"2026-01-01 WARNING market: Authorization: Bearer {LOCK_TOKEN[::-1]}\n"
        "2026-01-01 INFO jobs: image busybox@sha256:" + "c" * 64 + " pulled\n"
    )
    (paths.log_dir / "agent.log.1").write_text(f"2026-01-01 INFO old: api_key={API_KEY}\nolder line kept\n")
    return paths


def _members(bundle: Path) -> dict[str, str]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


REPORT = [
    CheckResult("NVIDIA driver", CheckOutcome.PROBLEM, "NVML not found", fix="sudo ubuntu-drivers install"),
    CheckResult("Docker engine", CheckOutcome.OK, "running (version 27.0)"),
]


def test_no_planted_secret_is_anywhere_in_the_zip(tmp_path: Path, planted: AppPaths) -> None:
    bundle = tmp_path / "out" / "support.zip"
    write_bundle(bundle, planted, REPORT)
    members = _members(bundle)
    everything = "\n".join(members.values())
    for secret in [*SECRETS, LOCK_TOKEN[::-1]]:
        assert secret not in everything
    for name, text in members.items():
        for word_run in (MNEMONIC, MNEMONIC.replace(" ", "\n")):
            assert word_run not in text, name
    # Nor a large part of the phrase, nor any key file or database.
    assert " ".join(MNEMONIC.split()[:6]) not in everything
    assert set(members) == {
        "doctor.json",
        "doctor.txt",
        "versions.json",
        "config.toml",
        "logs/agent.log",
        "logs/agent.log.1",
        "README.txt",
    }
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"


def test_what_is_not_secret_is_there(tmp_path: Path, planted: AppPaths) -> None:
    bundle = tmp_path / "support.zip"
    write_bundle(bundle, planted, REPORT)
    members = _members(bundle)
    assert json.loads(members["doctor.json"])[0] == {
        "name": "NVIDIA driver",
        "outcome": "problem",
        "detail": "NVML not found",
        "fix": "sudo ubuntu-drivers install",
        "required": True,
    }
    assert "[problem] NVIDIA driver: NVML not found\n    fix: sudo ubuntu-drivers install" in members["doctor.txt"]
    versions = json.loads(members["versions.json"])
    assert versions["sparecycles"] == sparecycles.__version__
    assert versions["packages"]["pydantic"]
    assert versions["python"]
    assert f'payout_address = "{PAYOUT}"' in members["config.toml"]
    assert 'identity_key_file = "/var/lib/sparecycles/identity.key"' in members["config.toml"]
    assert "chain_id = 8453" in members["config.toml"]
    assert "@rpc.example.net/v2/***" in members["config.toml"]
    assert "Control API listening on 127.0.0.1:4242" in members["logs/agent.log"]
    assert "busybox@sha256:" + "c" * 64 in members["logs/agent.log"]  # digests are not keys
    assert "older line kept" in members["logs/agent.log.1"]


def test_only_the_most_recent_logs_up_to_the_budget(tmp_path: Path, planted: AppPaths) -> None:
    (planted.log_dir / "agent.log").write_text("".join(f"line {n}\n" for n in range(1000)) + "the newest line\n")
    os.utime(planted.log_dir / "agent.log.1", (1, 1))
    write_bundle(tmp_path / "b.zip", planted, REPORT, max_log_bytes=100)
    members = _members(tmp_path / "b.zip")
    assert members["logs/agent.log"].endswith("the newest line\n")
    assert len(members["logs/agent.log"]) == 100
    assert "logs/agent.log.1" not in members


def test_ordinary_sentences_are_not_mistaken_for_a_recovery_phrase() -> None:
    line = "the agent could not reach the marketplace because the network was down for ten minutes today"
    assert mask_secrets(line) == line


def test_doctor_bundle_writes_the_zip(tmp_path: Path, planted: AppPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARECYCLES_HOME", str(tmp_path / "home"))
    bundle = tmp_path / "from-cli.zip"
    result = CliRunner().invoke(app, ["doctor", "--bundle", str(bundle)])
    assert "Support bundle written to" in result.output
    members = _members(bundle)
    everything = "\n".join(members.values())
    for secret in SECRETS:
        assert secret not in everything
    assert "Docker engine" in members["doctor.txt"]
    assert "Control API listening" in members["logs/agent.log"]
