"""The work policy: for each GPU, ``work``, ``pause`` or ``stop``, with a reason a person understands.

Every rule yields a constraint (an action, a cause and a reason); a GPU gets the strongest action
among its constraints, explained by the first rule that asked for it. Presence has hysteresis: input
while working freezes the job (``pause``) and it resumes after a short quiet spell, so one mouse
twitch costs a minute, not the whole idle threshold; the owner staying, or coming back soon after a
resume, stops the work and the full threshold applies again. A presence sample that fails is a gap, not
a verdict: the phase stands (scheduled hours stand in only where no presence source exists at all).
Temperature has a cap and a lower resume point. Nothing here reads a clock or a sensor: the caller
passes them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from sparecycles.agent.policy.model import (
    Action,
    Cause,
    GpuDecision,
    GpuReading,
    MachineDecision,
    PolicyInput,
    PolicyMemory,
    PolicyResult,
    PolicySettings,
    PresencePhase,
    WorkMode,
)
from sparecycles.agent.sensors.user.model import PresenceSample


@dataclass(frozen=True)
class Constraint:
    action: Action
    cause: Cause
    reason: str


def format_duration(seconds: float) -> str:
    """Short and human: '45 s', '6 min', '1 h 05 min'."""
    if seconds < 60:
        return f"{max(0, math.ceil(seconds))} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _local_clock(instant: datetime, now: datetime, settings: PolicySettings) -> str:
    """'18:30' today, 'Mon 19:00' on another day, in the owner's time zone."""
    zone = settings.zone
    local, today = instant.astimezone(zone), now.astimezone(zone)
    return f"{local:%H:%M}" if local.date() == today.date() else f"{local:%a %H:%M}"


def _away_now(presence: PresenceSample, settings: PolicySettings) -> bool:
    if presence.locked:
        return True
    if presence.fullscreen or presence.idle_s is None:
        return False
    return presence.idle_s >= settings.idle_threshold_s


def presence_known(presence: PresenceSample) -> bool:
    """Whether the sample tells anything of the owner: an idle time, a locked session, a fullscreen app."""
    return presence.idle_s is not None or presence.locked is True or presence.fullscreen is True


def _through_a_gap(settings: PolicySettings, memory: PolicyMemory, now: float) -> PolicyMemory:
    """A sample that tells nothing (the source did not answer this time): the phase stands, so a failed read
    never turns a pause or a stop into work. Only work is cut short: after a gap of ``presence_gap_grace_s``
    the job is frozen, as the owner may have come back meanwhile."""
    lost_at = memory.presence_lost_at_s if memory.presence_lost_at_s is not None else now
    memory = replace(memory, presence_lost_at_s=lost_at)
    phase = memory.phase
    if phase is None:  # nothing known yet: the owner may well be here
        return replace(memory, phase=PresencePhase.PRESENT)
    if phase is PresencePhase.AWAY and now - lost_at >= settings.presence_gap_grace_s:
        return replace(memory, phase=PresencePhase.INTERRUPTED, interrupted_at_s=now)
    if phase is PresencePhase.INTERRUPTED:
        started = memory.interrupted_at_s if memory.interrupted_at_s is not None else now
        if now - started >= settings.stop_after_s:
            return replace(memory, phase=PresencePhase.PRESENT, interrupted_at_s=None)
    return memory


def next_phase(  # noqa: PLR0911 - a state machine reads best as one return per transition
    inputs: PolicyInput, settings: PolicySettings, memory: PolicyMemory
) -> PolicyMemory:
    """Advance the presence hysteresis by one sample."""
    presence, now = inputs.presence, inputs.monotonic_s
    if not presence_known(presence):
        return _through_a_gap(settings, memory, now)
    if memory.presence_lost_at_s is not None:
        memory = replace(memory, presence_lost_at_s=None)
    away = _away_now(presence, settings)
    quiet = (
        not presence.fullscreen and presence.idle_s is not None and presence.idle_s >= settings.resume_after_s
    ) or presence.locked is True
    phase = memory.phase
    if phase is None:
        return replace(memory, phase=PresencePhase.AWAY if away else PresencePhase.PRESENT)
    if phase is PresencePhase.AWAY and not away:
        recently_resumed = memory.resumed_at_s is not None and now - memory.resumed_at_s < settings.stop_after_s
        if recently_resumed:  # back again soon after a resume: the owner is really here
            return replace(memory, phase=PresencePhase.PRESENT, interrupted_at_s=None, resumed_at_s=None)
        return replace(memory, phase=PresencePhase.INTERRUPTED, interrupted_at_s=now)
    if phase is PresencePhase.INTERRUPTED:
        if away or quiet:
            return replace(memory, phase=PresencePhase.AWAY, interrupted_at_s=None, resumed_at_s=now)
        started = memory.interrupted_at_s if memory.interrupted_at_s is not None else now
        if now - started >= settings.stop_after_s:
            return replace(memory, phase=PresencePhase.PRESENT, interrupted_at_s=None)
    if phase is PresencePhase.PRESENT and away:
        return replace(memory, phase=PresencePhase.AWAY, resumed_at_s=None)
    return memory


