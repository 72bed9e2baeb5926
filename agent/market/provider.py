"""The agent as a marketplace provider: sign in, offer what the policy allows, run won leases, report.

One loop (:meth:`MarketProvider.run`) keeps the connection: it signs in with the machine identity key,
registers the machine and its price floors, tells the marketplace what it offers now (the GPUs the
policy lets work, and CPU cores while the machine may work), long-polls for leases, and sends what
the outbox holds. Each lease it accepts runs through the job runtime with its own heartbeat task;
its result is signed, written to the outbox, and sent until acknowledged. Vouchers are checked
against the pinned operator before they count. Network trouble, a restarting marketplace or a
malformed answer is logged and retried with backoff; it never ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sparecycles.agent.chain.client import ChainError
from sparecycles.agent.chain.trust import TrustedVault
from sparecycles.agent.jobs.runtime import JobResult, JobRuntime, JobState, Lease
from sparecycles.agent.ledger.store import JobEnd, JobStart
from sparecycles.agent.market.client import (
    Backoff,
    ForeignChallenge,
    MarketClient,
    MarketError,
    MarketRefused,
    MarketUnavailable,
)
from sparecycles.agent.market.outbox import Outbox, PendingReport
from sparecycles.agent.market.vouchers import VoucherBook
from sparecycles.agent.tasks import reap
from sparecycles.fileio import atomic_write_text
from sparecycles.protocol.job_refusal import JobRefused, ProviderLimits, check_limits
from sparecycles.protocol.market import (
    GpuInfo,
    Heartbeat,
    LeaseOffer,
    LeaseState,
    MarketPrices,
    Offer,
    Outcome,
    OutputFile,
    PayoutChange,
    ProviderRegistration,
    RelayAck,
    ResultReport,
    ServerInfo,
    SignedResultReport,
    payout_change_message,
)
from sparecycles.protocol.signing import VoucherTerms, challenge_problem, sign_in_message, sign_text

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)

POLL_WAIT_S = 10.0
VOUCHER_REFRESH_S = 60.0
PRICE_CHECK_S = 60.0
_UNPAID_FOR_GOOD = frozenset(
    {LeaseState.REJECTED, LeaseState.LOST, LeaseState.PREEMPTED, LeaseState.FAILED, LeaseState.CANCELLED}
)
_OUTCOMES: Mapping[JobState, Outcome] = {
    JobState.FINISHED: "finished",
    JobState.FAILED: "failed",
    JobState.PREEMPTED: "preempted",
    JobState.INTERRUPTED: "interrupted",
}


@dataclass(frozen=True)
class MachineOffer:
    """What this machine offers now, from the policy: GPUs (UUID → index) and whole CPU cores."""

    gpus: Mapping[str, int]
    cpu_cores: int

    def to_protocol(self) -> Offer:
        return Offer(gpu_uuids=sorted(self.gpus), cpu_cores=self.cpu_cores)


@dataclass(frozen=True)
class ProviderSetup:
    """What the provider needs to know of its owner's choices and its machine, read at each use."""

    payout_address: str | None
    price_floor_per_gpu_hour: int
    price_floor_per_core_hour: int
    region: str
    gpus: tuple[GpuInfo, ...]
    limits: ProviderLimits
    operator_address: str | None = None
    floor_basis: str | None = None  # what the floors are made of, in words ("electricity 0.09 EUR/GPU-hour + 20 %")
    floor_incomplete: bool = False  # the floors leave the electricity out (``floor_basis`` says why)


def voucher_terms(info: ServerInfo, operator: str, trusted: TrustedVault | None, payout_address: str) -> VoucherTerms:
    """What a voucher must be to count: with a payout vault configured, for that vault on its chain and signed by
    its current signer (the key it pays for); else for the marketplace's contract, signed by the pinned operator."""
    if trusted is not None:
        return VoucherTerms(trusted.signer, trusted.chain_id, trusted.address, payout_address)
    return VoucherTerms(operator, info.chain_id, info.voucher_contract, payout_address)


