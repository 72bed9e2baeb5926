"""The operator's commands on a marketplace's database, and the operator key's file rules."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from sparecycles.agent.keystore import KeySource, KeyStoreError, load_key
from tests.conftest import CLI, agent_env


def market_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    options = ["--data-dir", str(folder / "data"), "--key-file", str(folder / "operator.key")]
    return subprocess.run(
        [CLI, "market", *args, *options], env=agent_env(folder), capture_output=True, text=True, timeout=60, check=False
    )


def test_requesters_credit_and_payout_changes_from_the_command_line(tmp_path: Path) -> None:
    added = market_cli(tmp_path, "add-requester", "render-team")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().startswith("scr_")
    assert market_cli(tmp_path, "add-requester", "render-team").returncode == 1  # the name is taken
    credited = market_cli(tmp_path, "credit", "render-team", "5000")
    assert "render-team: 5000 available" in credited.stdout
    unknown = market_cli(tmp_path, "credit", "nobody", "5")
    assert unknown.returncode == 1
    assert "add-requester nobody" in unknown.stderr
    both = market_cli(tmp_path, "resolve", "job-x", "--reject", "--accept", Account.create().address)
    assert both.returncode == 2
    assert "exactly one of" in both.stderr
    missing = market_cli(tmp_path, "resolve", "job-x", "--reject")
    assert missing.returncode == 1
    assert "no job job-x" in missing.stderr
    stranger = market_cli(tmp_path, "set-payout", Account.create().address, Account.create().address)
    assert stranger.returncode == 1
    assert "register this machine first" in stranger.stderr
    assert (tmp_path / "operator.key").stat().st_mode & 0o777 == 0o600


def test_a_key_file_others_can_read_is_refused_and_a_bad_one_is_not_echoed(tmp_path: Path) -> None:
    key_file = tmp_path / "identity.key"
    account = load_key(KeySource("test", key_file), create=True)
    assert load_key(KeySource("test", key_file), create=False).address == account.address
    os.chmod(key_file, 0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        load_key(KeySource("test", key_file), create=False)
    os.chmod(key_file, 0o600)
    key_file.write_text("not-a-key-but-maybe-a-typo-of-one\n")
    with pytest.raises(KeyStoreError) as refused:
        load_key(KeySource("test", key_file), create=False)
    assert "typo" not in str(refused.value)
    with pytest.raises(KeyStoreError, match="does not exist"):
        load_key(KeySource("test", tmp_path / "absent.key"), create=False)


def test_the_identity_key_lives_in_the_secret_service_and_a_fail_keyring_is_refused() -> None:
    import secrets

    import keyring
    from keyring.backends import fail

    from sparecycles.agent.keystore import primary_backend

    backend = keyring.get_keyring()
    if "SecretService" not in type(primary_backend(backend)).__module__:
        pytest.skip("needs the Secret Service session that `make test` starts (gnome-keyring in D-Bus)")
    name = f"test-identity-{secrets.token_hex(4)}"
    created = load_key(KeySource(name), create=True)
    try:
        assert load_key(KeySource(name), create=False).address == created.address  # kept, found again
    finally:
        keyring.delete_password("SpareCycles", name)
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(KeyStoreError, match="no usable OS keyring"):
            load_key(KeySource(name), create=True)
    finally:
        keyring.set_keyring(backend)


def test_the_operator_tools_from_the_command_line_leave_an_exportable_audit_log(tmp_path: Path) -> None:
    import csv
    import json

    key = market_cli(tmp_path, "add-requester", "render-team").stdout.strip()
    assert market_cli(tmp_path, "credit", "render-team", "5000").returncode == 0
    token = market_cli(tmp_path, "admin-token", "night-shift")
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("sco_")
    listed = market_cli(tmp_path, "providers", "--json")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    assert json.loads(market_cli(tmp_path, "jobs", "--json", "--state", "queued").stdout) == []
    assert market_cli(tmp_path, "revoke-key", "render-team").returncode == 0
    rotated = market_cli(tmp_path, "rotate-key", "render-team").stdout.strip()
    assert rotated.startswith("scr_")
    assert rotated != key
    quota = market_cli(tmp_path, "quota", "render-team", "1000")
    assert "0 of 1000 bytes" in quota.stdout
    assert "Deleted 0 output file(s)" in market_cli(tmp_path, "retention", "--older-than-days", "30").stdout
    unknown = market_cli(tmp_path, "ban", Account.create().address, "--reason", "spam")
    assert unknown.returncode == 1
    assert "has registered with this marketplace" in unknown.stderr
    assert market_cli(tmp_path, "cancel", "job-nope").returncode == 1

    exported = tmp_path / "audit.csv"
    written = market_cli(tmp_path, "audit", "--format", "csv", "--output", str(exported))
    assert written.returncode == 0, written.stderr
    with exported.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["action"] for row in rows] == [
        "add_requester",
        "credit",
        "create_token",
        "revoke_key",
        "rotate_key",
        "set_quota",
    ]
    assert rows[1]["amount_base_units"] == "5000"
    assert {row["actor"] for row in rows} == {"operator (command line)"}
    lines = market_cli(tmp_path, "audit", "--action", "credit").stdout.splitlines()
    assert [json.loads(line)["subject"] for line in lines] == ["requester:render-team"]
    everything = exported.read_text() + "\n".join(lines)
    for secret in (key, rotated, token.stdout.strip()):
        assert secret not in everything


def test_a_groups_enrolment_codes_are_revoked_from_the_command_line(tmp_path: Path) -> None:
    made = market_cli(tmp_path, "enrol-code", "--group", "render-farm", "--expires", "7d")
    assert made.returncode == 0, made.stderr
    revoked = market_cli(tmp_path, "revoke-enrol-codes", "--group", "render-farm")
    assert revoked.returncode == 0, revoked.stderr
    assert "1 enrolment code(s) of group render-farm revoked" in revoked.stdout
    assert "sparecycles market enrol-code --group render-farm" in revoked.stdout
    unknown = market_cli(tmp_path, "revoke-enrol-codes", "--group", "no-such-group")
    assert unknown.returncode == 1
    assert "no group named no-such-group" in unknown.stderr
