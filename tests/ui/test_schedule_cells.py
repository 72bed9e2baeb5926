"""The painted week and the agent's schedule rules, both ways: rules read by the agent's own parser become
cells, cells become the fewest plain rules, and neither way loses a half hour (no Qt needed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sparecycles.config import ScheduleSettings
from sparecycles.ui.schedule_cells import SLOTS_PER_DAY, cells_from_rules, rules_from_cells


def test_rules_become_the_half_hours_they_cover() -> None:
    cells = cells_from_rules(["Mon 18:00-08:00"])
    assert {(0, 36), (0, 47)} <= cells  # Monday 18:00 to midnight
    assert {(1, 0), (1, 15)} <= cells  # Tuesday until 08:00
    assert not {(1, 16), (0, 35)} & cells
    assert len(cells) == 28


def test_sunday_night_runs_into_monday() -> None:
    assert cells_from_rules(["Sun 23:00-01:00"]) == {(6, 46), (6, 47), (0, 0), (0, 1)}


def test_a_rule_finer_than_half_an_hour_is_widened() -> None:
    assert cells_from_rules(["Tue 09:15-09:45"]) == {(1, 18), (1, 19)}


def test_cells_become_the_fewest_plain_rules() -> None:
    assert rules_from_cells(cells_from_rules(["weekdays 18:00-08:00"])) == ["Mon-Fri 18:00-08:00"]
    assert rules_from_cells(cells_from_rules(["daily"])) == ["daily"]
    assert rules_from_cells(cells_from_rules(["weekends"])) == ["Sat-Sun"]
    assert rules_from_cells(cells_from_rules(["Mon 09:00-12:00", "Wed 09:00-12:00"])) == ["Mon, Wed 09:00-12:00"]
    assert rules_from_cells(cells_from_rules(["Sun 22:00-06:00"])) == ["Sun 22:00-06:00"]
    assert rules_from_cells([(2, 47)]) == ["Wed 23:30-24:00"]
    assert rules_from_cells([]) == []


def test_well_known_schedules_survive_the_round_trip() -> None:
    for rules in (
        ["Mon-Fri 19:00-08:00", "Sat-Sun"],
        ["daily 22:00-06:00"],
        ["Fri 18:00-24:00", "Sat-Sun all day", "Mon 00:00-08:00"],
        ["Thu 12:30-13:00"],
    ):
        cells = cells_from_rules(rules)
        back = rules_from_cells(cells)
        assert cells_from_rules(back) == cells, (rules, back)


cell_sets = st.frozensets(st.tuples(st.integers(0, 6), st.integers(0, SLOTS_PER_DAY - 1)), max_size=120)


@settings(max_examples=300)
@given(cell_sets)
def test_any_painting_round_trips_through_rules_the_agent_accepts(cells: frozenset[tuple[int, int]]) -> None:
    rules = rules_from_cells(cells)
    ScheduleSettings(windows=rules)  # the agent's own validation takes them
    assert cells_from_rules(rules) == cells


@settings(max_examples=100)
@given(cell_sets)
def test_rules_are_stable_once_written(cells: frozenset[tuple[int, int]]) -> None:
    rules = rules_from_cells(cells)
    assert rules_from_cells(cells_from_rules(rules)) == rules