class PayoutKeyMissing(Exception):
    """The current payout address's key, needed to sign a change of it, is not on this machine."""


class LeaseLedger(Protocol):
    """What the provider records in the agent's ledger (agent/ledger/store.py); each call commits."""

    def job_started(self, start: JobStart) -> None: ...
    def job_ended(self, end: JobEnd) -> None: ...
    def credited(self, job_id: str, amount: int, paid_cumulative: int, payout_address: str, at: datetime) -> bool: ...
    def voucher_covers(self, payout_address: str, cumulative: int, voucher_ref: str, at: datetime) -> int: ...
    def uncredited_jobs(self, limit: int = 50) -> list[str]: ...


class MarketProvider:
    def __init__(
        self,
        *,
        client: MarketClient,
        identity: LocalAccount,
        runtime: JobRuntime,
        setup: Callable[[], ProviderSetup],
        offer: Callable[[], MachineOffer],
        state_dir: Path,
        poll_wait_s: float = POLL_WAIT_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        backoff: Backoff | None = None,
        ledger: LeaseLedger | None = None,
        vault_trust: Callable[[], TrustedVault | None] | None = None,
    ) -> None:
        self._client = client
        self._vault_trust = vault_trust  # with a payout vault configured: its address and current signer
        self._ledger = ledger
        self._identity = identity
        self._runtime = runtime
        self._setup = setup
        self._offer = offer
        self._state_dir = state_dir
        self._poll_wait_s = poll_wait_s
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._outbox = Outbox(state_dir / "outbox")
        self.vouchers = VoucherBook(state_dir / "voucher.json")
        self._info: ServerInfo | None = None
        self._operator: str | None = None
        self._signed_in = False
        self._offered: MachineOffer | None = None
        self._leases: dict[str, asyncio.Task[None]] = {}
        # Every lease taken, running or done: a marketplace may offer a lease again until it hears a
        # heartbeat, and a job that ended before its first heartbeat must not run twice.
        self._taken: deque[str] = deque(maxlen=4096)
        self._offer_changed = asyncio.Event()
        self._sending = asyncio.Lock()  # one sender at a time: a report is never in flight twice
        self._last_voucher_check = -math.inf
        self._last_price_check = -math.inf
        self._registered_floors: tuple[int, int] | None = None
        self._registered_gpus: tuple[GpuInfo, ...] | None = None
        self.registered_payout: str | None = None  # where the marketplace pays this machine's earnings now
        self.problem: str | None = "not connected yet"
        self._price_note: str | None = None  # the market pays less than the floor, in words

    @property
    def address(self) -> str:
        return str(self._identity.address)

    @property
    def signed_in(self) -> bool:
        return self._signed_in

    @property
    def price_note(self) -> str | None:
        """'market pays less than your electricity…' while the machine waits for work it would take; nothing while
        it works (the note of the last check, up to a minute old, would say otherwise)."""
        return None if self._leases else self._price_note

    @property
    def active_leases(self) -> int:
        return len(self._leases)

    def offer_may_have_changed(self) -> None:
        """The policy's decisions changed: re-offer now rather than after the current long poll."""
        self._offer_changed.set()

    # -- the loop --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected and take work, for ever (cancel to stop). Never raises otherwise."""
        while True:
            try:
                await self._round()
                self._backoff.reset()
                if self.problem is not None:
                    log.info("Connected to the marketplace at %s", self._client.base_url)
                self.problem = None
            except asyncio.CancelledError:
                raise
            except MarketRefused as exc:
                if exc.status == 401:
                    self._signed_in = False
                await self._trouble(str(exc))
            except MarketError as exc:
                self._signed_in = self._signed_in and not isinstance(exc, MarketUnavailable)
                await self._trouble(str(exc))
            except Exception as exc:  # a bug must not end the provider: log it, wait, go on
                log.exception("The marketplace loop failed")
                await self._trouble(f"internal error: {exc}")

    async def _trouble(self, problem: str) -> None:
        delay = self._backoff.next_delay()
        if problem != self.problem:
            log.warning("Marketplace: %s (trying again in %.0f s)", problem, delay)
        self.problem = problem
        await asyncio.sleep(delay)

    async def _round(self) -> None:
        setup = self._setup()
        if setup.payout_address is None:
            self.problem = "no payout address set (marketplace.payout_address): taking no marketplace work"
            await asyncio.sleep(self._poll_wait_s)
            return
        if not self._signed_in:
            await self._connect(setup)
        elif (setup.price_floor_per_gpu_hour, setup.price_floor_per_core_hour) != self._registered_floors or (
            setup.gpus != self._registered_gpus
        ):
            await self._register(setup)  # the tariff's next window, a new rate or margin, a new benchmark score
        await self._flush_outbox()
        await self._send_offer()
        # Before the long poll, which may wait its whole 10 s: a machine just connected says at once when the
        # market pays less than its floor, rather than after its first empty poll.
        if self._clock().timestamp() - self._last_price_check >= PRICE_CHECK_S:
            await self._check_prices(setup)
        await self._poll()
        if self._clock().timestamp() - self._last_voucher_check >= VOUCHER_REFRESH_S:
            await self._refresh_voucher(setup)

    async def _connect(self, setup: ProviderSetup) -> None:
        info = await self._client.info()
        # Back within a third of a lease's timeout after an outage, so a marketplace that restarts
        # hears from its working providers (and gets their finished results) before their leases lapse.
        self._backoff.limit(max(1.0, min(60.0, info.lease_timeout_s / 3)))
        self._operator = self._pin_operator(info, setup)
        await sign_in_with(self._client, self._identity, chain_id=info.chain_id)
        await self._register(setup)
        self._info = info
        self._offered = None
        self._signed_in = True
        log.info("Signed in to %s as %s", self._client.base_url, self.address)

    async def _register(self, setup: ProviderSetup) -> None:
        """Describe the machine, its GPUs and its floors (again whenever the floors or the GPUs' scores change)."""
        assert setup.payout_address is not None  # noqa: S101 - checked by the caller
        limits = setup.limits
        await self._client.register(
            ProviderRegistration(
                name=socket.gethostname()[:64] or "provider",
                region=setup.region,
                cpu_cores=max(0, int(limits.max_cpus)),
                memory_bytes=limits.max_memory_bytes,
                gpus=list(setup.gpus),
                price_floor_per_gpu_hour=setup.price_floor_per_gpu_hour,
                price_floor_per_core_hour=setup.price_floor_per_core_hour,
                payout_address=setup.payout_address,
            )
        )
        self.registered_payout = setup.payout_address
        self._registered_gpus = setup.gpus
        floors = (setup.price_floor_per_gpu_hour, setup.price_floor_per_core_hour)
        if floors != self._registered_floors:
            basis = f" ({setup.floor_basis})" if setup.floor_basis else ""
            log.info("Bidding at least %d per GPU-hour and %d per core-hour%s", *floors, basis)
        self._registered_floors = floors

    def _pin_operator(self, info: ServerInfo, setup: ProviderSetup) -> str:
        """The operator address vouchers must carry: the owner's setting, else the first one announced."""
        if setup.operator_address is not None:
            if setup.operator_address.lower() != info.operator_address.lower():
                log.warning(
                    "The marketplace announces operator %s, not %s as configured: its vouchers will be refused",
                    info.operator_address,
                    setup.operator_address,
                )
            return setup.operator_address
        pin = self._state_dir / "operator.json"
        pinned: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            pinned = dict(json.loads(pin.read_text(encoding="utf-8")))
        known = pinned.get(self._client.base_url)
        if known is None:
            pinned[self._client.base_url] = info.operator_address
            pin.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_text(pin, json.dumps(pinned, indent=1) + "\n")
            return info.operator_address
        if known.lower() != info.operator_address.lower():
            log.warning(
                "The marketplace's operator changed from %s to %s: vouchers of the new one are refused "
                "until you set marketplace.operator_address",
                known,
                info.operator_address,
            )
        return known

    async def _send_offer(self) -> None:
        offer = self._offer()
        self._offer_changed.clear()
        if offer != self._offered:
            await self._client.offer(offer.to_protocol())
            self._offered = offer
            log.info("Offering %d GPU(s) and %d CPU core(s)", len(offer.gpus), offer.cpu_cores)

    async def _poll(self) -> None:
        """Long-poll for leases; a change of the offer cuts the wait short."""
        poll = asyncio.ensure_future(self._client.work(self._poll_wait_s))
        changed = asyncio.ensure_future(self._offer_changed.wait())
        try:
            await asyncio.wait({poll, changed}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the provider is stopping: the poll must not outlive it, failing unheard
            poll.cancel()
            raise
        finally:
            changed.cancel()
        if not poll.done():
            await reap(poll, MarketError)
            return
        work = poll.result()
        for lease_id in work.cancelled:
            if lease_id in self._leases:
                log.info("The marketplace ended lease %s: stopping it", lease_id)
                self._runtime.stop_job(lease_id, "the marketplace ended the lease")
        for offer in work.leases:
            if offer.lease_id not in self._leases and offer.lease_id not in self._taken:
                self._accept(offer)

    # -- the payout address -----------------------------------------------------------------------------

    async def change_payout(self, new_address: str, signer_for: Callable[[str], LocalAccount | None]) -> None:
        """Have the marketplace pay ``new_address`` from now on, signed by the current payout address's key
        (``signer_for(address)``; this machine's identity when it is the current one, on the private
        marketplace). Nothing to do before the first sign-in: the registration carries the address."""
        current = self.registered_payout
        if not self._signed_in or current is None or current.lower() == new_address.lower():
            return
        signer = self._identity if current.lower() == self.address.lower() else signer_for(current)
        if signer is None:
            raise PayoutKeyMissing(
                f"the marketplace pays this machine's earnings to {current}, whose key is not on this machine; "
                "a change must be signed with it: import that wallet here first, or ask the marketplace's operator "
                "to move your payouts"
            )
        challenge = await self._client.nonce(self.address)
        text = payout_change_message(self.address, new_address, challenge.nonce)
        await self._client.change_payout(
            PayoutChange(new_payout_address=new_address, nonce=challenge.nonce, signature=sign_text(signer, text))
        )
        self.registered_payout = new_address
        log.info("The marketplace now pays this machine's earnings to %s", new_address)

    # -- leases ----------------------------------------------------------------------------------------

    def _accept(self, offer: LeaseOffer) -> None:
        self._taken.append(offer.lease_id)
        task = asyncio.create_task(self._run_lease(offer), name=f"lease-{offer.lease_id}")
        self._leases[offer.lease_id] = task

    def _refusal(self, offer: LeaseOffer) -> str | None:
        """Why this lease is not taken (nothing is pulled or started), or None."""
        try:
            check_limits(offer.spec, self._setup().limits)
        except JobRefused as exc:
            return exc.reason
        offered = self._offered or MachineOffer({}, 0)
        strangers = [uuid for uuid in offer.gpu_uuids if uuid not in offered.gpus]
        if strangers:
            return f"refused: the lease names GPU {strangers[0]}, which this machine does not offer"
        if len(offer.gpu_uuids) != offer.spec.gpus:
            return f"refused: the job needs {offer.spec.gpus} GPU(s) and the lease names {len(offer.gpu_uuids)}"
        if not offer.gpu_uuids and offer.units > offered.cpu_cores:
            return f"refused: the lease asks for {offer.units} CPU cores and {offered.cpu_cores} are offered"
        return self._price_refusal(offer)

    def _price_refusal(self, offer: LeaseOffer) -> str | None:
        """A lease paying less than the floor now (the electricity plus the margin) is not worth running."""
        setup = self._setup()
        floor = setup.price_floor_per_gpu_hour if offer.gpu_uuids else setup.price_floor_per_core_hour
        if offer.price_per_unit_hour >= floor:
            return None
        unit = "GPU-hour" if offer.gpu_uuids else "core-hour"
        basis = f": {setup.floor_basis}" if setup.floor_basis else ""
        return f"refused: it pays {offer.price_per_unit_hour} per {unit}, below this machine's floor of {floor}{basis}"

    async def _run_lease(self, offer: LeaseOffer) -> None:
        refusal = self._refusal(offer)
        if refusal is not None:
            log.warning("Lease %s of job %s: %s", offer.lease_id, offer.job_id, refusal)
            await self._finish(ResultReport(**_report_ids(offer), outcome="refused", reason=refusal, run_time_ms=0))
            return
        offered = self._offered or MachineOffer({}, 0)
        now = self._clock()
        lease = Lease(
            job_id=offer.lease_id,
            spec=offer.spec,
            # The job's own run-time limit governs here; the marketplace ends a lease it no longer
            # wants through the heartbeat's answer, so clock skew between the two never matters.
            expires_at=now + timedelta(seconds=offer.spec.max_runtime_s) + timedelta(minutes=10),
            gpu_indices=tuple(offered.gpus[uuid] for uuid in offer.gpu_uuids),
            gpu_uuids=tuple(offer.gpu_uuids),
            accepted_at=now,
        )
        if self._ledger is not None:
            start = JobStart(
                offer.lease_id,
                self._client.base_url,
                offer.job_id,
                tuple(offer.gpu_uuids),
                offer.units,
                offer.price_per_unit_hour,
                now,
            )
            try:
                await asyncio.to_thread(self._ledger.job_started, start)  # on disk before the job runs
            except Exception as exc:
                log.exception("Lease %s: the ledger could not record it", offer.lease_id)
                reason = f"refused: the provider's ledger cannot record the lease ({exc})"[:500]
                await self._finish(ResultReport(**_report_ids(offer), outcome="refused", reason=reason, run_time_ms=0))
                return
        log.info("Won lease %s of job %s at %d per unit-hour", offer.lease_id, offer.job_id, offer.price_per_unit_hour)
        beats = asyncio.create_task(self._heartbeats(offer))
        try:
            result = await self._runtime.run(lease)
        except Exception as exc:  # a fault of this machine's runtime, not of the job: the lease ends now, said why
            log.exception("Lease %s: the job runtime failed", offer.lease_id)
            reason = f"the provider could not run it ({type(exc).__name__}: {exc})"[:500]
            result = JobResult(offer.lease_id, JobState.FAILED, None, reason)
        finally:
            # However the heartbeats ended (each failure is logged where it happened), the result below is
            # recorded and reported: the marketplace pays by the report.
            await reap(beats, Exception)
        report = _report(offer, result)
        if self._ledger is not None:
            end = JobEnd(
                offer.lease_id, self._clock(), result.run_time_s, result.paused_s, report.outcome, report.reason
            )
            try:
                await asyncio.to_thread(self._ledger.job_ended, end)
            except Exception:  # the report still goes out: the marketplace pays by it, and credits are fetched later
                log.exception("Lease %s: the ledger could not record its end", offer.lease_id)
        await self._finish(report, result.outputs_dir)

    async def _heartbeats(self, offer: LeaseOffer) -> None:
        """Tell the marketplace the lease is alive until it is cancelled (by ``_run_lease`` or the marketplace).

        A beat that fails, however, is logged and the next one tried: the job runs on, and its report must
        go out when it ends."""
        failed_before = False
        while True:
            try:
                if await self._heartbeat(offer):
                    return
            except MarketError as exc:
                log.info("Heartbeat of lease %s not delivered: %s", offer.lease_id, exc)
            except Exception as exc:  # a bug: its traceback logged once per lease; the job and its report go on
                if failed_before:
                    log.debug("Heartbeat of lease %s failed again: %s", offer.lease_id, exc)
                else:
                    log.exception("Heartbeat of lease %s failed", offer.lease_id)
                failed_before = True
            await asyncio.sleep(offer.heartbeat_interval_s)

    async def _heartbeat(self, offer: LeaseOffer) -> bool:
        """Send one heartbeat; True when the marketplace ended the lease (the job is then being stopped)."""
        status = next((job for job in self._runtime.jobs() if job.job_id == offer.lease_id), None)
        state = status.state.value if status is not None else "pulling"
        beat = Heartbeat(
            state=state if state in ("pulling", "starting", "running", "paused") else "running",
            run_time_ms=int((status.run_time_s if status else 0.0) * 1000),
        )
        ack = await self._client.heartbeat(offer.lease_id, beat)
        if ack.cancel:
            log.info("The marketplace cancelled lease %s: stopping it", offer.lease_id)
            self._runtime.stop_job(offer.lease_id, "the marketplace ended the lease")
        return ack.cancel

    async def _finish(self, report: ResultReport, outputs_dir: Path | None = None) -> None:
        signed = SignedResultReport(report=report, signature=sign_text(self._identity, report.signing_text()))
        self._outbox.put(PendingReport(signed, outputs_dir))  # on disk before the first attempt
        self._leases.pop(report.lease_id, None)
        with contextlib.suppress(MarketError):
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        """Send every pending report (outputs first); a report leaves the outbox once acknowledged."""
        async with self._sending:
            await self._send_pending()

    async def _send_pending(self) -> None:
        for pending in self._outbox.pending():
            report = pending.signed.report
            try:
                if report.outcome == "finished" and pending.outputs_dir is not None:
                    for output in report.outputs:
                        await self._client.upload(report.lease_id, output.path, pending.outputs_dir / output.path)
                ack = await self._client.report(pending.signed)
            except MarketRefused as exc:
                if exc.status in (403, 404, 409):
                    log.warning("The marketplace will not take the report of lease %s: %s", report.lease_id, exc)
                    if exc.status == 409 and "uploaded before the report" in exc.detail:
                        ack = await self._client.report(pending.signed)  # the lease is over: report without outputs
                    else:
                        self._outbox.done(report.lease_id)
                        continue
                else:
                    raise
            self._outbox.done(report.lease_id)
            log.info(
                "Lease %s reported %s: lease %s, job %s",
                report.lease_id,
                report.outcome,
                ack.lease_state,
                ack.job_state,
            )
            if ack.job_state == "completed":
                await self._refresh_voucher(self._setup())

    async def request_relay(self) -> RelayAck:
        """Ask the marketplace's operator to send this provider's claim, paying its gas (for a payout address
        whose key is not here, or that holds no coin); MarketError when it cannot be asked or refuses."""
        if not self._signed_in:
            raise MarketUnavailable("not signed in to the marketplace yet")
        return await self._client.claim_relay()

    async def refresh_voucher(self) -> None:
        """Fetch the marketplace's latest voucher now (before a claim: after the operator's key was rotated,
        the renewed voucher replaces the old key's). A marketplace that cannot be asked leaves the kept
        voucher as it is: logged, not raised."""
        if not self._signed_in:
            return
        try:
            await self._refresh_voucher(self._setup())
        except MarketError as exc:
            log.info("The latest voucher could not be fetched now (%s): the kept one is used", exc)

    async def _refresh_voucher(self, setup: ProviderSetup) -> None:
        self._last_voucher_check = self._clock().timestamp()
        info, operator = self._info, self._operator
        if info is None or operator is None or setup.payout_address is None:
            return
        await self._collect_credits()
        voucher = await self._client.voucher()
        if voucher is not None:
            trusted: TrustedVault | None = None
            if self._vault_trust is not None:
                try:
                    trusted = await asyncio.to_thread(self._vault_trust)
                except ChainError as exc:
                    log.warning("The payout vault's signer cannot be read (%s): the voucher waits until it can", exc)
                    voucher = None
            if voucher is not None:
                self.vouchers.offer(voucher, voucher_terms(info, operator, trusted, setup.payout_address))
        best = self.vouchers.best()
        if self._ledger is not None and best is not None:
            reference = f"voucher {best.cumulative_amount} chain {best.chain_id} sig {best.signature[:18]}"
            await asyncio.to_thread(
                self._ledger.voucher_covers, best.payout_address, best.cumulative_amount, reference, self._clock()
            )

    async def _collect_credits(self) -> None:
        """Ask the marketplace what each ended lease without an earning in the ledger was paid."""
        if self._ledger is None:
            return
        for lease_id in await asyncio.to_thread(self._ledger.uncredited_jobs):
            try:
                view = await self._client.lease(lease_id)
            except MarketRefused as exc:
                if exc.status != 404:
                    raise
                log.warning("The marketplace does not know lease %s: it earned nothing there", lease_id)
                await asyncio.to_thread(self._ledger.credited, lease_id, 0, 0, "0x" + "0" * 40, self._clock())
                continue
            if view.amount_base_units is not None and view.paid_cumulative_base_units is not None:
                amount, cumulative = view.amount_base_units, view.paid_cumulative_base_units
            elif view.state in _UNPAID_FOR_GOOD:
                amount, cumulative = 0, 0  # it will never be paid: an earning of nothing, so it is not asked again
            else:
                continue  # not settled yet (other replicas still running): asked again later
            await asyncio.to_thread(
                self._ledger.credited, lease_id, amount, cumulative, view.payout_address, self._clock()
            )

    async def _check_prices(self, setup: ProviderSetup) -> None:
        """Say so when the jobs on offer pay less than this machine's floor (its electricity plus the margin)."""
        self._last_price_check = self._clock().timestamp()
        offered = self._offered
        if offered is None or (not offered.gpus and not offered.cpu_cores) or self._leases:
            self._price_note = None
            return
        self._price_note = price_note(await self._client.prices(), offered, setup)


async def sign_in_with(client: MarketClient, identity: LocalAccount, *, chain_id: int | None = None) -> None:
    """Sign in to the client's marketplace with the machine's identity key (Sign-In with Ethereum).

    Only a challenge for this marketplace is signed: its domain and URI must be the client's URL's, its chain
    ``chain_id`` (None: the chain the marketplace's info announces). ForeignChallenge otherwise.
    """
    if chain_id is None:
        chain_id = (await client.info()).chain_id
    challenge = await client.nonce(identity.address)
    problem = challenge_problem(challenge, client.base_url, chain_id)
    if problem is not None:
        raise ForeignChallenge(
            f"refused to sign in to the marketplace at {client.base_url}: {problem}. Signing it could give whoever "
            "relayed it a session elsewhere as this machine, so nothing was signed. Check that the marketplace URL "
            "(marketplace.url in the settings, or the studio's URL you joined with) is the marketplace's public "
            "address, the one its operator gave as --public-url, and that it uses https"
        )
    message = sign_in_message(challenge, identity.address)
    await client.sign_in(message, sign_text(identity, message))


def price_note(prices: MarketPrices, offered: MachineOffer, setup: ProviderSetup) -> str | None:
    """'market pays less than your electricity…' when every queued job this machine could take pays below its floor."""
    if offered.gpus and prices.queued_gpu_jobs:
        best, floor, kind, unit = prices.best_gpu_hour, setup.price_floor_per_gpu_hour, "GPU", "GPU-hour"
    elif offered.cpu_cores and prices.queued_cpu_jobs:
        best, floor, kind, unit = prices.best_core_hour, setup.price_floor_per_core_hour, "CPU", "core-hour"
    else:
        return None
    if best is None or best >= floor:
        return None
    basis = f" ({setup.floor_basis})" if setup.floor_basis else ""
    return (
        f"market pays less than your electricity: the best {kind} job offers {best} per {unit}, "
        f"your floor is {floor}{basis}"
    )


def _report_ids(offer: LeaseOffer) -> dict[str, str]:
    return {"lease_id": offer.lease_id, "job_id": offer.job_id}


def _report(offer: LeaseOffer, result: JobResult) -> ResultReport:
    outcome = _OUTCOMES.get(result.state, "interrupted")
    return ResultReport(
        **_report_ids(offer),
        outcome=outcome,
        exit_code=result.exit_code,
        reason=(result.reason or "")[:500] or None,
        run_time_ms=int(result.run_time_s * 1000),
        outputs=[OutputFile(path=o.path, size_bytes=o.size_bytes, sha256=o.sha256) for o in result.outputs],
    )
