"""The machine's side of a studio fleet: join a group with an enrolment code, apply the group's policy
without a restart, report the machine's state to the studio, and leave.

Only a machine that joined a group reports its state: a public marketplace never hears why a home
gamer's GPU is paused. The membership is kept in ``state/fleet.json`` so that after a restart the group's
policy applies before the marketplace answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from sparecycles.agent.fleet.policy import apply_group_policy
from sparecycles.agent.market.client import MarketClient, MarketError, MarketRefused
from sparecycles.agent.market.provider import sign_in_with
from sparecycles.config import Settings
from sparecycles.control.models import FleetApplied, FleetStatus, StatusDocument
from sparecycles.fileio import atomic_write_text
from sparecycles.protocol.fleet import FleetDirective, FleetGpu, FleetReport, Membership

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)

DEFAULT_REPORT_EVERY_S = 15.0


class FleetError(Exception):
    """Joining or leaving cannot go on; the message says why and what to do."""


class _Kept(BaseModel):
    """What ``state/fleet.json`` holds."""

    model_config = ConfigDict(extra="ignore")

    url: str
    membership: Membership
    previous_url: str | None = None  # the marketplace before joining (None: the private one)
    drain: bool = False
    paused_until: datetime | None = None

    @field_validator("paused_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A time kept before directives had to carry their offset (a naive one broke every status after a
        restart) is read as UTC, so the membership it belongs to is kept rather than dropped as damaged."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class _Return(BaseModel):
    """The owner's marketplace to go back to once no job runs (``url`` None: the private one), from the studio's
    (``studio``) that joining had switched to. Kept in a file beside the membership's: an agent restarted while
    the dropped machine's last studio job ran must still go back."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str | None
    studio: str


def _store(path: Path, state: BaseModel | None) -> None:
    """Keep ``state`` in ``path`` (in one step, in a private folder), or remove the file for None."""
    if state is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(path, state.model_dump_json(indent=1) + "\n")


@dataclass
class MarketSide:
    """What the fleet needs of the agent's marketplace connection now."""

    url: str | None  # None: the private marketplace
    client: MarketClient | None
    signed_in: bool
    busy: bool  # a lease is running
    problem: str | None = None  # why it takes no work, in words


