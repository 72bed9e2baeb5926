"""Joining a second studio, and being dropped by one: a refused enrolment code must not cost the machine the
group it was in, and a machine a studio no longer counts takes work from its owner's marketplace again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.fleet import service as fleet_service
from sparecycles.agent.fleet.service import FleetError, FleetService, MarketSide
from sparecycles.agent.market.client import MarketRefused
from sparecycles.config import Settings
from sparecycles.protocol.fleet import FleetDirective, GroupPolicy, Membership

A, B = "https://a.example", "https://b.example"
POLICY = GroupPolicy(mode="schedule", windows=["Mon-Fri 19:00-08:00"], max_temperature_c=70)


@dataclass
class Studio:
    """A studio's marketplace as the fleet sees it: its enrolment codes and the group it counts this machine in."""

    codes: dict[str, str]
    member: str | None = None

    def membership(self, url: str) -> Membership | None:
        if self.member is None:
            return None
        return Membership(studio=url, group=self.member, policy=POLICY, policy_version=1)


@dataclass
class World:
    studios: dict[str, Studio]
    market_url: str | None = None  # None: the private marketplace
    busy: bool = False
    switches: list[str | None] = field(default_factory=list)

    def client(self, url: str) -> FakeClient:
        return FakeClient(self, url)

    def side(self) -> MarketSide:
        url = self.market_url
        return MarketSide(url=url, client=self.client(url) if url else None, signed_in=True, busy=self.busy)

    async def switch(self, url: str | None) -> None:
        self.market_url = url
        self.switches.append(url)


class FakeClient:
    """The calls of ``MarketClient`` that the fleet makes, answered from :class:`World`."""

    def __init__(self, world: World, url: str) -> None:
        self._world = world
        self._url = url.rstrip("/")

    @property
    def _studio(self) -> Studio:
        return self._world.studios[self._url]

    async def join_group(self, code: str) -> Membership:
        if code not in self._studio.codes:
            raise MarketRefused(403, "this enrolment code is unknown or expired")
        self._studio.member = self._studio.codes[code]
        membership = self._studio.membership(self._url)
        assert membership is not None
        return membership

    async def leave_group(self) -> FleetDirective:
        self._studio.member = None
        return FleetDirective(membership=None, report_every_s=15)

    async def fleet_report(self, report: Any) -> FleetDirective:
        return FleetDirective(membership=self._studio.membership(self._url), report_every_s=15)

    async def close(self) -> None:
        pass


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World({A: Studio({"sce_codeA": "farmA"}), B: Studio({"sce_codeB": "farmB"})})

    async def signed_in(client: Any, identity: Any) -> None:
        pass

    monkeypatch.setattr(fleet_service, "MarketClient", world.client)
    monkeypatch.setattr(fleet_service, "sign_in_with", signed_in)
    return world


def _fleet(world: World, tmp_path: Path) -> tuple[FleetService, list[object]]:
    overlays: list[object] = []
    fleet = FleetService(
        state_file=tmp_path / "fleet.json",
        identity=lambda: None,  # type: ignore[arg-type,return-value]  # the fake sign-in needs no key
        settings=Settings,
        overlay=overlays.append,
        market=world.side,
        switch_market=world.switch,
        status=lambda: None,  # type: ignore[arg-type,return-value]  # the report's body is not looked at here
        today=lambda: (0.0, None),
        version="0.1",
    )
    fleet._report = lambda: None  # type: ignore[assignment,method-assign,return-value]
    return fleet, overlays


def test_a_refused_code_for_another_studio_keeps_the_machine_in_its_group(world: World, tmp_path: Path) -> None:
    fleet, _ = _fleet(world, tmp_path)

    async def scenario() -> None:
        await fleet.join(A, "sce_codeA")
        with pytest.raises(FleetError, match="refused to enrol"):
            await fleet.join(B, "sce_TYPO")
        assert world.studios[A].member == "farmA"  # A was not told the machine leaves
        assert world.market_url == A
        await fleet.report_once()

    asyncio.run(scenario())
    status = fleet.status()
    assert status is not None
    assert status.group == "farmA"
    assert world.studios[B].member is None


