"""The operator's tools: find providers and jobs, ban a provider, revoke or rotate a requester's key,
cancel a job, set storage quotas, run output retention, read the audit log, and issue admin tokens.

Each is one transaction on the marketplace's database and leaves an audit entry naming who did it
(``actor``): the CLI on the server's machine, or an admin-API token by its name. The money-moving parts
(cancelling, re-queueing) are the marketplace's own, so they settle exactly as a requester's cancel does.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from sparecycles.agent.market_server import db as tables
from sparecycles.agent.market_server.fleet import Fleet
from sparecycles.agent.market_server.market import (
    Conflict,
    MarketError,
    Marketplace,
    NotFound,
    Unauthorized,
    new_secret,
    sha256_hex,
)
from sparecycles.protocol.admin import (
    AuditEntry,
    CostRow,
    OperatorJobView,
    ProjectQuotaView,
    ProviderSummary,
    RequesterAccount,
)
from sparecycles.protocol.market import JobState, JobView, LeaseState, ProviderView, RequesterView, ServerInfo

log = logging.getLogger(__name__)

CLI_ACTOR = "operator (command line)"
_ENDED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
MAX_LISTED = 1000


class MarketAdmin:
    """What an operator may do to a marketplace; ``actor`` names them in the audit log."""

    def __init__(self, market: Marketplace) -> None:
        self.market = market
        self.fleet = Fleet(market)

    def info(self) -> ServerInfo:
        return self.market.info()

    # -- requesters ------------------------------------------------------------------------------------

    def add_requester(self, name: str, *, actor: str = CLI_ACTOR) -> str:
        return self.market.add_requester(name, actor=actor)

    def credit(self, name: str, amount: int, *, actor: str = CLI_ACTOR) -> RequesterView:
        return self.market.credit(name, amount, actor=actor)

    def set_deposit_address(self, name: str, address: str | None, *, actor: str = CLI_ACTOR) -> RequesterAccount:
        """Name the chain address whose deposits to the payout vault credit this requester (None: none)."""
        self.market.set_deposit_address(name, address, actor=actor)
        return self.account(name)

    def resign_vouchers(self, *, actor: str = CLI_ACTOR) -> int:
        return self.market.resign_vouchers(actor=actor)

    def rotate_key(self, name: str, *, actor: str = CLI_ACTOR) -> str:
        """Give a requester a new API key (shown once); the old one stops working at once in this server process,
        and within ``MarketConfig.auth_cache_s`` (5 s) in the others (and after the `market` CLI)."""
        key = new_secret("scr_")
        with self.market.transaction() as session:
            requester = self._requester(session, name)
            requester.api_key_sha256, requester.key_revoked_at = sha256_hex(key), None
            self.market.record(session, actor, "rotate_key", f"requester:{name}")
            requester_id = requester.id
        self.market.forget_credentials(requester_id=requester_id)
        log.info("Rotated the API key of requester %s", name)
        return key

    def revoke_key(self, name: str, *, actor: str = CLI_ACTOR) -> None:
        """Stop a requester's API key working (its jobs go on; `rotate-key` issues a new key)."""
        with self.market.transaction() as session:
            requester = self._requester(session, name)
            # The hash column stays unique and non-null: a random value no key hashes to.
            requester.api_key_sha256, requester.key_revoked_at = secrets.token_hex(32), self.market.now()
            self.market.record(session, actor, "revoke_key", f"requester:{name}")
            requester_id = requester.id
        self.market.forget_credentials(requester_id=requester_id)
        log.warning("Revoked the API key of requester %s", name)

    def account(self, name: str) -> RequesterAccount:
        with self.market.read() as session:
            return self._account(session, self._requester(session, name))

    def set_quota(self, name: str, quota_bytes: int | None, *, actor: str = CLI_ACTOR) -> RequesterAccount:
        if quota_bytes is not None and quota_bytes < 0:
            raise MarketError("a storage quota is a number of bytes, 0 or more")
        with self.market.transaction() as session:
            requester = self._requester(session, name)
            requester.storage_quota_bytes = quota_bytes
            self.market.record(session, actor, "set_quota", f"requester:{name}", quota_bytes=quota_bytes)
            return self._account(session, requester)

    def set_project_quota(
        self, name: str, project: str, max_base_units: int | None, *, actor: str = CLI_ACTOR
    ) -> ProjectQuotaView | None:
        """Cap what a requester may commit to one project's jobs (None removes the cap)."""
        with self.market.transaction() as session:
            requester = self._requester(session, name)
            row = session.get(tables.ProjectQuota, (requester.id, project))
            if max_base_units is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(
                    tables.ProjectQuota(requester_id=requester.id, project=project, max_base_units=max_base_units)
                )
            else:
                row.max_base_units = max_base_units
            self.market.record(session, actor, "project_quota", f"requester:{name}", max_base_units, project=project)
            if max_base_units is None:
                return None
            return ProjectQuotaView(
                requester=name,
                project=project,
                max_base_units=max_base_units,
                committed_base_units=self.market.project_committed(session, requester.id, project),
            )

    def costs(self, *, by: str = "requester", since: datetime | None = None) -> list[CostRow]:
        """What the jobs created since ``since`` cost, per requester, per project or per requester's project."""
        if by not in ("requester", "project", "requester-project"):
            raise MarketError("costs are reported by requester, project or requester-project")
        query = select(tables.Job, tables.Requester.name).join(
            tables.Requester, tables.Requester.id == tables.Job.requester_id
        )
        if since is not None:
            query = query.where(tables.Job.created_at >= since)
        rows: dict[tuple[str | None, str | None], dict[str, float]] = {}
        with self.market.read() as session:
            jobs = session.execute(query).all()
            paid: dict[str, float] = {}
            ids = [job.id for job, _ in jobs]
            for start in range(0, len(ids), 500):
                for job_id, run_time_ms, units in session.execute(
                    select(tables.Lease.job_id, tables.Lease.run_time_ms, tables.Lease.units).where(
                        tables.Lease.job_id.in_(ids[start : start + 500]), tables.Lease.amount.is_not(None)
                    )
                ):
                    paid[job_id] = paid.get(job_id, 0.0) + (run_time_ms or 0) * units / 3_600_000
        for job, name in jobs:
            key = (
                name if by != "project" else None,
                job.project if by != "requester" else None,
            )
            row = rows.setdefault(key, {"jobs": 0, "completed": 0, "charged": 0, "held": 0, "gpu": 0.0, "core": 0.0})
            row["jobs"] += 1
            row["completed"] += job.state == JobState.COMPLETED
            row["charged"] += job.charged
            row["held"] += job.held if job.state not in _ENDED else 0
            row["gpu" if job.gpus > 0 else "core"] += paid.get(job.id, 0.0)
        return [
            CostRow(
                requester=requester,
                project=project,
                jobs=int(row["jobs"]),
                completed=int(row["completed"]),
                charged_base_units=int(row["charged"]),
                held_base_units=int(row["held"]),
                gpu_hours=round(row["gpu"], 6),
                core_hours=round(row["core"], 6),
            )
            for (requester, project), row in sorted(rows.items(), key=lambda item: (item[0][0] or "", item[0][1] or ""))
        ]

    # -- providers -------------------------------------------------------------------------------------

    def providers(
        self, *, online: bool | None = None, banned: bool | None = None, search: str | None = None, limit: int = 200
    ) -> list[ProviderSummary]:
        """Providers, most recently seen first; ``search`` matches a name or address fragment."""
        now = self.market.now()
        online_after = now - timedelta(seconds=self.market.config.provider_online_s)
        query = select(tables.Provider).order_by(tables.Provider.last_seen_at.desc())
        if online is not None:
            seen = tables.Provider.last_seen_at >= online_after
            query = query.where(seen if online else ~seen)
        if banned is not None:
            query = query.where(
                tables.Provider.banned_at.is_not(None) if banned else tables.Provider.banned_at.is_(None)
            )
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(
                or_(func.lower(tables.Provider.name).like(pattern), func.lower(tables.Provider.address).like(pattern))
            )
        with self.market.read() as session:
            return [
                self._provider_summary(session, provider, online_after)
                for provider in session.scalars(query.limit(min(limit, MAX_LISTED)))
            ]

    def ban(self, address: str, reason: str, *, actor: str = CLI_ACTOR) -> list[str]:
        """Ban a provider: its unfinished leases go back to the queue unpaid, its sessions end, and it
        cannot sign in again until unbanned. Returns the leases taken from it."""
        if not reason.strip():
            raise MarketError("say why the provider is banned: the reason is shown to it when it signs in")
        with self.market.transaction() as session:
            provider = self._provider(session, address)
            provider.banned_at, provider.ban_reason = self.market.now(), reason.strip()[:500]
            for row in session.scalars(select(tables.Session).where(tables.Session.address == provider.address)):
                session.delete(row)
            withdrawn = self.market.withdraw_leases(session, provider.address, "its provider was banned (not paid)")
            self.market.record(
                session, actor, "ban", f"provider:{provider.address}", reason=reason, leases_requeued=withdrawn
            )
        self.market.forget_credentials(provider=address)
        log.warning("Banned provider %s (%s); %d lease(s) requeued", address, reason, len(withdrawn))
        return withdrawn

    def unban(self, address: str, *, actor: str = CLI_ACTOR) -> None:
        with self.market.transaction() as session:
            provider = self._provider(session, address)
            if provider.banned_at is None:
                raise Conflict(f"provider {provider.address} is not banned")
            provider.banned_at, provider.ban_reason = None, None
            self.market.record(session, actor, "unban", f"provider:{provider.address}")
        log.info("Unbanned provider %s", address)

    def set_payout(self, address: str, payout_address: str, *, actor: str = CLI_ACTOR) -> ProviderView:
        return self.market.set_payout_by_operator(address, payout_address, actor=actor)

    # -- jobs ------------------------------------------------------------------------------------------

    def jobs(
        self,
        *,
        state: JobState | None = None,
        requester: str | None = None,
        provider: str | None = None,
        limit: int = 200,
    ) -> list[OperatorJobView]:
        """Jobs, newest first, filtered by state, requester name or a provider that held a lease of them."""
        query = (
            select(tables.Job, tables.Requester.name)
            .join(tables.Requester, tables.Requester.id == tables.Job.requester_id)
            .order_by(tables.Job.created_at.desc())
        )
        if state is not None:
            query = query.where(tables.Job.state == state)
        if requester is not None:
            query = query.where(tables.Requester.name == requester)
        if provider is not None:
            leased = select(tables.Lease.job_id).where(func.lower(tables.Lease.provider_address) == provider.lower())
            query = query.where(tables.Job.id.in_(leased))
        with self.market.read() as session:
            return [
                OperatorJobView(requester=name, job=self.market.job_view(session, job))
                for job, name in session.execute(query.limit(min(limit, MAX_LISTED))).all()
            ]

    def cancel_job(self, job_id: str, *, actor: str = CLI_ACTOR) -> JobView:
        """Cancel any requester's job: running providers are paid their time, the rest of the hold returns."""
        with self.market.transaction() as session:
            job = self.market.job_row(session, job_id, lock=True)
            self.market.cancel_job(session, job, "cancelled by the marketplace's operator")
            self.market.record(session, actor, "cancel_job", f"job:{job_id}")
            return self.market.job_view(session, job)

    def resolve(self, job_id: str, accept: str | None, *, actor: str = CLI_ACTOR) -> JobView:
        return self.market.resolve(job_id, accept, actor=actor)

    def delete_expired_outputs(self, older_than_days: float, *, actor: str = CLI_ACTOR) -> tuple[int, int]:
        if older_than_days < 0:
            raise MarketError("the retention is a number of days, 0 or more")
        return self.market.delete_outputs_older_than(older_than_days, actor=actor)

    # -- the audit log ---------------------------------------------------------------------------------

    def audit(
        self, *, after_id: int = 0, since: datetime | None = None, action: str | None = None, limit: int = MAX_LISTED
    ) -> list[AuditEntry]:
        """Audit entries in the order they were written, after entry ``after_id`` (for paging an export)."""
        query = select(tables.AuditEvent).where(tables.AuditEvent.id > after_id).order_by(tables.AuditEvent.id)
        if since is not None:
            query = query.where(tables.AuditEvent.at >= since)
        if action is not None:
            query = query.where(tables.AuditEvent.action == action)
        with self.market.read() as session:
            return [
                AuditEntry(
                    id=row.id,
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    subject=row.subject,
                    amount_base_units=row.amount,
                    detail=json.loads(row.detail) if row.detail else {},
                )
                for row in session.scalars(query.limit(min(limit, MAX_LISTED)))
            ]

    # -- admin tokens ----------------------------------------------------------------------------------

    def create_token(self, name: str, *, actor: str = CLI_ACTOR) -> str:
        """An admin-API token (``sco_…``), shown once; only its hash is kept."""
        token = new_secret("sco_")
        with self.market.transaction() as session:
            if session.scalar(select(tables.OperatorToken).where(tables.OperatorToken.name == name)) is not None:
                raise Conflict(f"an admin token named {name!r} exists already; revoke it first")
            session.add(tables.OperatorToken(token_sha256=sha256_hex(token), name=name, created_at=self.market.now()))
            self.market.record(session, actor, "create_token", f"token:{name}")
        return token

    def revoke_token(self, name: str, *, actor: str = CLI_ACTOR) -> None:
        with self.market.transaction() as session:
            row = session.scalar(select(tables.OperatorToken).where(tables.OperatorToken.name == name))
            if row is None:
                raise NotFound(f"no admin token named {name!r}")
            session.delete(row)
            self.market.record(session, actor, "revoke_token", f"token:{name}")

    def actor_for_token(self, token: str) -> str:
        """Who an admin-API token belongs to, as the audit log names them."""
        with self.market.read() as session:
            row = session.get(tables.OperatorToken, sha256_hex(token))
            if row is None:
                raise Unauthorized("unknown or revoked admin token; `sparecycles market admin-token NAME` issues one")
            return f"admin token {row.name}"

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _requester(session: Session, name: str) -> tables.Requester:
        requester = session.scalar(select(tables.Requester).where(tables.Requester.name == name).with_for_update())
        if requester is None:
            raise NotFound(f"no requester named {name!r}; `sparecycles market add-requester {name}` adds one")
        return requester

    @staticmethod
    def _provider(session: Session, address: str) -> tables.Provider:
        provider = session.scalar(
            select(tables.Provider).where(func.lower(tables.Provider.address) == address.lower()).with_for_update()
        )
        if provider is None:
            raise NotFound(f"no provider {address} has registered with this marketplace")
        return provider

    def _account(self, session: Session, requester: tables.Requester) -> RequesterAccount:
        quota = requester.storage_quota_bytes
        return RequesterAccount(
            name=requester.name,
            credit_base_units=requester.credit,
            held_base_units=requester.held,
            stored_bytes=self.market.stored_bytes(session, requester.id),
            storage_quota_bytes=self.market.config.storage_quota_bytes if quota is None else quota,
            key_revoked=requester.key_revoked_at is not None,
            deposit_address=requester.deposit_address,
        )

    @staticmethod
    def _provider_summary(session: Session, provider: tables.Provider, online_after: datetime) -> ProviderSummary:
        gpus = session.scalar(
            select(func.count())
            .select_from(tables.ProviderGpu)
            .where(tables.ProviderGpu.provider_address == provider.address, tables.ProviderGpu.offered.is_(True))
        )
        active = session.scalar(
            select(func.count())
            .select_from(tables.Lease)
            .where(tables.Lease.provider_address == provider.address, tables.Lease.state == LeaseState.ACTIVE)
        )
        return ProviderSummary(
            address=provider.address,
            name=provider.name,
            region=provider.region,
            payout_address=provider.payout_address,
            online=provider.last_seen_at >= online_after,
            last_seen_at=provider.last_seen_at,
            offered_gpus=int(gpus or 0),
            offered_cores=provider.offered_cores,
            active_leases=int(active or 0),
            banned=provider.banned_at is not None,
            ban_reason=provider.ban_reason,
        )
