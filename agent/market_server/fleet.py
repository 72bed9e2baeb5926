"""A studio's fleet on its marketplace: groups of machines with a policy, enrolment codes, the machines'
reports, the operator's view and remote actions, and the studio's own jobs preempting outside work.

A machine joins a group with a code (only its hash is kept; it works for many machines until it expires),
then reports its state every ``report_every_s`` and gets back its group's policy and what the operator
asked of it. The marketplace itself honours those requests: a drained machine gets no new lease; a paused
one loses its leases (requeued) and gets none until the time given. Jobs of a studio's requesters carry
the group: only its machines bid on them, and when none is free the tick preempts an outside lease on one.
Every operator action lands in the audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sparecycles.agent.market_server import auction
from sparecycles.agent.market_server import db as tables
from sparecycles.agent.market_server.market import (
    Conflict,
    Forbidden,
    MarketError,
    Marketplace,
    NotFound,
    job_need,
    less_busy,
    new_secret,
    sha256_hex,
)
from sparecycles.protocol.fleet import (
    GROUP_NAME,
    EnrolCode,
    FleetDirective,
    FleetGpu,
    FleetMachine,
    FleetReport,
    GroupPolicy,
    GroupView,
    Membership,
)
from sparecycles.protocol.market import JobState, LeaseState

log = logging.getLogger(__name__)

MAX_ENROL_S = 30 * 24 * 3600.0
MAX_PAUSE = timedelta(days=30)


class Fleet:
    def __init__(self, market: Marketplace) -> None:
        self.market = market

    @property
    def report_every_s(self) -> float:
        return self.market.config.fleet_report_s

    # -- the operator ----------------------------------------------------------------------------------

    def set_policy(self, group: str, policy: GroupPolicy, *, actor: str) -> GroupView:
        """Set a group's policy (creating the group if new); machines apply it at their next report."""
        _check_group_name(group)
        with self.market.transaction() as session:
            row = session.get(tables.Group, group, with_for_update=True)
            if row is None:
                row = tables.Group(name=group, policy_version=0, created_at=self.market.now())
                session.add(row)
            row.policy_json, row.outside_jobs = policy.model_dump_json(), policy.outside_jobs
            row.policy_version += 1
            self.market.record(
                session, actor, "group_policy", f"group:{group}", version=row.policy_version, **policy.model_dump()
            )
            session.flush()
            return self._group_view(session, row)

    def groups(self) -> list[GroupView]:
        with self.market.read() as session:
            return [
                self._group_view(session, row)
                for row in session.scalars(select(tables.Group).order_by(tables.Group.name))
            ]

    def enrol_code(self, group: str, expires_s: float, *, actor: str) -> EnrolCode:
        """A new code for machines to join ``group`` with (creating the group, with no policy, if new)."""
        _check_group_name(group)
        if not 60 <= expires_s <= MAX_ENROL_S:
            raise MarketError("an enrolment code expires after 1 minute to 30 days")
        code = new_secret("sce_")
        now = self.market.now()
        with self.market.transaction() as session:
            if session.get(tables.Group, group) is None:
                session.add(
                    tables.Group(
                        name=group,
                        policy_json=GroupPolicy().model_dump_json(),
                        policy_version=1,
                        outside_jobs=True,
                        created_at=now,
                    )
                )
                session.flush()
            expires_at = now + timedelta(seconds=expires_s)
            session.add(
                tables.EnrolCode(
                    code_sha256=sha256_hex(code),
                    group_name=group,
                    expires_at=expires_at,
                    created_at=now,
                    created_by=actor,
                )
            )
            self.market.record(session, actor, "enrol_code", f"group:{group}", expires_at=expires_at)
        log.info("Enrolment code for group %s made by %s, valid until %s", group, actor, expires_at)
        return EnrolCode(group=group, code=code, expires_at=expires_at)

    def revoke_enrol_codes(self, group: str, *, actor: str) -> int:
        """End every enrolment code of ``group`` that still works, now: a code that leaked would otherwise enrol
        machines until it expires (up to 30 days). Only hashes are kept, so a group's codes end together; machines
        that joined stay. Returns how many codes ended."""
        _check_group_name(group)
        now = self.market.now()
        with self.market.transaction() as session:
            if session.get(tables.Group, group) is None:
                raise NotFound(f"no group named {group}: `sparecycles market groups` lists them")
            working = session.scalars(
                select(tables.EnrolCode).where(tables.EnrolCode.group_name == group, tables.EnrolCode.expires_at > now)
            ).all()
            for code in working:
                code.expires_at = now
            self.market.record(session, actor, "revoke_enrol_codes", f"group:{group}", codes=len(working))
        log.info("%d enrolment code(s) of group %s revoked by %s", len(working), group, actor)
        return len(working)

    def set_requester_group(self, name: str, group: str | None, *, actor: str) -> None:
        """Make a requester one of the studio's own (its new jobs run on the group's machines first), or not."""
        with self.market.transaction() as session:
            requester = session.scalar(select(tables.Requester).where(tables.Requester.name == name))
            if requester is None:
                raise NotFound(f"no requester named {name}")
            if group is not None and session.get(tables.Group, group) is None:
                raise NotFound(f"no group named {group}: `sparecycles market group-policy {group}` creates it")
            requester.group_name = group
            self.market.record(session, actor, "requester_group", f"requester:{name}", group=group)

    def machines(self, group: str | None = None) -> list[FleetMachine]:
        """Every machine in a group (or in any group), most recently seen first."""
        now = self.market.now()
        online_after = now - timedelta(seconds=self.market.config.provider_online_s)
        query = select(tables.Provider).order_by(tables.Provider.last_seen_at.desc())
        query = query.where(
            tables.Provider.group_name == group if group is not None else tables.Provider.group_name.is_not(None)
        )
        with self.market.read() as session:
            providers = session.scalars(query).all()
            jobs: dict[str, list[str]] = {}
            for address, job_id in session.execute(
                select(tables.Lease.provider_address, tables.Lease.job_id).where(
                    tables.Lease.state == LeaseState.ACTIVE,
                    tables.Lease.provider_address.in_([provider.address for provider in providers]),
                )
            ):
                jobs.setdefault(address, []).append(job_id)
            return [
                self._machine(provider, jobs.get(provider.address, []), online_after, now) for provider in providers
            ]

    def drain(self, address: str, drain: bool, *, actor: str) -> FleetMachine:
        """Drain a machine (it finishes its leases and gets no new one), or take it back into work."""
        with self.market.transaction() as session:
            provider = self._member(session, address)
            provider.drain = drain
            self.market.record(session, actor, "drain" if drain else "undrain", f"provider:{provider.address}")
        log.info("%s %s", "Draining" if drain else "No longer draining", address)
        return self._one(address)

    def pause(self, address: str, until: datetime | None, *, actor: str) -> FleetMachine:
        """Pause a machine until ``until``: its leases go back to the queue (unpaid, as preempted) and it gets no
        new one until then; None resumes it now."""
        now = self.market.now()
        if until is not None and (until.tzinfo is None or until <= now or until - now > MAX_PAUSE):
            raise MarketError("pause until a time with its zone, in the future and within 30 days")
        freed = False
        with self.market.transaction() as session:
            provider = self._member(session, address)
            provider.paused_until = until
            taken: list[str] = []
            if until is not None:
                taken = self._preempt(
                    session, self._active_leases(session, provider.address), "its studio paused the machine"
                )
                freed = bool(taken)
            self.market.record(
                session,
                actor,
                "pause" if until else "unpause",
                f"provider:{provider.address}",
                until=until,
                leases_requeued=taken,
            )
        if freed:
            self.market.on_freed(address)
        return self._one(address)

    # -- the machines ----------------------------------------------------------------------------------

    def join(self, address: str, code: str) -> Membership:
        now = self.market.now()
        with self.market.transaction() as session:
            enrol = session.get(tables.EnrolCode, sha256_hex(code))
            if enrol is None or enrol.expires_at <= now:
                raise Forbidden("this enrolment code is unknown or expired: ask the studio's operator for a new one")
            provider = session.get(tables.Provider, address, with_for_update=True)
            if provider is None:
                raise NotFound("register this machine first (PUT /v1/provider), then join")
            if provider.group_name is not None and provider.group_name != enrol.group_name:
                self.market.record(session, f"provider:{address}", "leave_group", f"group:{provider.group_name}")
            if provider.group_name != enrol.group_name:  # a machine moving in starts afresh; one rejoining its own
                provider.drain, provider.paused_until = False, None  # group keeps the operator's drain and pause
            provider.group_name = enrol.group_name
            self.market.record(session, f"provider:{address}", "join_group", f"group:{enrol.group_name}")
            group = session.get(tables.Group, enrol.group_name)
            assert group is not None  # noqa: S101 - a code's group is never removed
            log.info("Provider %s joined group %s", address, group.name)
            return self._membership(group)

    def leave(self, address: str) -> FleetDirective:
        with self.market.transaction() as session:
            provider = self.market.provider_row(session, address, lock=True)
            if provider.group_name is None:
                raise Conflict("this machine is in no group here")
            self.market.record(session, f"provider:{address}", "leave_group", f"group:{provider.group_name}")
            provider.group_name, provider.drain, provider.paused_until = None, False, None
        log.info("Provider %s left its group", address)
        return FleetDirective(membership=None, report_every_s=self.report_every_s)

    def report(self, address: str, report: FleetReport) -> FleetDirective:
        """Keep a machine's report and answer with its group's policy and the operator's requests."""
        now = self.market.now()
        with self.market.transaction() as session:
            provider = self.market.provider_row(session, address)
            provider.fleet_report_json = report.model_dump_json()
            provider.agent_version = report.agent_version
            provider.reported_at = provider.last_seen_at = now
            group = session.get(tables.Group, provider.group_name) if provider.group_name is not None else None
            paused = (
                provider.paused_until if provider.paused_until is not None and provider.paused_until > now else None
            )
            return FleetDirective(
                membership=self._membership(group) if group is not None else None,
                drain=provider.drain,
                paused_until=paused,
                report_every_s=self.report_every_s,
            )

    # -- the studio's own jobs first -------------------------------------------------------------------

    def preempt_for_studio_jobs(self, now: datetime) -> int:
        """For each studio job that found no free machine of its group in a bidding window, take outside leases
        off one machine of the group that can run it once they are gone (requeued, unpaid: the studio reclaimed
        its machine). Returns how many leases were taken back."""
        online_after = now - timedelta(seconds=self.market.config.provider_online_s)
        freed: set[str] = set()
        taken = 0
        with self.market.transaction() as session:
            waiting = session.scalars(
                select(tables.Job)
                .where(
                    tables.Job.state == JobState.QUEUED,
                    tables.Job.group_name.is_not(None),
                    tables.Job.round > 0,  # one window closed without a free machine of the group
                )
                .order_by(tables.Job.priority.desc(), tables.Job.created_at)
                .limit(self.market.config.auction_batch)
            ).all()
            for job in waiting:
                address, leases = self._machine_to_free(session, job, online_after, now, exclude=freed)
                if address is None:
                    continue
                taken += len(self._preempt(session, leases, f"preempted by studio job {job.id}"))
                freed.add(address)
                log.info("Studio job %s: outside work on %s preempted", job.id, address)
        for address in freed:
            self.market.on_freed(address)
        return taken

    def _machine_to_free(
        self, session: Session, job: tables.Job, online_after: datetime, now: datetime, *, exclude: set[str]
    ) -> tuple[str | None, list[tables.Lease]]:
        """A machine of the job's group that could run it if some of its outside leases ended, and those leases
        (None when a machine of the group is free for it already, or none can be freed)."""
        need = job_need(job)
        members = session.scalars(
            select(tables.Provider).where(
                tables.Provider.group_name == job.group_name,
                tables.Provider.last_seen_at >= online_after,
                tables.Provider.banned_at.is_(None),
                tables.Provider.drain.is_(False),
            )
        ).all()
        choices: list[tuple[int, str, list[tables.Lease]]] = []
        for provider in members:
            if provider.address in exclude or (provider.paused_until is not None and provider.paused_until > now):
                continue
            active = self._active_leases(session, provider.address)
            offered = self._offered(session, provider)
            if auction.qualifies(less_busy(offered, active), need):
                return None, []  # a member is free for it: its next poll bids
            outside = [lease for lease in active if self._job_group(session, lease.job_id) != job.group_name]
            if not outside:
                continue
            if auction.qualifies(less_busy(offered, [lease for lease in active if lease not in outside]), need):
                choices.append((len(outside), provider.address, outside))
        if not choices:
            return None, []
        _, address, leases = min(choices, key=lambda choice: (choice[0], choice[1]))
        return address, leases

    def _preempt(self, session: Session, leases: Sequence[tables.Lease], reason: str) -> list[str]:
        now = self.market.now()
        for lease in leases:
            lease.cancel_requested = True
            self.market.take_back(session, lease, LeaseState.PREEMPTED, reason, why_queued=reason, now=now)
        return [lease.id for lease in leases]

    # -- reading ---------------------------------------------------------------------------------------

    @staticmethod
    def _offered(session: Session, provider: tables.Provider) -> auction.Capacity:
        """What the provider offers, before its leases are taken off (``less_busy`` does that)."""
        gpus = tuple(
            auction.GpuOffer(gpu.uuid, gpu.vram_bytes, gpu.score)
            for gpu in session.scalars(
                select(tables.ProviderGpu).where(
                    tables.ProviderGpu.provider_address == provider.address, tables.ProviderGpu.offered.is_(True)
                )
            )
        )
        return auction.Capacity(
            provider.address, provider.floor_per_gpu_hour, provider.floor_per_core_hour, gpus, provider.offered_cores
        )

    @staticmethod
    def _active_leases(session: Session, address: str) -> list[tables.Lease]:
        return list(
            session.scalars(
                select(tables.Lease)
                .where(tables.Lease.provider_address == address, tables.Lease.state == LeaseState.ACTIVE)
                .with_for_update()
            )
        )

    @staticmethod
    def _job_group(session: Session, job_id: str) -> str | None:
        return session.scalar(select(tables.Job.group_name).where(tables.Job.id == job_id))

    def _member(self, session: Session, address: str) -> tables.Provider:
        provider = self.market.provider_row(session, address, lock=True)  # a pause or drain waits for an auction
        if provider.group_name is None:
            raise Conflict(f"machine {provider.address} is in no studio group")
        return provider

    def _one(self, address: str) -> FleetMachine:
        found = [machine for machine in self.machines() if machine.address.lower() == address.lower()]
        if not found:
            raise NotFound(f"machine {address} is in no studio group")
        return found[0]

    def _membership(self, group: tables.Group) -> Membership:
        return Membership(
            studio=self.market.config.name,
            group=group.name,
            policy=GroupPolicy.model_validate_json(group.policy_json),
            policy_version=group.policy_version,
        )

    @staticmethod
    def _group_view(session: Session, row: tables.Group) -> GroupView:
        machines = session.scalar(
            select(func.count()).select_from(tables.Provider).where(tables.Provider.group_name == row.name)
        )
        return GroupView(
            name=row.name,
            policy=GroupPolicy.model_validate_json(row.policy_json),
            policy_version=row.policy_version,
            machines=int(machines or 0),
        )

    @staticmethod
    def _machine(provider: tables.Provider, jobs: list[str], online_after: datetime, now: datetime) -> FleetMachine:
        report = FleetReport.model_validate_json(provider.fleet_report_json) if provider.fleet_report_json else None
        paused = provider.paused_until if provider.paused_until is not None and provider.paused_until > now else None
        reported_today = provider.reported_at is not None and provider.reported_at.date() == now.date()
        return FleetMachine(
            address=provider.address,
            name=provider.name,
            group=provider.group_name,
            online=provider.last_seen_at >= online_after,
            last_seen_at=provider.last_seen_at,
            agent_version=provider.agent_version,
            state=report.state if report is not None else None,
            reason=report.reason if report is not None else None,
            gpus=list(report.gpus) if report is not None else list[FleetGpu](),
            jobs=sorted(jobs),
            gpu_hours_today=report.gpu_hours_today if report is not None and reported_today else 0.0,
            energy_kwh_today=report.energy_kwh_today if report is not None and reported_today else None,
            reported_at=provider.reported_at,
            drain=provider.drain,
            paused_until=paused,
            policy_version=report.policy_version if report is not None else None,
        )


def _check_group_name(name: str) -> None:
    """A group is named as the protocol allows (its routes check their path, the operator's CLI does not): a name
    outside it was stored, and then every membership and listing of groups failed to build."""
    if not re.fullmatch(GROUP_NAME, name):
        raise MarketError(
            f"{name!r} is not a group name: 1 to 63 letters, digits, spaces, '_', '.' or '-', starting with a "
            "letter or digit"
        )
