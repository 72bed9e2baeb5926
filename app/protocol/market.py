"""Marketplace protocol v1: the messages between providers, requesters and a marketplace, as data.

HTTP + JSON under ``/v1``; the reference server publishes the OpenAPI document built from these
models (docs/marketplace.openapi.json). Every model forbids unknown fields and bounds every list and
string, so a hostile peer cannot make the other side parse megabytes or guess at meaning.

Money is an integer number of the payout token's base units (like wei); prices are per unit-hour,
where a unit is a GPU for GPU jobs and a CPU core for CPU-only jobs. A lease earns
``price × units × running milliseconds // 3 600 000`` (see :func:`lease_amount`), paused time not
counted.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from sparecycles.protocol.jobs import MAX_GPUS, JobSpec

API_PREFIX = "/v1"
PROTOCOL_VERSION: Literal[1] = 1
MS_PER_HOUR = 3_600_000
MAX_BASE_UNITS = 2**256 - 1
MAX_REPLICAS = 5
MAX_OUTPUT_FILES = 10_000
MAX_REASON_CHARS = 500
MAX_SIGN_IN_MESSAGE_CHARS = 4096
MAX_LEASES_PER_POLL = 16

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GPU_UUID = re.compile(r"(?:GPU|MIG)-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_OUTPUT_PATH = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


def _address(value: str) -> str:
    """An EVM address, normalised to its EIP-55 checksum form (so two spellings compare equal)."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError("must be an address: 0x followed by 40 hexadecimal digits")
    return checksummed(value)


@functools.lru_cache(maxsize=16384)
def checksummed(address: str) -> str:
    """``address`` (0x and 40 hexadecimal digits) in its EIP-55 checksum form.

    Cached: eth_utils takes about 23 µs an address (a Keccak hash and its checks), and a marketplace sees the
    same few thousand payout and provider addresses in every report, voucher and lease it reads."""
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(address))


def _signature(value: str) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise ValueError("must be a 65-byte signature: 0x followed by 130 hexadecimal digits")
    return value.lower()