class FleetService:
    def __init__(
        self,
        *,
        state_file: Path,
        identity: Callable[[], LocalAccount],
        settings: Callable[[], Settings],
        overlay: Callable[[Callable[[Settings], Settings] | None], None],
        market: Callable[[], MarketSide],
        switch_market: Callable[[str | None], Awaitable[None]],
        status: Callable[[], StatusDocument],
        today: Callable[[], tuple[float, float | None]],
        version: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._file = state_file
        self._return_file = state_file.with_name(state_file.stem + "-return.json")
        self._identity = identity
        self._settings = settings
        self._overlay = overlay
        self._market = market
        self._switch_market = switch_market
        self._status = status
        self._today = today
        self._version = version
        self._clock = clock
        self._kept: _Kept | None = None
        # Set when the studio dropped this machine while a job ran: the owner's marketplace is taken back once idle.
        self._return_to: _Return | None = None
        self._report_every_s = DEFAULT_REPORT_EVERY_S
        self._wake = asyncio.Event()
        self.problem: str | None = None
        self.last_report_at: datetime | None = None

    # -- the kept membership ---------------------------------------------------------------------------

    @property
    def _return(self) -> _Return | None:
        return self._return_to

    @_return.setter
    def _return(self, back: _Return | None) -> None:
        """Remember (or forget) the marketplace to go back to, in memory and in its file."""
        self._return_to = back
        _store(self._return_file, back)

    def _load_return(self) -> None:
        try:
            self._return_to = _Return.model_validate_json(self._return_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValidationError, ValueError) as exc:
            log.warning(
                "The marketplace to go back to, in %s, cannot be read (%s): it stays as it is", self._return_file, exc
            )
            return
        log.info(
            "Taking work from %s again once no job runs, as before joining the studio",
            self._return_to.url or "the private marketplace",
        )

    def load(self) -> Callable[[Settings], Settings] | None:
        """Read the kept membership; returns the overlay of its policy, for the agent to start with (before
        the marketplace answers again), or None outside a group."""
        self._load_return()
        try:
            self._kept = _Kept.model_validate_json(self._file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, ValueError) as exc:
            log.warning(
                "The studio membership in %s cannot be read (%s): this machine is in no group now", self._file, exc
            )
            return None
        log.info("Member of studio group %s at %s", self._kept.membership.group, self._kept.url)
        return self._policy_overlay()

    def _keep(self, kept: _Kept | None) -> None:
        self._kept = kept
        _store(self._file, kept)

    def _policy_overlay(self) -> Callable[[Settings], Settings] | None:
        if self._kept is None:
            return None
        policy = self._kept.membership.policy
        return lambda own: apply_group_policy(own, policy)

    def _apply_policy(self) -> None:
        self._overlay(self._policy_overlay())

    # -- join and leave --------------------------------------------------------------------------------

    async def join(self, url: str, code: str) -> Membership:
        """Join the group of ``code`` on the marketplace at ``url``, and take work from it from now on."""
        url = url.rstrip("/")
        side = self._market()
        switching = _normal(side.url) != url
        if switching and side.busy:
            raise FleetError(
                f"a job from {side.url or 'the private marketplace'} is running: join once it has finished "
                "(or after `sparecycles pause` has stopped it)"
            )
        if self._kept is not None:
            previous = self._kept.previous_url
        else:
            previous = self._return.url if self._return is not None else side.url
        earlier = self._kept
        if switching:  # the studio's marketplace knows a machine once it has signed in and registered there
            await self._switch_market(url)
        try:
            await self._registered(url)
            membership = await self._enrol(url, code)
        except BaseException as exc:  # whatever stopped the join (a cancel too), the machine goes back where it was
            if switching:
                await self._switch_market(side.url)
            if isinstance(exc, Exception) and not isinstance(exc, FleetError):
                raise FleetError(f"cannot join: {exc}") from exc
            raise
        self._keep(_Kept(url=url, membership=membership, previous_url=previous))
        self._return = None
        self._apply_policy()
        log.info("Joined studio group %s at %s", membership.group, url)
        if earlier is not None and earlier.url != url:
            # One studio at a time; told only now that the new one accepted the code, as a refused code
            # must leave the machine in the group it was in.
            await self._tell_left(earlier)
        self._wake.set()
        return membership

    async def _registered(self, url: str, timeout_s: float = 30.0) -> None:
        """Wait until the agent has signed in to ``url`` and registered the machine there."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (side := self._market()).signed_in:
            if loop.time() > deadline:
                why = side.problem or "it did not answer in time"
                raise FleetError(f"this machine could not sign in to {url}: {why}")
            await asyncio.sleep(0.2)

    async def _enrol(self, url: str, code: str) -> Membership:
        client = MarketClient(url)
        try:
            identity = await asyncio.to_thread(self._identity)
            await sign_in_with(client, identity)
            return await client.join_group(code)
        except MarketRefused as exc:
            raise FleetError(f"the marketplace at {url} refused to enrol this machine: {exc.detail}") from None
        except MarketError as exc:
            raise FleetError(f"cannot join: {exc}") from None
        finally:
            await client.close()

    async def leave(self) -> str:
        """Leave the group: the machine's own settings apply again (and its earlier marketplace, where joining
        changed it). Returns the group left."""
        kept = self._kept
        if kept is None:
            raise FleetError("this machine is in no studio group")
        side = self._market()
        switching = kept.previous_url != kept.url
        if switching and side.busy:
            raise FleetError("a studio job is running: leave once it has finished (or after `sparecycles pause`)")
        await self._tell_left(kept)
        self._keep(None)
        self._apply_policy()
        if switching:
            await self._switch_market(kept.previous_url)
        log.info("Left studio group %s", kept.membership.group)
        return kept.membership.group

    async def _tell_left(self, kept: _Kept) -> None:
        """Tell the studio's marketplace that this machine leaves its group (best effort: the machine leaves anyway,
        and an operator sees it go offline)."""
        client = MarketClient(kept.url)
        try:
            identity = await asyncio.to_thread(self._identity)
            await sign_in_with(client, identity)
            await client.leave_group()
        except MarketError as exc:
            log.warning("The studio's marketplace was not told that this machine left (%s)", exc)
        finally:
            await client.close()

    # -- reporting -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Report to the studio and apply its answer, every ``report_every_s`` it asks for (cancel to stop)."""
        wait_s = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
            self._wake.clear()
            try:
                reported = await self.report_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the reports
                log.exception("The fleet report failed")
                reported = True
            # A member not signed in yet looks again in a second: it hears of its policy right after signing in.
            wait_s = self._report_every_s if reported or self._kept is None else 1.0

    async def report_once(self) -> bool:
        """Report once, if in a group and signed in to its marketplace; whether a report was attempted."""
        kept, side = self._kept, self._market()
        if kept is None:
            await self._return_when_idle()
            return False
        if side.client is None or not side.signed_in or _normal(side.url) != kept.url:
            return False
        try:
            directive = await side.client.fleet_report(await asyncio.to_thread(self._report))
        except MarketError as exc:
            if self.problem != str(exc):
                log.info("The studio did not get this machine's report: %s", exc)
            self.problem = str(exc)
            return True
        self.problem = None
        self.last_report_at = self._clock()
        self._follow(kept, directive)
        await self._return_when_idle()
        return True

    def _report(self) -> FleetReport:
        status = self._status()
        gpu_hours, energy_kwh = self._today()
        kept = self._kept
        return FleetReport(
            agent_version=self._version[:40],
            state=status.state.value,
            reason=status.reason[:500],
            gpus=[
                FleetGpu(index=gpu.index, name=gpu.name[:100], state=gpu.state.value, reason=gpu.reason[:500])
                for gpu in status.gpus[:64]
            ],
            gpu_hours_today=gpu_hours,
            energy_kwh_today=energy_kwh,
            policy_version=kept.membership.policy_version if kept is not None else None,
        )

    def _follow(self, kept: _Kept, directive: FleetDirective) -> None:
        self._report_every_s = max(1.0, min(300.0, directive.report_every_s))
        if directive.membership is None:
            log.warning(
                "The studio's marketplace no longer counts this machine in group %s: its own settings apply",
                kept.membership.group,
            )
            self._keep(None)
            self._apply_policy()
            if _normal(kept.previous_url) != kept.url:  # joining changed the marketplace: the owner's comes back
                self._return = _Return(url=kept.previous_url, studio=kept.url)
            return
        renewed = kept.model_copy(
            update={
                "membership": directive.membership,
                "drain": directive.drain,
                "paused_until": directive.paused_until,
            }
        )
        if renewed != kept:
            if renewed.membership != kept.membership:
                log.info(
                    "Studio group %s: policy version %d applied",
                    renewed.membership.group,
                    renewed.membership.policy_version,
                )
            self._keep(renewed)
            if renewed.membership != kept.membership:
                self._apply_policy()

    async def _return_when_idle(self) -> None:
        """Take back the owner's marketplace after the studio dropped this machine, as :meth:`leave` does; a
        running lease finishes first (it is checked again at every report until none runs)."""
        back = self._return
        if back is None:
            return
        side = self._market()
        if _normal(side.url) != back.studio:  # the owner chose a marketplace meanwhile: theirs stays
            self._return = None
            return
        if side.busy:
            return
        self._return = None
        log.info("Taking work from %s again, as before joining the studio", back.url or "the private marketplace")
        await self._switch_market(back.url)

    def status(self) -> FleetStatus | None:
        kept = self._kept
        if kept is None:
            return None
        current = self._settings()
        membership = kept.membership
        now = self._clock()
        paused_until = kept.paused_until if kept.paused_until is not None and kept.paused_until > now else None
        return FleetStatus(
            url=kept.url,
            studio=membership.studio,
            group=membership.group,
            note=f"schedule set by {membership.studio} (group {membership.group})",
            policy=membership.policy,
            policy_version=membership.policy_version,
            applied=FleetApplied(
                work_mode=current.work.mode,
                schedule_windows=list(current.schedule.windows),
                idle_threshold=current.work.idle_threshold,
                max_temperature_c=current.gpu.max_temperature_c,
                power_limit_percent=current.gpu.power_limit_percent,
            ),
            drain=kept.drain,
            paused_until=paused_until,
            last_report_at=self.last_report_at,
            problem=self.problem,
        )


def _normal(url: str | None) -> str | None:
    return url.rstrip("/") if url is not None else None