def test_an_accepted_code_for_another_studio_leaves_the_first(world: World, tmp_path: Path) -> None:
    fleet, _ = _fleet(world, tmp_path)

    async def scenario() -> None:
        await fleet.join(A, "sce_codeA")
        await fleet.join(B, "sce_codeB")
        await fleet.report_once()

    asyncio.run(scenario())
    assert world.studios[A].member is None
    assert world.studios[B].member == "farmB"
    status = fleet.status()
    assert status is not None
    assert status.group == "farmB"
    assert world.market_url == B


def test_a_machine_the_studio_dropped_takes_work_from_its_owners_marketplace_again(
    world: World, tmp_path: Path
) -> None:
    fleet, overlays = _fleet(world, tmp_path)

    async def scenario() -> None:
        await fleet.join(A, "sce_codeA")
        world.studios[A].member = None  # the studio's operator removed it
        await fleet.report_once()

    asyncio.run(scenario())
    assert fleet.status() is None
    assert overlays[-1] is None  # the owner's own settings apply
    assert world.market_url is None  # the private marketplace, as before joining
    assert not (tmp_path / "fleet.json").exists()


def test_a_dropped_machine_running_a_job_goes_back_once_it_has_finished(world: World, tmp_path: Path) -> None:
    fleet, _ = _fleet(world, tmp_path)

    async def scenario() -> None:
        await fleet.join(A, "sce_codeA")
        world.studios[A].member = None
        world.busy = True
        await fleet.report_once()
        assert world.market_url == A  # the running lease is not cut off
        await fleet.report_once()
        assert world.market_url == A
        world.busy = False
        await fleet.report_once()
        assert world.market_url is None
        switches = len(world.switches)
        await fleet.report_once()
        assert len(world.switches) == switches  # once only

    asyncio.run(scenario())


def test_a_dropped_machine_keeps_a_marketplace_the_owner_chose_meanwhile(world: World, tmp_path: Path) -> None:
    fleet, _ = _fleet(world, tmp_path)

    async def scenario() -> None:
        await fleet.join(A, "sce_codeA")
        world.studios[A].member = None
        world.busy = True
        await fleet.report_once()
        world.busy = False
        world.market_url = "https://own.example"
        await fleet.report_once()

    asyncio.run(scenario())
    assert world.market_url == "https://own.example"


def test_a_join_that_fails_in_any_way_goes_back_to_the_marketplace_it_left(world: World, tmp_path: Path) -> None:
    """Not only a refused code: an identity key that cannot be read (say) must not leave the machine taking work
    from a studio it never joined."""
    fleet, _ = _fleet(world, tmp_path)

    def unreadable() -> Any:
        raise PermissionError("the identity key file is not readable")

    fleet._identity = unreadable  # type: ignore[method-assign]

    async def scenario() -> None:
        with pytest.raises(FleetError, match="cannot join: the identity key file is not readable"):
            await fleet.join(A, "sce_codeA")

    asyncio.run(scenario())
    assert world.market_url is None  # back on the private marketplace
    assert world.switches == [A, None]
    assert fleet.status() is None
    assert world.studios[A].member is None


def test_a_restart_while_the_dropped_machine_runs_a_job_still_goes_back(world: World, tmp_path: Path) -> None:
    fleet, _ = _fleet(world, tmp_path)

    async def dropped_while_busy() -> None:
        await fleet.join(A, "sce_codeA")
        world.studios[A].member = None
        world.busy = True
        await fleet.report_once()
        assert world.market_url == A  # the running lease finishes first

    asyncio.run(dropped_while_busy())
    restarted, _ = _fleet(world, tmp_path)  # the agent starts again, the job still running
    assert restarted.load() is None  # in no group

    async def after_the_restart() -> None:
        await restarted.report_once()
        assert world.market_url == A
        world.busy = False
        await restarted.report_once()

    asyncio.run(after_the_restart())
    assert world.market_url is None  # the private marketplace, as before joining
    assert list(tmp_path.iterdir()) == []  # nothing left to go back to
