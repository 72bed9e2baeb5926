"""The marketplace's admin API (``/v1/admin``): what an operator's token may see and do.

The same operations are the ``sparecycles market …`` commands, which work on the database directly; the
API serves an operator who is not on the server's machine (and, later, the fleet view).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from sparecycles.protocol.market import Address, BaseUnits, JobView, ShortText


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSummary(_Model):
    address: Address
    name: str
    region: str
    payout_address: Address
    online: bool
    last_seen_at: datetime
    offered_gpus: int
    offered_cores: int
    active_leases: int
    banned: bool
    ban_reason: str | None = None


class OperatorJobView(_Model):
    requester: str
    job: JobView


class BanRequest(_Model):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class CreditRequest(_Model):
    amount_base_units: Annotated[BaseUnits, Field(gt=0)]


class QuotaRequest(_Model):
    """Bytes of outputs a requester may keep on the server; ``null`` goes back to the server's default."""

    storage_quota_bytes: Annotated[int, Field(ge=0)] | None


class RequesterAccount(_Model):
    name: str
    credit_base_units: BaseUnits
    held_base_units: BaseUnits
    stored_bytes: int
    storage_quota_bytes: int
    key_revoked: bool
    deposit_address: Address | None = None  # its deposits to the payout vault credit it


class DepositAddressRequest(_Model):
    """The chain address whose deposits to the payout vault credit a requester; ``null``: none."""

    deposit_address: Address | None


class NewApiKey(_Model):
    """A requester's new API key, shown this once (only its hash is kept)."""

    name: str
    api_key: str


class RetentionResult(_Model):
    files_deleted: int
    bytes_freed: int


class AuditEntry(_Model):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    amount_base_units: BaseUnits | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class OperatorAck(_Model):
    detail: ShortText


class ProjectQuotaRequest(_Model):
    """The most a requester may commit to a project's jobs (held and charged); ``null`` removes the quota."""

    max_base_units: BaseUnits | None


class ProjectQuotaView(_Model):
    requester: str
    project: str
    max_base_units: BaseUnits
    committed_base_units: BaseUnits


class CostRow(_Model):
    """What one requester, project, or requester's project cost: jobs, what was charged and is still held, and
    the GPU- and core-hours paid for."""

    requester: str | None
    project: str | None
    jobs: int
    completed: int
    charged_base_units: BaseUnits
    held_base_units: BaseUnits
    gpu_hours: float
    core_hours: float
