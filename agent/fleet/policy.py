"""A studio group's policy laid over the owner's own settings: pure, so every combination is tested.

The owner always keeps what is stricter. Work runs only when both the group's rules and the owner's allow it;
the lower temperature cap and power limit apply, the longer idle threshold, and both lists of games and apps
that pause work. Nothing here writes the owner's settings file: leaving the group gives back the owner's own
settings as they were.
"""

from __future__ import annotations

from sparecycles.agent.sensors.activity.defaults import DEFAULT_PAUSE_PROCESSES
from sparecycles.config import Settings
from sparecycles.durations import parse_duration
from sparecycles.protocol.fleet import GroupPolicy
from sparecycles.schedule import intersect_windows

# What a work mode asks for: the owner away (idle), inside the windows, or either of the two.
_NEEDS_IDLE = {"idle": True, "schedule": False, "idle_in_schedule": True}
_NEEDS_WINDOWS = {"idle": False, "schedule": True, "idle_in_schedule": True}


def combine_modes(ours: str, our_windows: list[str], theirs: str, their_windows: list[str]) -> tuple[str, list[str]]:
    """The work mode and windows under which both rules allow work (exactly, or stricter where the four modes
    cannot say it exactly). ``idle_or_schedule`` is "away, or inside the windows"."""
    if ours == "idle_or_schedule" and theirs == "idle_or_schedule":
        return "idle_or_schedule", intersect_windows(our_windows, their_windows)  # away, or inside both
    if ours == "idle_or_schedule" or theirs == "idle_or_schedule":
        strict, strict_windows = (theirs, their_windows) if ours == "idle_or_schedule" else (ours, our_windows)
        if strict == "schedule":
            # Inside the windows and (away, or inside the other's): said as away inside the windows (stricter).
            return "idle_in_schedule", strict_windows
        return strict, strict_windows  # idle, or idle_in_schedule: the other rule adds nothing
    needs_idle = _NEEDS_IDLE[ours] or _NEEDS_IDLE[theirs]
    windowed = [windows for mode, windows in ((ours, our_windows), (theirs, their_windows)) if _NEEDS_WINDOWS[mode]]
    if not windowed:
        return "idle", []
    windows = windowed[0] if len(windowed) == 1 else intersect_windows(*windowed)
    return ("idle_in_schedule" if needs_idle else "schedule"), windows


def apply_group_policy(own: Settings, policy: GroupPolicy) -> Settings:
    """The settings the agent works by while in the group: ``own`` with the group's rules laid over it."""
    work, schedule, gpu, games = own.work, own.schedule, own.gpu, own.games
    if policy.mode is not None or policy.windows is not None:
        their_mode = policy.mode or ("schedule" if policy.windows is not None else work.mode)
        their_windows = policy.windows if policy.windows is not None else schedule.windows
        mode, windows = combine_modes(work.mode, schedule.windows, their_mode, their_windows)
        work = work.model_copy(update={"mode": mode})
        schedule = schedule.model_copy(update={"windows": windows})
    if policy.idle_threshold is not None and parse_duration(policy.idle_threshold) > parse_duration(
        work.idle_threshold
    ):
        work = work.model_copy(update={"idle_threshold": policy.idle_threshold})
    if policy.max_temperature_c is not None and policy.max_temperature_c < gpu.max_temperature_c:
        resume = gpu.resume_temperature_c
        if resume is not None and resume >= policy.max_temperature_c:
            resume = None  # 8 below the new cap
        gpu = gpu.model_copy(update={"max_temperature_c": policy.max_temperature_c, "resume_temperature_c": resume})
    if policy.power_limit_percent is not None and (
        gpu.power_limit_percent is None or policy.power_limit_percent < gpu.power_limit_percent
    ):
        gpu = gpu.model_copy(update={"power_limit_percent": policy.power_limit_percent})
    if policy.pause_processes:
        mine = games.pause_processes if games.pause_processes is not None else list(DEFAULT_PAUSE_PROCESSES)
        added = [name for name in policy.pause_processes if name not in mine]
        games = games.model_copy(update={"pause_processes": [*mine, *added]})
    return own.model_copy(update={"work": work, "schedule": schedule, "gpu": gpu, "games": games})