def _pattern(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


def _output_path(value: str) -> str:
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError("must be a relative path inside the output folder, without '.' or '..'")
    return value


Address = Annotated[str, AfterValidator(_address)]
Signature = Annotated[str, AfterValidator(_signature)]
Sha256Hex = Annotated[str, _pattern(_SHA256, "a SHA-256 in 64 lower-case hexadecimal digits")]
GpuUuid = Annotated[str, _pattern(_GPU_UUID, "an NVIDIA GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
Identifier = Annotated[str, _pattern(_ID, "1-63 letters, digits, '.', '_' or '-'")]
OutputPath = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    _pattern(_OUTPUT_PATH, "a relative path of letters, digits, '.', '_', '-' and '/'"),
    AfterValidator(_output_path),
]
BaseUnits = Annotated[int, Field(ge=0, le=MAX_BASE_UNITS)]
ShortText = Annotated[str, Field(max_length=MAX_REASON_CHARS)]


def lease_amount(price_per_unit_hour: int, units: int, run_time_ms: int) -> int:
    """What a lease earns: price × units × running time, rounded down to a whole base unit."""
    return price_per_unit_hour * units * run_time_ms // MS_PER_HOUR


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the server ------------------------------------------------------------------------------------


class ServerInfo(_Model):
    """What a marketplace says about itself; providers pin ``operator_address`` to check vouchers."""

    protocol_version: Literal[1] = PROTOCOL_VERSION
    name: Annotated[str, Field(max_length=100)]
    chain_id: int = Field(ge=1)
    voucher_contract: Address = Field(description="The verifying contract of vouchers (the payout vault).")
    operator_address: Address = Field(description="The address whose signature makes a voucher valid.")
    heartbeat_interval_s: float = Field(gt=0, le=3600)
    lease_timeout_s: float = Field(gt=0, le=86400, description="A lease without a heartbeat this long expires.")
    max_output_bytes: int = Field(ge=0)


class Problem(_Model):
    """Every error the server answers: a sentence for people, a code for programs."""

    code: Annotated[str, Field(max_length=64)]
    detail: ShortText


# --- sign-in ---------------------------------------------------------------------------------------


class NonceRequest(_Model):
    address: Address


class NonceResponse(_Model):
    """What the provider's EIP-4361 message must carry (the server checks every field)."""

    nonce: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
    domain: Annotated[str, Field(max_length=255)]
    uri: Annotated[str, Field(max_length=1024)]
    chain_id: int = Field(ge=1)
    statement: ShortText
    issued_at: datetime
    expiration_time: datetime


class SignInRequest(_Model):
    message: Annotated[str, Field(max_length=MAX_SIGN_IN_MESSAGE_CHARS)]
    signature: Signature


class SessionToken(_Model):
    token: Annotated[str, Field(min_length=16, max_length=256)]
    expires_at: datetime
    address: Address


# --- providers -------------------------------------------------------------------------------------


class GpuInfo(_Model):
    uuid: GpuUuid
    name: Annotated[str, Field(max_length=100)]
    vram_bytes: int = Field(ge=0)
    score: float | None = Field(None, ge=0, description="Benchmark score, once the GPU has been benchmarked.")


class ProviderRegistration(_Model):
    """The machine and its price floors; sent at every sign-in (a changed machine replaces the old one)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    region: Annotated[str, Field(max_length=32)] = ""
    cpu_cores: int = Field(ge=0, le=1024)
    memory_bytes: int = Field(ge=0)
    gpus: Annotated[list[GpuInfo], Field(max_length=MAX_GPUS)] = []
    price_floor_per_gpu_hour: BaseUnits
    price_floor_per_core_hour: BaseUnits
    payout_address: Address = Field(description="Where earnings go; set once, then changed only by signature.")

    @model_validator(mode="after")
    def _unique_gpus(self) -> ProviderRegistration:
        uuids = [gpu.uuid for gpu in self.gpus]
        if len(set(uuids)) != len(uuids):
            raise ValueError("each GPU is listed once")
        return self


class PayoutChange(_Model):
    """A new payout address, signed (EIP-191) by the current payout address: a stolen machine key alone
    cannot redirect earnings. The signed text is :func:`payout_change_message`."""

    new_payout_address: Address
    nonce: Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
    signature: Signature


def payout_change_message(provider: str, new_payout_address: str, nonce: str) -> str:
    return f"SpareCycles: pay the earnings of provider {provider} to {new_payout_address} from now on.\nNonce: {nonce}"


class Offer(_Model):
    """What the provider offers right now (the policy decides: offers change as the owner comes and goes)."""

    gpu_uuids: Annotated[list[GpuUuid], Field(max_length=MAX_GPUS)] = []
    cpu_cores: int = Field(0, ge=0, le=1024)


class ProviderView(_Model):
    address: Address
    name: str
    payout_address: Address
    offer: Offer
    price_floor_per_gpu_hour: BaseUnits
    price_floor_per_core_hour: BaseUnits


# --- jobs ------------------------------------------------------------------------------------------


class JobSubmission(_Model):
    """A requester's job: the spec the provider runs, the most it will pay, and how it is auctioned."""

    spec: JobSpec
    max_price_per_gpu_hour: BaseUnits | None = None
    max_price_per_core_hour: BaseUnits | None = None
    bidding_window_s: float = Field(10.0, ge=0.1, le=3600)
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    min_score: float | None = Field(
        None, ge=0, description="GPU jobs: the lowest benchmark score each GPU must have (unset: any GPU)."
    )
    project: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$")] | None = Field(
        None, description="The project the job is for: costs are reported, and quotas kept, per project."
    )

    @model_validator(mode="after")
    def _price_for_its_units(self) -> JobSubmission:
        if self.spec.gpus > 0 and self.max_price_per_gpu_hour is None:
            raise ValueError("a GPU job needs max_price_per_gpu_hour")
        if self.spec.gpus == 0 and self.max_price_per_core_hour is None:
            raise ValueError("a CPU-only job needs max_price_per_core_hour")
        return self

    @property
    def units(self) -> int:
        """GPUs for a GPU job, whole cores (rounded up) for a CPU-only one."""
        return self.spec.gpus if self.spec.gpus > 0 else max(1, -(-int(self.spec.cpus * 1000) // 1000))

    @property
    def max_price(self) -> int:
        price = self.max_price_per_gpu_hour if self.spec.gpus > 0 else self.max_price_per_core_hour
        assert price is not None  # noqa: S101 - guaranteed by the validator
        return price


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for bids, or back in the queue after a lost lease
    RUNNING = "running"  # leased to its provider(s)
    COMPLETED = "completed"  # results accepted, providers paid
    FAILED = "failed"  # the job itself failed (or failed too often); the requester pays for what ran
    DISPUTED = "disputed"  # replicas disagree: nobody is paid until the operator resolves it
    CANCELLED = "cancelled"


class LeaseState(StrEnum):
    ACTIVE = "active"
    REPORTED = "reported"  # the provider reported; waiting for the other replicas
    ACCEPTED = "accepted"  # paid
    REJECTED = "rejected"  # disputed and rejected, or its outputs did not match its report
    LOST = "lost"  # heartbeats stopped: not paid, the job went back to the queue
    PREEMPTED = "preempted"  # the provider took its machine back: not paid, requeued
    FAILED = "failed"  # the job failed on this provider
    CANCELLED = "cancelled"


class OutputFile(_Model):
    path: OutputPath
    size_bytes: int = Field(ge=0)
    sha256: Sha256Hex


class LeaseView(_Model):
    lease_id: Identifier
    provider_address: Address
    state: LeaseState
    price_per_unit_hour: BaseUnits
    units: int
    started_at: datetime
    ended_at: datetime | None = None
    run_time_ms: int | None = None
    amount_base_units: int | None = None
    reason: str | None = None


class JobView(_Model):
    job_id: Identifier
    state: JobState
    reason: str = Field(description="Why the job is where it is, in words ('queued: no provider bids…').")
    created_at: datetime
    replicas: int
    units: int
    max_price_per_unit_hour: BaseUnits
    held_base_units: int = Field(description="Credit held for the job's maximum cost, until it settles.")
    charged_base_units: int = Field(description="What the job cost, once settled.")
    leases: list[LeaseView] = []
    outputs: list[OutputFile] = Field([], description="The accepted outputs, once the job completed.")
    project: str | None = None


class RequesterView(_Model):
    name: str
    credit_base_units: int = Field(description="Available credit, not counting what running jobs hold.")
    held_base_units: int


# --- leases, from the provider's side ---------------------------------------------------------------


class LeaseOffer(_Model):
    """A lease the provider won: run ``spec`` on ``gpu_uuids`` (or ``units`` cores) until it ends."""

    lease_id: Identifier
    job_id: Identifier
    spec: JobSpec
    gpu_uuids: Annotated[list[GpuUuid], Field(max_length=MAX_GPUS)] = []
    units: int = Field(ge=1)
    price_per_unit_hour: BaseUnits
    expires_at: datetime
    heartbeat_interval_s: float = Field(gt=0)


class ProviderLeaseView(_Model):
    """One of the provider's own leases, for its earnings ledger: what the lease earned and which voucher
    covers it. Vouchers are cumulative per payout address, which several machines may share, so the
    voucher alone cannot say which leases it pays; ``paid_cumulative_base_units`` can."""

    lease_id: Identifier
    job_id: Identifier
    state: LeaseState
    run_time_ms: int | None = Field(None, ge=0, description="The running time the lease is paid for, once known.")
    amount_base_units: BaseUnits | None = Field(
        None, description="What the lease earned, once its result was accepted (or its job cancelled while it ran)."
    )
    paid_cumulative_base_units: BaseUnits | None = Field(
        None,
        description="The payout address's cumulative earnings right after this lease was paid: a voucher "
        "whose cumulative_amount is at least this covers the lease. Unset while the lease is unpaid.",
    )
    payout_address: Address = Field(description="Where the lease's earnings go (the payout address it was won with).")


class MarketPrices(_Model):
    """What the marketplace's queue pays right now, so a provider can tell its owner when the market pays
    less than the electricity costs. The server may answer from a cache a few seconds old."""

    queued_gpu_jobs: int = Field(ge=0, description="Jobs waiting for providers that need GPUs.")
    queued_cpu_jobs: int = Field(ge=0, description="CPU-only jobs waiting for providers.")
    best_gpu_hour: BaseUnits | None = Field(
        None, description="The highest maximum price per GPU-hour among the queued GPU jobs (unset: none queued)."
    )
    best_core_hour: BaseUnits | None = Field(
        None, description="The highest maximum price per core-hour among the queued CPU-only jobs (unset: none queued)."
    )


class WorkResponse(_Model):
    leases: Annotated[list[LeaseOffer], Field(max_length=MAX_LEASES_PER_POLL)] = []
    cancelled: Annotated[list[Identifier], Field(max_length=256)] = Field(
        [], description="Leases the requester cancelled or the server ended: stop them."
    )


class Heartbeat(_Model):
    state: Literal["pulling", "starting", "running", "paused"]
    run_time_ms: int = Field(ge=0)


class HeartbeatAck(_Model):
    expires_at: datetime
    cancel: bool = False


Outcome = Literal["finished", "failed", "preempted", "refused", "interrupted"]


class ResultReport(_Model):
    """How a lease ended, signed by the provider's machine identity key (EIP-191 over :meth:`signing_text`)."""

    lease_id: Identifier
    job_id: Identifier
    outcome: Outcome
    exit_code: int | None = None
    reason: ShortText | None = None
    run_time_ms: int = Field(ge=0)
    outputs: Annotated[list[OutputFile], Field(max_length=MAX_OUTPUT_FILES)] = []

    def signing_text(self) -> str:
        """The canonical text the provider signs: a fixed header, then the report as compact JSON in field order."""
        return "SpareCycles result report v1\n" + self.model_dump_json(by_alias=False, round_trip=True)


class SignedResultReport(_Model):
    report: ResultReport
    signature: Signature


class ReportAck(_Model):
    lease_id: Identifier
    lease_state: LeaseState
    job_state: JobState


# --- vouchers --------------------------------------------------------------------------------------


class Voucher(_Model):
    """The operator's EIP-712 signature over a payout address's cumulative earnings (see signing.py)."""

    payout_address: Address
    cumulative_amount: BaseUnits
    chain_id: int = Field(ge=1)
    verifying_contract: Address
    signature: Signature


class RelayAck(_Model):
    """The answer to a provider's request that the operator relay its claim (send it and pay the gas)."""

    queued: bool = Field(description="True: the operator sends the claim shortly; false: `detail` says why not.")
    owed_base_units: BaseUnits = Field(description="What the vault owes the payout address on its latest voucher.")
    detail: str
