"""Every reason the policy gives, from plain values: no clocks, no sensors, no sleeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.policy.decide import decide, format_duration
from sparecycles.agent.policy.model import (
    Action,
    Cause,
    GpuHold,
    GpuReading,
    OwnerControls,
    PolicyInput,
    PolicyMemory,
    PolicyResult,
    PolicySettings,
    PresencePhase,
    WorkMode,
)
from sparecycles.agent.sensors.user.model import PresenceSample
from sparecycles.schedule import WeeklySchedule

ZONE = ZoneInfo("Europe/Berlin")
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZONE)
GPUS = (GpuReading(0, "GPU-0", 60.0), GpuReading(1, "GPU-1", 60.0))
SETTINGS = PolicySettings(idle_threshold_s=600, resume_after_s=60, stop_after_s=120, zone=ZONE)
NIGHTS = WeeklySchedule.parse(["Mon-Fri 19:00-08:00", "Sat-Sun"], ZONE)


def idle(seconds: float, *, fullscreen: bool = False, fullscreen_app: str | None = None) -> PresenceSample:
    return PresenceSample("test", idle_s=seconds, locked=False, fullscreen=fullscreen, fullscreen_app=fullscreen_app)


class Run:
    """Feeds samples through the policy in order, as the agent does, keeping its memory."""

    def __init__(self, settings: PolicySettings = SETTINGS, start: datetime = MONDAY_NOON) -> None:
        self.settings = settings
        self.memory = PolicyMemory()
        self.wall = start
        self.monotonic = 1000.0

    def step(
        self,
        presence: PresenceSample,
        *,
        after_s: float = 1.0,
        gpus: tuple[GpuReading, ...] = GPUS,
        **inputs: object,
    ) -> PolicyResult:
        self.wall += timedelta(seconds=after_s)
        self.monotonic += after_s
        result = decide(
            PolicyInput(wall=self.wall, monotonic_s=self.monotonic, presence=presence, gpus=gpus, **inputs),  # type: ignore[arg-type]
            self.settings,
            self.memory,
        )
        self.memory = result.memory
        return result


def only(result: PolicyResult, index: int = 0) -> tuple[Action, Cause, str]:
    decision = result.decisions[index]
    return decision.action, decision.cause, decision.reason


def test_works_when_idle_past_the_threshold() -> None:
    action, cause, reason = only(Run().step(idle(720)))
    assert (action, cause) == (Action.WORK, Cause.IDLE)
    assert reason == "working: no input for 12 min"


def test_waits_with_the_time_left_until_the_threshold() -> None:
    action, cause, reason = only(Run().step(idle(240)))
    assert (action, cause) == (Action.STOP, Cause.WAITING_FOR_IDLE)
    assert reason == "waiting: 6 min until idle threshold"


def test_locked_session_counts_as_away_whatever_the_idle_time() -> None:
    action, cause, reason = only(Run().step(PresenceSample("test", idle_s=3, locked=True)))
    assert (action, cause, reason) == (Action.WORK, Cause.LOCKED, "working: the session is locked")


def test_fullscreen_video_counts_as_presence_even_without_input() -> None:
    action, cause, reason = only(Run().step(idle(3600, fullscreen=True, fullscreen_app="mpv")))
    assert (action, cause, reason) == (Action.STOP, Cause.FULLSCREEN, "waiting: mpv is fullscreen")


def test_input_while_working_pauses_at_once() -> None:
    run = Run()
    assert only(run.step(idle(700)))[0] is Action.WORK
    action, cause, reason = only(run.step(idle(0.2)))
    assert (action, cause) == (Action.PAUSE, Cause.USER_ACTIVE)
    assert reason == "paused: you are using the computer (resumes after 1 min without input)"
    assert all(d.action is Action.PAUSE for d in run.step(idle(0.5)).decisions)


def test_fullscreen_while_working_pauses_and_names_the_app() -> None:
    run = Run()
    run.step(idle(700))
    assert only(run.step(idle(700, fullscreen=True, fullscreen_app="vlc")))[1:] == (
        Cause.FULLSCREEN,
        "paused: vlc is fullscreen",
    )


def test_a_single_twitch_costs_a_minute_not_the_whole_threshold() -> None:
    run = Run()
    run.step(idle(700))
    run.step(idle(0.1))  # the cat walks over the mouse
    assert only(run.step(idle(30), after_s=30))[0] is Action.PAUSE
    assert only(run.step(idle(61), after_s=31))[0] is Action.WORK


def test_staying_at_the_computer_stops_the_work() -> None:
    run = Run()
    run.step(idle(700))
    run.step(idle(0.1))
    for _ in range(11):
        result = run.step(idle(2), after_s=10)
    assert only(result)[0] is Action.PAUSE  # 110 s: still only paused
    action, cause, reason = only(run.step(idle(1), after_s=10))  # 120 s of presence
    assert (action, cause) == (Action.STOP, Cause.WAITING_FOR_IDLE)
    assert "until idle threshold" in reason
    # From here the full threshold applies again, not the short resume.
    assert only(run.step(idle(90), after_s=90))[0] is Action.STOP
    assert only(run.step(idle(600), after_s=510))[0] is Action.WORK


def test_coming_back_soon_after_a_resume_stops_instead_of_flapping() -> None:
    run = Run()
    run.step(idle(700))
    run.step(idle(0.1))
    assert only(run.step(idle(61), after_s=61))[0] is Action.WORK  # resumed
    assert only(run.step(idle(0.3), after_s=20))[0] is Action.STOP  # back within stop_after: stop
    assert run.memory.phase is PresencePhase.PRESENT


def test_temperature_cap_pauses_and_resumes_only_below_the_resume_point() -> None:
    run = Run()
    hot = (GpuReading(0, "GPU-0", 84.0), GpuReading(1, "GPU-1", 60.0))
    action, cause, reason = only(run.step(idle(700), gpus=hot))
    assert (action, cause) == (Action.PAUSE, Cause.TOO_HOT)
    assert reason == "too hot: 84 °C > 83 °C cap, resumes below 75 °C"
    assert only(run.step(idle(701), gpus=hot), 1)[0] is Action.WORK  # the other GPU carries on
    wobble = (GpuReading(0, "GPU-0", 80.0), GpuReading(1, "GPU-1", 60.0))
    assert only(run.step(idle(702), gpus=wobble))[1:] == (Cause.TOO_HOT, "cooling down: 80 °C, resumes below 75 °C")
    cool = (GpuReading(0, "GPU-0", 74.0), GpuReading(1, "GPU-1", 60.0))
    assert only(run.step(idle(703), gpus=cool))[0] is Action.WORK
    assert only(run.step(idle(704), gpus=wobble))[0] is Action.WORK  # 80 °C is below the cap: no flap


def test_foreign_gpu_user_stops_only_its_gpu() -> None:
    eldenring = GpuReading(0, "GPU-0", 60.0, users=("eldenring.exe (6.1 GiB VRAM)",), games=("eldenring.exe",))
    gpus = (eldenring, GpuReading(1, "GPU-1", 60.0))
    result = Run(
        replace(SETTINGS, mode=WorkMode.IDLE_OR_SCHEDULE, schedule=WeeklySchedule.parse(["daily"], ZONE))
    ).step(idle(0), gpus=gpus, games=("eldenring.exe",))
    assert only(result, 0) == (
        Action.STOP,
        Cause.GPU_IN_USE,
        "stopped: this GPU is in use — eldenring.exe (6.1 GiB VRAM)",
    )
    assert only(result, 1)[0] is Action.WORK


def test_another_programs_use_of_one_gpu_does_not_let_a_starting_game_have_the_others() -> None:
    blender = GpuReading(1, "GPU-1", 60.0, users=("blender uses 4.0 GiB VRAM",))
    result = Run().step(idle(900), gpus=(GpuReading(0, "GPU-0", 60.0), blender), games=("witcher3.exe",))
    assert only(result, 0) == (Action.STOP, Cause.GAME, "stopped: game running — witcher3.exe")
    assert only(result, 1)[:2] == (Action.STOP, Cause.GPU_IN_USE)


def test_a_game_seen_on_one_gpu_stops_that_gpu_alone() -> None:
    seen = GpuReading(1, "GPU-1", 60.0, games=("witcher3.exe",))
    result = Run().step(idle(900), gpus=(GpuReading(0, "GPU-0", 60.0), seen), games=("witcher3.exe",))
    assert only(result, 0)[0] is Action.WORK
    assert only(result, 1) == (Action.STOP, Cause.GPU_IN_USE, "stopped: this GPU is in use — witcher3.exe runs on it")


def test_game_not_yet_on_any_gpu_stops_every_gpu() -> None:
    result = Run().step(idle(900), games=("Steam game 1245620 (ELDEN RING)",))
    for index in (0, 1):
        assert only(result, index) == (
            Action.STOP,
            Cause.GAME,
            "stopped: game running — Steam game 1245620 (ELDEN RING)",
        )


def test_owner_pause_and_snooze() -> None:
    assert only(Run().step(idle(900), controls=OwnerControls(paused=True)))[1:] == (
        Cause.PAUSED_BY_OWNER,
        "stopped: paused by you",
    )
    until = MONDAY_NOON.replace(hour=18, minute=30)
    action, cause, reason = only(Run().step(idle(900), controls=OwnerControls(snoozed_until=until)))
    assert (action, cause, reason) == (Action.STOP, Cause.SNOOZED, "stopped: snoozed until 18:30")


def test_snooze_expires_by_the_wall_clock() -> None:
    run = Run()
    controls = OwnerControls(snoozed_until=MONDAY_NOON + timedelta(minutes=30))
    assert only(run.step(idle(900), controls=controls))[1] is Cause.SNOOZED
    assert only(run.step(idle(2700), after_s=1800, controls=controls))[0] is Action.WORK


def test_the_owner_can_pause_or_snooze_one_gpu_while_the_other_works() -> None:
    run = Run()
    paused_one = OwnerControls(gpu_holds=(GpuHold("GPU-1"),))
    result = run.step(idle(900), controls=paused_one)
    assert [(d.index, d.action, d.cause) for d in result.decisions] == [
        (0, Action.WORK, Cause.IDLE),
        (1, Action.STOP, Cause.PAUSED_BY_OWNER),
    ]
    assert result.decisions[1].reason == "stopped: you paused this GPU"
    assert result.machine.action is Action.WORK  # CPU-only work is the machine's, not a GPU's

    snoozed_zero = OwnerControls(gpu_holds=(GpuHold("GPU-0", MONDAY_NOON + timedelta(minutes=30)),))
    result = run.step(idle(901), controls=snoozed_zero)
    assert [(d.action, d.cause) for d in result.decisions] == [(Action.STOP, Cause.SNOOZED), (Action.WORK, Cause.IDLE)]
    assert result.decisions[0].reason == "stopped: you snoozed this GPU until 12:30"
    later = run.step(idle(2701), after_s=1800, controls=snoozed_zero)  # the snooze ran out by the wall clock
    assert [d.action for d in later.decisions] == [Action.WORK, Action.WORK]


def test_a_machine_pause_names_itself_over_a_gpus_own_hold_and_holds_replace_each_other() -> None:
    controls = OwnerControls(paused=True, gpu_holds=(GpuHold("GPU-1"),))
    assert only(Run().step(idle(900), controls=controls), 1)[2] == "stopped: paused by you"
    snoozed = controls.with_hold(GpuHold("GPU-1", MONDAY_NOON + timedelta(hours=1)))
    assert snoozed.gpu_holds == (GpuHold("GPU-1", MONDAY_NOON + timedelta(hours=1)),)
    assert snoozed.without_hold("GPU-1").gpu_holds == ()
    assert snoozed.hold_of("GPU-0", MONDAY_NOON) is None


def test_snooze_into_tomorrow_names_the_day() -> None:
    until = MONDAY_NOON + timedelta(days=1)
    assert only(Run().step(idle(900), controls=OwnerControls(snoozed_until=until)))[2] == (
        "stopped: snoozed until Tue 12:00"
    )


def test_disabled_gpu_by_uuid_or_index() -> None:
    result = Run(replace(SETTINGS, disabled_gpus=frozenset({"GPU-1"}))).step(idle(900))
    assert only(result, 1) == (Action.STOP, Cause.DISABLED, "stopped: sharing is off for this GPU in settings")
    assert only(result, 0)[0] is Action.WORK
    assert only(Run(replace(SETTINGS, disabled_gpus=frozenset({"0"}))).step(idle(900)), 0)[1] is Cause.DISABLED


def test_on_battery() -> None:
    assert only(Run().step(idle(900), on_battery=True))[1:] == (Cause.ON_BATTERY, "stopped: running on battery")
    no_battery_rule = replace(SETTINGS, pause_on_battery=False)
    assert only(Run(no_battery_rule).step(idle(900), on_battery=True))[0] is Action.WORK


def test_schedule_mode_works_inside_hours_whatever_the_presence() -> None:
    settings = replace(SETTINGS, mode=WorkMode.SCHEDULE, schedule=NIGHTS)
    action, cause, reason = only(Run(settings).step(idle(0)))
    assert (action, cause, reason) == (
        Action.STOP,
        Cause.OUTSIDE_SCHEDULE,
        "outside scheduled hours (next window 19:00)",
    )
    evening = Run(settings, start=MONDAY_NOON.replace(hour=20))
    assert only(evening.step(idle(0)))[:2] == (Action.WORK, Cause.SCHEDULED)


def test_window_across_midnight_keeps_working_past_midnight() -> None:
    settings = replace(SETTINGS, mode=WorkMode.SCHEDULE, schedule=NIGHTS)
    run = Run(settings, start=datetime(2026, 11, 23, 23, 59, 30, tzinfo=ZONE))
    assert only(run.step(idle(0)))[0] is Action.WORK  # 23:59:31 Monday
    assert only(run.step(idle(0), after_s=60))[0] is Action.WORK  # 00:00:31 Tuesday
    assert only(run.step(idle(0), after_s=8 * 3600))[1] is Cause.OUTSIDE_SCHEDULE  # 08:00:31


def test_daylight_saving_change_moves_the_window_with_the_wall_clock() -> None:
    settings = replace(SETTINGS, mode=WorkMode.SCHEDULE, schedule=WeeklySchedule.parse(["daily 22:00-06:00"], ZONE))
    run = Run(settings, start=datetime(2026, 3, 28, 21, 59, 59, tzinfo=ZONE).astimezone(UTC))
    assert only(run.step(idle(0)))[0] is Action.WORK  # 22:00 CET
    # 7 h later in elapsed time is 06:00 CEST (the clocks went forward): the window has closed.
    assert only(run.step(idle(0), after_s=7 * 3600))[1] is Cause.OUTSIDE_SCHEDULE
    run = Run(settings, start=datetime(2026, 3, 28, 21, 59, 59, tzinfo=ZONE).astimezone(UTC))
    run.step(idle(0))
    assert only(run.step(idle(0), after_s=7 * 3600 - 2))[0] is Action.WORK  # 05:59:59 CEST


def test_idle_in_schedule_needs_both() -> None:
    settings = replace(SETTINGS, mode=WorkMode.IDLE_IN_SCHEDULE, schedule=NIGHTS)
    assert only(Run(settings).step(idle(900)))[1] is Cause.OUTSIDE_SCHEDULE
    night = Run(settings, start=MONDAY_NOON.replace(hour=21))
    assert only(night.step(idle(100)))[1] is Cause.WAITING_FOR_IDLE
    assert only(night.step(idle(900), after_s=800))[1] is Cause.IDLE


def test_idle_or_schedule_takes_either() -> None:
    settings = replace(SETTINGS, mode=WorkMode.IDLE_OR_SCHEDULE, schedule=NIGHTS)
    assert only(Run(settings).step(idle(900)))[1] is Cause.IDLE
    assert only(Run(settings, start=MONDAY_NOON.replace(hour=21)).step(idle(0)))[1] is Cause.SCHEDULED


def test_without_any_presence_source_scheduled_hours_stand_in() -> None:
    unknown = PresenceSample(source="none")
    action, cause, reason = only(Run().step(unknown, presence_available=False))
    assert (action, cause, reason) == (
        Action.STOP,
        Cause.PRESENCE_UNKNOWN,
        "idle time unknown: only scheduled hours are used",
    )
    scheduled = Run(replace(SETTINGS, schedule=NIGHTS), start=MONDAY_NOON.replace(hour=21))
    assert only(scheduled.step(unknown, presence_available=False))[2] == (
        "working: inside scheduled hours (idle time unknown)"
    )


FAILED_READ = PresenceSample("x11")  # what a source answers while its display or bus is lost: every field None


@pytest.mark.parametrize("mode", [WorkMode.IDLE, WorkMode.IDLE_IN_SCHEDULE])
def test_a_failed_presence_read_never_turns_a_pause_into_work(mode: WorkMode) -> None:
    run = Run(replace(SETTINGS, mode=mode, schedule=NIGHTS), start=MONDAY_NOON.replace(hour=21))
    assert only(run.step(idle(1200)))[0] is Action.WORK
    assert only(run.step(idle(0.2), after_s=0.1))[0] is Action.PAUSE  # the owner types
    assert only(run.step(FAILED_READ, after_s=0.1)) == (
        Action.PAUSE,
        Cause.PRESENCE_UNKNOWN,
        "paused: idle time unknown (the presence sensor does not answer)",
    )
    assert only(run.step(idle(0.3), after_s=0.1))[1] is Cause.USER_ACTIVE
    for _ in range(13):  # the source stays away: the pause runs into a stop as presence would
        result = run.step(FAILED_READ, after_s=10)
    assert only(result)[:2] == (Action.STOP, Cause.PRESENCE_UNKNOWN)
    assert only(run.step(idle(20), after_s=0.1))[0] is Action.STOP  # back: the full threshold applies


def test_a_failed_presence_read_keeps_a_stop_and_does_not_start_work() -> None:
    run = Run(replace(SETTINGS, mode=WorkMode.IDLE_IN_SCHEDULE, schedule=NIGHTS), start=MONDAY_NOON.replace(hour=21))
    assert only(run.step(FAILED_READ))[:2] == (Action.STOP, Cause.PRESENCE_UNKNOWN)  # nothing known yet
    assert only(run.step(idle(5)))[1] is Cause.WAITING_FOR_IDLE
    assert only(run.step(FAILED_READ)) == (
        Action.STOP,
        Cause.PRESENCE_UNKNOWN,
        "waiting: idle time unknown (the presence sensor does not answer)",
    )


def test_a_short_gap_while_away_keeps_working_and_a_long_one_freezes_the_job() -> None:
    run = Run()
    assert only(run.step(idle(1200)))[0] is Action.WORK
    assert only(run.step(FAILED_READ, after_s=0.1)) == (
        Action.WORK,
        Cause.IDLE,
        "working: you were away (idle time unknown for a moment)",
    )
    assert only(run.step(idle(1200.2), after_s=0.1))[1] is Cause.IDLE  # the source is back: nothing happened
    assert only(run.step(FAILED_READ, after_s=0.1))[0] is Action.WORK
    assert only(run.step(FAILED_READ, after_s=3))[0] is Action.WORK
    assert only(run.step(FAILED_READ, after_s=3))[:2] == (Action.PAUSE, Cause.PRESENCE_UNKNOWN)  # 6 s of silence
    assert only(run.step(idle(1210), after_s=0.1))[0] is Action.WORK  # still away: it resumes


def test_a_fullscreen_app_is_presence_even_without_an_idle_time() -> None:
    run = Run()
    run.step(idle(1200))
    fullscreen = PresenceSample("x11", fullscreen=True, fullscreen_app="mpv")
    assert only(run.step(fullscreen, after_s=0.1))[:2] == (Action.PAUSE, Cause.FULLSCREEN)


def test_a_suspend_jumps_the_wall_clock_but_not_monotonic_time() -> None:
    """Asleep from 18:00 to 20:00: the snooze and the schedule follow the wall clock at once, while
    the presence hysteresis (monotonic) does not mistake the sleep for two hours of presence."""
    settings = replace(SETTINGS, mode=WorkMode.IDLE_OR_SCHEDULE, schedule=NIGHTS)
    run = Run(settings, start=MONDAY_NOON.replace(hour=18))
    controls = OwnerControls(snoozed_until=MONDAY_NOON.replace(hour=18, minute=30))
    assert only(run.step(idle(5), controls=controls))[1] is Cause.SNOOZED
    run.wall += timedelta(hours=2)  # the suspend: wall clock moves, monotonic does not
    action, cause, _ = only(run.step(idle(5), after_s=0.5, controls=controls))
    assert (action, cause) == (Action.WORK, Cause.SCHEDULED)


def test_suspend_during_an_interruption_does_not_count_as_presence() -> None:
    run = Run()
    run.step(idle(700))
    run.step(idle(0.1))
    run.wall += timedelta(hours=3)  # suspended right after the twitch
    result = run.step(idle(65), after_s=65)  # the idle counter after waking
    assert only(result)[0] is Action.WORK


def test_strongest_action_wins_and_the_first_rule_explains_it() -> None:
    hot = (GpuReading(0, "GPU-0", 90.0),)
    result = Run().step(idle(0), gpus=hot, controls=OwnerControls(paused=True))
    assert only(result)[1] is Cause.PAUSED_BY_OWNER  # stop beats the temperature's pause


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (44.2, "45 s"), (360, "6 min"), (3900, "1 h 05 min")])
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def machine(result: PolicyResult) -> tuple[Action, Cause, str]:
    return result.machine.action, result.machine.cause, result.machine.reason


def test_the_machine_decision_for_cpu_jobs_follows_the_owner_but_not_one_gpus_heat_or_users() -> None:
    run = Run()
    hot_and_busy = (
        GpuReading(0, "GPU-0", 90.0),
        GpuReading(1, "GPU-1", 60.0, users=("blender (3.0 GiB VRAM)",)),
    )
    disabled = replace(SETTINGS, disabled_gpus=frozenset({"0", "1"}))
    assert machine(Run(disabled).step(idle(700), gpus=hot_and_busy)) == (
        Action.WORK,
        Cause.IDLE,
        "working: no input for 12 min",
    )
    assert machine(run.step(idle(700), gpus=())) == (Action.WORK, Cause.IDLE, "working: no input for 12 min")
    assert machine(run.step(idle(0.5), gpus=()))[:2] == (Action.PAUSE, Cause.USER_ACTIVE)  # hysteresis as for GPUs
    assert machine(Run().step(idle(100), gpus=()))[:2] == (Action.STOP, Cause.WAITING_FOR_IDLE)
    assert machine(Run().step(idle(900), gpus=(), controls=OwnerControls(paused=True)))[1] is Cause.PAUSED_BY_OWNER
    assert machine(Run().step(idle(900), gpus=(), on_battery=True))[1] is Cause.ON_BATTERY


def test_a_game_on_a_gpu_stops_cpu_jobs_too() -> None:
    eldenring = GpuReading(0, "GPU-0", 60.0, users=("eldenring.exe (6.1 GiB VRAM)",), games=("eldenring.exe",))
    gpus = (eldenring, GpuReading(1, "GPU-1", 60.0))
    result = Run().step(idle(900), gpus=gpus, games=("eldenring.exe",))
    assert only(result, 1)[0] is Action.WORK  # the other GPU carries on
    assert machine(result) == (Action.STOP, Cause.GAME, "stopped: game running — eldenring.exe")
