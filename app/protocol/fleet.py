"""Protocol v1's fleet part: a studio's machines in a group of its marketplace, the group's policy, and the
operator's view of every machine.

A machine joins a group with an enrolment code the operator made (``POST /v1/provider/group``), reports its
state every ``report_every_s`` (``PUT /v1/provider/fleet``) and gets back a :class:`FleetDirective`: the
group's policy and what the operator asked of this machine (drain it, pause it until a time). The operator
reads :class:`FleetMachine` rows through ``GET /v1/admin/fleet``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from sparecycles.durations import parse_duration
from sparecycles.protocol.market import Address, ShortText
from sparecycles.schedule import checked_rules

GROUP_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$"
_GROUP = re.compile(GROUP_NAME)

WorkModeName = Literal["idle", "schedule", "idle_or_schedule", "idle_in_schedule"]


# Every instant here is an AwareDatetime: a naive one from the network would be kept in fleet.json and then
# fail to compare with the agent's clock, so it is refused at the boundary.
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _group_name(name: str) -> str:
    if not _GROUP.fullmatch(name):
        raise ValueError(
            "a group name is 1 to 63 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _idle_threshold(text: str) -> str:
    seconds = parse_duration(text)
    if not 5 <= seconds <= 24 * 3600:
        raise ValueError("the idle threshold is between 5s and 24h")
    return text


GroupName = Annotated[str, AfterValidator(_group_name)]


class GroupPolicy(_Model):
    """What a studio sets for every machine of a group; a field left unset leaves each machine's own setting.

    A machine's owner keeps what is stricter: work runs only when both the group's rules and the owner's allow
    it, the lower temperature cap and power limit apply, and the longer idle threshold."""

    mode: WorkModeName | None = None
    windows: Annotated[list[str], AfterValidator(checked_rules), Field(max_length=64)] | None = Field(
        None, description='Weekly windows in each machine\'s time zone, e.g. ["Mon-Fri 19:00-08:00", "Sat-Sun"].'
    )
    idle_threshold: Annotated[str, AfterValidator(_idle_threshold)] | None = None
    max_temperature_c: Annotated[int, Field(ge=50, le=95)] | None = None
    power_limit_percent: Annotated[int, Field(ge=30, le=100)] | None = None
    pause_processes: Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=256)] = (
        Field([], description="Games and apps that pause work when running, besides each machine's own list.")
    )
    outside_jobs: bool = Field(True, description="Whether jobs of requesters outside the studio may run.")


class EnrolCode(_Model):
    """A code machines join a group with, shown once (only its hash is kept); it works until it expires."""

    group: str
    code: str
    expires_at: AwareDatetime


class JoinRequest(_Model):
    code: Annotated[str, Field(min_length=8, max_length=128)]


class Membership(_Model):
    """The group a machine belongs to on this marketplace, and the group's policy."""

    studio: str  # the marketplace's name, as the machine shows it ("schedule set by …")
    group: GroupName
    policy: GroupPolicy
    policy_version: int


class FleetGpu(_Model):
    index: int
    name: Annotated[str, Field(max_length=100)]
    state: Annotated[str, Field(max_length=32)]
    reason: ShortText


class FleetReport(_Model):
    """What a machine tells its studio about itself, every ``report_every_s``."""

    agent_version: Annotated[str, Field(max_length=40)]
    state: Annotated[str, Field(max_length=32)]
    reason: ShortText
    gpus: Annotated[list[FleetGpu], Field(max_length=64)] = []
    gpu_hours_today: Annotated[float, Field(ge=0)] = 0.0
    energy_kwh_today: Annotated[float, Field(ge=0)] | None = None
    policy_version: int | None = None  # the group policy the machine applies now


class FleetDirective(_Model):
    """The marketplace's answer to a report: the machine's group and policy, and the operator's requests."""

    membership: Membership | None
    drain: bool = False  # finish the current job, take no new one
    paused_until: AwareDatetime | None = None  # take no work, and stop the current job, until then
    report_every_s: float


class FleetMachine(_Model):
    """One machine as the studio's operator sees it."""

    address: Address
    name: str
    group: str | None
    online: bool
    last_seen_at: AwareDatetime
    agent_version: str | None
    state: str | None  # from its last report (None: it never reported)
    reason: str | None
    gpus: list[FleetGpu]
    jobs: list[str]  # the jobs it holds a lease of now
    gpu_hours_today: float
    energy_kwh_today: float | None
    reported_at: AwareDatetime | None
    drain: bool
    paused_until: AwareDatetime | None
    policy_version: int | None


class GroupView(_Model):
    name: GroupName
    policy: GroupPolicy
    policy_version: int
    machines: int


class DrainRequest(_Model):
    drain: bool = True


class PauseRequest(_Model):
    """Pause a machine until a time (aware); ``null`` resumes it now."""

    until: AwareDatetime | None


class EnrolCodeRequest(_Model):
    expires_s: Annotated[float, Field(ge=60, le=30 * 24 * 3600)] = 24 * 3600.0


class RequesterGroup(_Model):
    """The studio group whose own requester this is; ``null``: an outside requester."""

    group: GroupName | None
