"""NVML's energy counter into increments: counted once across counter resets, reboots and agent restarts."""

from __future__ import annotations

import pytest

from sparecycles.agent.ledger.energy import CounterState, advance, integrate_power


def test_successive_readings_count_the_energy_between_them() -> None:
    first = advance(None, "boot-1", 5_000_000)
    assert first.energy_mj == 0  # the baseline: energy before the agent looked is not the job's
    second = advance(first.state, "boot-1", 5_300_000)
    assert (second.energy_mj, second.reset) == (300_000, False)


def test_a_counter_that_resets_mid_job_counts_only_what_came_after_the_reset() -> None:
    state = advance(None, "boot-1", 9_000_000).state
    state = advance(state, "boot-1", 9_400_000).state
    reset = advance(state, "boot-1", 150_000)  # the driver reloaded: the counter restarted from 0
    assert (reset.energy_mj, reset.reset) == (150_000, True)
    after = advance(reset.state, "boot-1", 250_000)
    assert after.energy_mj == 100_000
    total = 400_000 + reset.energy_mj + after.energy_mj
    assert total == 650_000  # nothing counted twice, nothing negative


def test_a_reboot_is_a_reset_even_when_the_new_reading_is_higher() -> None:
    state = CounterState("boot-1", 1_000)
    rebooted = advance(state, "boot-2", 5_000_000)
    assert (rebooted.energy_mj, rebooted.reset) == (5_000_000, True)


def test_a_restarted_agent_continues_from_the_committed_state_without_double_counting() -> None:
    committed = advance(CounterState("boot-1", 2_000_000), "boot-1", 2_500_000)
    # The agent is killed after committing; the next one starts from the stored state.
    again = advance(committed.state, "boot-1", 2_700_000)
    assert committed.energy_mj + again.energy_mj == 700_000


def test_jitter_below_the_last_reading_counts_nothing_and_keeps_the_baseline() -> None:
    state = CounterState("boot-1", 1_000_000)
    jitter = advance(state, "boot-1", 999_700)
    assert (jitter.energy_mj, jitter.reset, jitter.state) == (0, False, state)
    assert advance(jitter.state, "boot-1", 1_000_500).energy_mj == 500


def test_power_samples_integrate_by_the_trapezoid_rule() -> None:
    assert integrate_power([(0.0, 100.0), (10.0, 200.0), (20.0, 200.0)]) == pytest.approx(1500 + 2000)
    assert integrate_power([(0.0, 50.0)]) == 0.0
    with pytest.raises(ValueError, match="time order"):
        integrate_power([(5.0, 1.0), (1.0, 1.0)])
    with pytest.raises(ValueError, match="negative"):
        advance(None, "boot-1", -1)