def _gap_constraint(phase: PresencePhase) -> Constraint:
    """While the presence source does not answer: the phase it last told, said as such."""
    if phase is PresencePhase.AWAY:
        return Constraint(Action.WORK, Cause.IDLE, "working: you were away (idle time unknown for a moment)")
    if phase is PresencePhase.INTERRUPTED:
        return Constraint(
            Action.PAUSE, Cause.PRESENCE_UNKNOWN, "paused: idle time unknown (the presence sensor does not answer)"
        )
    return Constraint(
        Action.STOP, Cause.PRESENCE_UNKNOWN, "waiting: idle time unknown (the presence sensor does not answer)"
    )


def _presence_constraint(inputs: PolicyInput, settings: PolicySettings, phase: PresencePhase) -> Constraint:
    presence = inputs.presence
    if phase is PresencePhase.AWAY:
        if presence.locked:
            return Constraint(Action.WORK, Cause.LOCKED, "working: the session is locked")
        idle = format_duration(presence.idle_s or 0.0)
        return Constraint(Action.WORK, Cause.IDLE, f"working: no input for {idle}")
    if phase is PresencePhase.INTERRUPTED:
        if presence.fullscreen:
            what = presence.fullscreen_app or "an app"
            return Constraint(Action.PAUSE, Cause.FULLSCREEN, f"paused: {what} is fullscreen")
        resume = format_duration(settings.resume_after_s)
        return Constraint(
            Action.PAUSE,
            Cause.USER_ACTIVE,
            f"paused: you are using the computer (resumes after {resume} without input)",
        )
    if presence.fullscreen:
        what = presence.fullscreen_app or "an app"
        return Constraint(Action.STOP, Cause.FULLSCREEN, f"waiting: {what} is fullscreen")
    remaining = settings.idle_threshold_s - (presence.idle_s or 0.0)
    return Constraint(
        Action.STOP, Cause.WAITING_FOR_IDLE, f"waiting: {format_duration(remaining)} until idle threshold"
    )


def _schedule_constraint(inputs: PolicyInput, settings: PolicySettings) -> Constraint:
    schedule = settings.schedule
    if schedule is None or schedule.empty:
        return Constraint(Action.STOP, Cause.OUTSIDE_SCHEDULE, "outside scheduled hours: no hours are scheduled")
    if schedule.contains(inputs.wall):
        return Constraint(Action.WORK, Cause.SCHEDULED, "working: inside scheduled hours")
    upcoming = schedule.next_change(inputs.wall)
    when = f" (next window {_local_clock(upcoming, inputs.wall, settings)})" if upcoming else ""
    return Constraint(Action.STOP, Cause.OUTSIDE_SCHEDULE, f"outside scheduled hours{when}")


def _presence_unknown(inputs: PolicyInput, phase: PresencePhase, scheduled: Constraint) -> Constraint:
    """What to do when the sample tells nothing of the owner."""
    if inputs.presence_available:  # the source did not answer this time: the phase stands
        return _gap_constraint(phase)
    # No presence source works here at all: scheduled hours are all we can go by.
    if scheduled.action is Action.WORK:
        return Constraint(Action.WORK, Cause.SCHEDULED, "working: inside scheduled hours (idle time unknown)")
    return Constraint(Action.STOP, Cause.PRESENCE_UNKNOWN, "idle time unknown: only scheduled hours are used")


def _mode_constraint(inputs: PolicyInput, settings: PolicySettings, phase: PresencePhase) -> Constraint:
    scheduled = _schedule_constraint(inputs, settings)
    if settings.mode is WorkMode.SCHEDULE:
        return scheduled
    if settings.mode is WorkMode.IDLE_IN_SCHEDULE and scheduled.action is not Action.WORK:
        return scheduled
    if settings.mode is WorkMode.IDLE_OR_SCHEDULE and scheduled.action is Action.WORK:
        return scheduled
    if presence_known(inputs.presence):
        return _presence_constraint(inputs, settings, phase)
    return _presence_unknown(inputs, phase, scheduled)


