"""Every instant of the fleet protocol carries its UTC offset: a naive one from the network would be kept in
``fleet.json`` and, after a restart, fail to compare with the agent's clock (the status then raised TypeError)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sparecycles.protocol.fleet import EnrolCode, FleetDirective, FleetMachine, PauseRequest

NAIVE = "2030-01-01T08:00:00"
MACHINE: dict[str, Any] = {
    "address": "0x" + "ab" * 20,
    "name": "render-01",
    "group": "render-farm",
    "online": True,
    "last_seen_at": "2030-01-01T07:00:00Z",
    "agent_version": "0.1.0",
    "state": "working",
    "reason": "working: job running",
    "gpus": [],
    "jobs": [],
    "gpu_hours_today": 1.5,
    "energy_kwh_today": None,
    "reported_at": "2030-01-01T07:00:00Z",
    "drain": False,
    "paused_until": None,
    "policy_version": 3,
}


def directive(paused_until: str | None) -> FleetDirective:
    """The directive as the agent reads it off the network."""
    body = {"membership": None, "drain": False, "paused_until": paused_until, "report_every_s": 60}
    return FleetDirective.model_validate_json(json.dumps(body))


def test_a_directive_pausing_until_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone") as refused:
        directive(NAIVE)
    assert refused.value.errors()[0]["loc"] == ("paused_until",)


@pytest.mark.parametrize(
    ("text", "offset"), [("2030-01-01T08:00:00Z", timedelta(0)), ("2030-01-01T08:00:00+01:00", timedelta(hours=1))]
)
def test_a_directive_pausing_until_an_aware_time_is_kept(text: str, offset: timedelta) -> None:
    paused = directive(text).paused_until
    assert paused == datetime(2030, 1, 1, 8, tzinfo=timezone(offset))
    assert paused is not None
    assert paused.utcoffset() == offset
    assert paused > datetime(2029, 12, 31, tzinfo=UTC)  # comparable with the agent's clock: the bug's TypeError


def test_no_pause_is_still_no_pause() -> None:
    assert directive(None).paused_until is None


@pytest.mark.parametrize(
    ("model", "fields", "key"),
    [
        (EnrolCode, {"group": "render-farm", "code": "abcdefgh12"}, "expires_at"),
        (PauseRequest, {}, "until"),
        (FleetMachine, MACHINE, "last_seen_at"),
        (FleetMachine, MACHINE, "reported_at"),
        (FleetMachine, MACHINE, "paused_until"),
    ],
)
def test_every_instant_of_the_fleet_protocol_must_be_aware(
    model: type[BaseModel], fields: dict[str, Any], key: str
) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        model.model_validate({**fields, key: NAIVE})
    assert model.model_validate({**fields, key: NAIVE + "+02:00"}) is not None


def test_every_datetime_field_of_the_fleet_protocol_is_covered() -> None:
    from sparecycles.protocol import fleet

    found = {
        (name, key)
        for name, model in vars(fleet).items()
        if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == fleet.__name__
        for key, field in model.model_fields.items()
        if "datetime" in str(field.annotation).lower()
    }
    assert found == {
        ("EnrolCode", "expires_at"),
        ("FleetDirective", "paused_until"),
        ("FleetMachine", "last_seen_at"),
        ("FleetMachine", "reported_at"),
        ("FleetMachine", "paused_until"),
        ("PauseRequest", "until"),
    }


def test_a_naive_pause_kept_before_the_check_is_read_as_utc_and_the_membership_kept() -> None:
    from sparecycles.agent.fleet.service import _Kept

    kept = _Kept.model_validate_json(
        '{"url": "https://studio.example", "paused_until": "2030-01-01T08:00:00", "membership": {"studio": "S",'
        ' "group": "render", "policy": {}, "policy_version": 1}}'
    )
    assert kept.paused_until == datetime(2030, 1, 1, 8, tzinfo=UTC)
    assert kept.paused_until > datetime.now(UTC)  # compares with the agent's clock, as status() does
