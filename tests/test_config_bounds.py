"""Settings values beyond what the protocol and the sums made with them allow are refused by name, with the
allowed range in words that fit the field's type; a file saved with a byte-order mark (Windows Notepad) loads and
is updated; a settings change that a TOML file cannot hold is refused like any invalid change (409 from the API,
naming the key), and the file stays as it was."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparecycles.agent.api.server import create_app
from sparecycles.agent.settings_store import SettingsStore
from sparecycles.config import MAX_BASE_UNITS, ConfigError, Settings, load_settings, update_settings_file
from sparecycles.control.models import AgentEvent, StatusDocument
from sparecycles.protocol import market

BIG = "1" + "0" * 80  # above 2**256 - 1, the protocol's cap on an amount

OUT_OF_BOUNDS = [
    ("gpu floor", f"[marketplace]\nprice_floor_per_gpu_hour = {BIG}\n", "marketplace.price_floor_per_gpu_hour",
     "a whole number from 0 to 2**256 - 1"),
    ("core floor", f"[marketplace]\nprice_floor_per_core_hour = {BIG}\n", "marketplace.price_floor_per_core_hour",
     "a whole number from 0 to 2**256 - 1"),
    ("infinite native price", "[chain]\nnative_price = inf\n", "chain.native_price", "a number above 0, up to 1e+15"),
    ("infinite auto-claim", "[chain]\nauto_claim_above = inf\n", "chain.auto_claim_above", "finite number"),
    ("nan auto-claim", "[chain]\nauto_claim_above = nan\n", "chain.auto_claim_above", "a number above 0, up to 1e+15"),
    ("huge native price", "[chain]\nnative_price = 1e300\n", "chain.native_price", "up to 1e+15"),
    ("infinite cpu cap", "[jobs]\nmax_cpus = inf\n", "jobs.max_cpus", "a number above 0, up to 1024"),
    ("negative margin", "[ledger]\nmargin = -1.0\n", "ledger.margin",
     "a number from 0 to 100, as a fraction, 0.2 meaning 20 %"),
    ("gas share above one", "[chain]\nmax_gas_share = 1.5\n", "chain.max_gas_share",
     "a number above 0, up to 1, as a fraction"),
    ("chain id zero", "[chain]\nchain_id = 0\n", "chain.chain_id", "a whole number, 1 or more"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "key", "allowed"), OUT_OF_BOUNDS, ids=[c[0] for c in OUT_OF_BOUNDS])
def test_a_value_out_of_bounds_names_the_key_and_the_range(
    tmp_path: Path, case: str, text: str, key: str, allowed: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert key in message
    assert allowed in message
    assert "whole number" not in message or "whole number" in allowed  # a float takes fractions


def test_the_price_floor_cap_is_the_protocols() -> None:
    assert MAX_BASE_UNITS == market.MAX_BASE_UNITS
    floors = {"price_floor_per_gpu_hour": MAX_BASE_UNITS, "price_floor_per_core_hour": MAX_BASE_UNITS}
    settings = Settings.model_validate({"marketplace": floors})
    assert settings.marketplace.price_floor_per_gpu_hour == market.MAX_BASE_UNITS


def test_the_highest_finite_claim_settings_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[chain]\nnative_price = 1e15\nauto_claim_above = 1e15\n")
    assert load_settings(path).chain.native_price == 1e15


def test_a_value_pasted_hundreds_of_characters_long_is_quoted_short(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[marketplace]\nprice_floor_per_gpu_hour = {'9' * 400}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert "(400 characters)" in str(raised.value)
    assert "9" * 200 not in str(raised.value)


BOM = "\ufeff"


def test_a_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BOM + '# saved by Notepad\n[work]\nidle_threshold = "5m"\n', encoding="utf-8")
    assert load_settings(path).work.idle_threshold == "5m"


def test_a_file_with_a_byte_order_mark_is_updated_keeping_all_but_the_mark(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BOM + '# saved by Notepad\n[work]\nidle_threshold = "5m"\n', encoding="utf-8")
    update_settings_file(path, {"work": {"resume_after": "2m"}})
    assert (
        path.read_text(encoding="utf-8") == '# saved by Notepad\n[work]\nidle_threshold = "5m"\nresume_after = "2m"\n'
    )
    assert load_settings(path).work.resume_after == "2m"


def test_a_file_saved_with_windows_line_endings_keeps_them_when_updated(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'# saved on Windows\r\n[work]\r\nidle_threshold = "5m"\r\n')
    update_settings_file(path, {"work": {"resume_after": "2m"}, "gpu": {"max_temperature_c": 80}})
    written = path.read_bytes()
    assert written.count(b"\n") == written.count(b"\r\n")  # every line, old and new, ends in CR LF
    assert written.startswith(b'# saved on Windows\r\n[work]\r\nidle_threshold = "5m"\r\nresume_after = "2m"\r\n')
    settings = load_settings(path)
    assert (settings.work.resume_after, settings.gpu.max_temperature_c) == ("2m", 80)


def test_a_file_with_unix_line_endings_gets_no_carriage_returns(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[work]\nidle_threshold = "5m"\n')
    update_settings_file(path, {"work": {"resume_after": "2m"}})
    assert path.read_bytes() == b'[work]\nidle_threshold = "5m"\nresume_after = "2m"\n'


def test_a_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[general]\ntimezone = "Europe/Z\xfcrich"\n')
    with pytest.raises(ConfigError, match=r"is not UTF-8 text .*save it as UTF-8"):
        load_settings(path)


# --- changes through the control API ------------------------------------------------------------------


class _SettingsOnly:
    """A control service with the real settings store and nothing else, for PATCH /v1/settings."""

    def __init__(self, path: Path) -> None:
        self.store = SettingsStore(path, load_settings(path))

    def settings(self) -> Settings:
        return self.store.own

    def update_settings(self, changes: dict[str, dict[str, Any]]) -> Settings:
        self.store.update(changes)
        return self.store.own

    def status(self) -> StatusDocument:
        raise NotImplementedError

    async def subscribe(self) -> AsyncIterator[AgentEvent]:
        return
        yield


TOKEN = "t" * 43

UNWRITABLE_CHANGES = [
    ("null in a list", b'{"changes": {"gpu": {"disabled": [null]}}}', "gpu.disabled", "null"),
    ("null in a table", b'{"changes": {"gpu": {"disabled": {"x": null}}}}', "gpu.disabled", "null"),
    ("lone surrogate", b'{"changes": {"gpu": {"disabled": ["\\ud800"]}}}', "gpu.disabled", "not text"),
    ("huge size", b'{"changes": {"jobs": {"max_memory": "1' + b"0" * 400 + b'"}}}', "jobs.max_memory", "too large"),
    ("infinite number", b'{"changes": {"chain": {"native_price": 1e999}}}', "chain.native_price", "finite"),
]


@pytest.mark.parametrize(("case", "body", "key", "words"), UNWRITABLE_CHANGES, ids=[c[0] for c in UNWRITABLE_CHANGES])
def test_a_change_a_settings_file_cannot_hold_is_a_409_naming_the_key(
    tmp_path: Path, case: str, body: bytes, key: str, words: str
) -> None:
    path = tmp_path / "config.toml"
    original = b'# mine\n[gpu]\ndisabled = ["1"]\n'
    path.write_bytes(original)
    app = create_app(_SettingsOnly(path), TOKEN)  # only the settings routes are called
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def patch() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.patch(
                "/v1/settings",
                content=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )

    response = asyncio.run(patch())
    assert response.status_code == 409, response.text
    answer = response.json()
    assert key in answer["message"]
    assert any(key in problem and words in problem for problem in answer["problems"]), answer
    assert path.read_bytes() == original


def test_null_alone_still_returns_a_key_to_its_default(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[gpu]\ndisabled = ["1"]\n')
    assert update_settings_file(path, {"gpu": {"disabled": None}}).gpu.disabled == []