def _temperature(gpu: GpuReading, settings: PolicySettings, hot: bool) -> tuple[bool, Constraint | None]:
    """The GPU's new too-hot latch and, while latched, its pause."""
    temperature = gpu.temperature_c
    if temperature is None:
        return hot, None
    cap, resume = settings.max_temperature_c, settings.resume_temperature_c
    if temperature > cap:
        hot = True
    elif hot and temperature < resume:
        hot = False
    if not hot:
        return False, None
    if temperature > cap:
        reason = f"too hot: {temperature:.0f} °C > {cap:.0f} °C cap, resumes below {resume:.0f} °C"
    else:
        reason = f"cooling down: {temperature:.0f} °C, resumes below {resume:.0f} °C"
    return True, Constraint(Action.PAUSE, Cause.TOO_HOT, reason)


def _strongest(constraints: list[Constraint]) -> Constraint:
    strongest = constraints[0]
    for constraint in constraints[1:]:
        if constraint.action > strongest.action:
            strongest = constraint
    return strongest


def _owner_constraints(inputs: PolicyInput, settings: PolicySettings) -> list[Constraint | None]:
    """The owner's own hand-backs, which hold for the whole machine: pause, snooze, battery."""
    controls = inputs.controls
    return [
        Constraint(Action.STOP, Cause.PAUSED_BY_OWNER, "stopped: paused by you") if controls.paused else None,
        Constraint(
            Action.STOP,
            Cause.SNOOZED,
            f"stopped: snoozed until {_local_clock(controls.snoozed_until, inputs.wall, settings)}",
        )
        if controls.snoozed_until is not None and controls.snoozing(inputs.wall)
        else None,
        Constraint(Action.STOP, Cause.ON_BATTERY, "stopped: running on battery")
        if settings.pause_on_battery and inputs.on_battery
        else None,
    ]


def _gpu_hold(inputs: PolicyInput, settings: PolicySettings, uuid: str) -> Constraint | None:
    """The owner's hold on this one GPU, if one is in force."""
    hold = inputs.controls.hold_of(uuid, inputs.wall)
    if hold is None:
        return None
    if hold.until is None:
        return Constraint(Action.STOP, Cause.PAUSED_BY_OWNER, "stopped: you paused this GPU")
    until = _local_clock(hold.until, inputs.wall, settings)
    return Constraint(Action.STOP, Cause.SNOOZED, f"stopped: you snoozed this GPU until {until}")


def _in_use(gpu: GpuReading) -> Constraint | None:
    """Someone else uses this GPU: a program busy on it, or a game seen on it."""
    described = gpu.users or tuple(f"{game} runs on it" for game in gpu.games)
    if not described:
        return None
    return Constraint(Action.STOP, Cause.GPU_IN_USE, f"stopped: this GPU is in use — {'; '.join(described)}")


def _game(inputs: PolicyInput) -> Constraint:
    return Constraint(Action.STOP, Cause.GAME, f"stopped: game running — {', '.join(inputs.games)}")


def decide(inputs: PolicyInput, settings: PolicySettings, memory: PolicyMemory) -> PolicyResult:
    """One decision per GPU and one for the machine (CPU-only work), and the memory for the next call."""
    memory = next_phase(inputs, settings, memory)
    phase = memory.phase or PresencePhase.PRESENT
    mode = _mode_constraint(inputs, settings, phase)
    owner = _owner_constraints(inputs, settings)
    game_seen_on_a_gpu = any(gpu.games for gpu in inputs.gpus)
    hot_gpus: set[int] = set()
    decisions = []
    for gpu in inputs.gpus:
        rules: list[Constraint | None] = [
            Constraint(Action.STOP, Cause.DISABLED, "stopped: sharing is off for this GPU in settings")
            if {gpu.uuid, str(gpu.index)} & settings.disabled_gpus
            else None,
            *owner,
            _gpu_hold(inputs, settings, gpu.uuid),
            _in_use(gpu),
            # A game not (yet) seen on any GPU could be starting on any of them. Another program busy on
            # some GPU (a render) says nothing of where the game will run.
            _game(inputs) if inputs.games and not game_seen_on_a_gpu else None,
            mode,
        ]
        hot, too_hot = _temperature(gpu, settings, gpu.index in memory.hot_gpus)
        if hot:
            hot_gpus.add(gpu.index)
        rules.append(too_hot)
        chosen = _strongest([rule for rule in rules if rule is not None])
        decisions.append(GpuDecision(gpu.index, gpu.uuid, chosen.action, chosen.cause, chosen.reason))
    # A game wants the processor too, whichever GPU it runs on.
    machine = _strongest([rule for rule in [*owner, _game(inputs) if inputs.games else None, mode] if rule])
    return PolicyResult(
        tuple(decisions),
        replace(memory, hot_gpus=frozenset(hot_gpus)),
        MachineDecision(machine.action, machine.cause, machine.reason),
    )
