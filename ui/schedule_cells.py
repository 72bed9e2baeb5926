"""The schedule as a painted week: half-hour cells to and from the agent's rule strings.

Pure, without Qt, so the grid editor's one delicate part (turning what the user painted into the fewest
readable rules, and back) is tested with plain values. Rules are read with the agent's own parser
(:mod:`sparecycles.schedule`), so the grid shows exactly what the agent will obey; a rule finer than
half an hour is widened to the half hours it touches.
"""

from __future__ import annotations

from collections.abc import Iterable

from sparecycles.schedule import DAY_NAMES, parse_rule

SLOTS_PER_DAY = 48  # half hours
SLOT_MINUTES = 24 * 60 // SLOTS_PER_DAY
WEEK_SLOTS = 7 * SLOTS_PER_DAY

Cell = tuple[int, int]  # (day 0 = Monday, half hour 0..47)


def cells_from_rules(rules: Iterable[str]) -> frozenset[Cell]:
    """The half hours of the week inside any rule (a ScheduleError names a rule the agent would refuse)."""
    cells: set[Cell] = set()
    for text in rules:
        rule = parse_rule(text)
        start = rule.start.hour * 60 + rule.start.minute
        end = rule.end.hour * 60 + rule.end.minute
        if end <= start:
            end += 24 * 60  # across midnight, or all day when equal
        first, last = start // SLOT_MINUTES, -(-end // SLOT_MINUTES)  # widened to whole half hours
        for day in rule.days:
            for slot in range(first, last):
                week_slot = (day * SLOTS_PER_DAY + slot) % WEEK_SLOTS
                cells.add(divmod(week_slot, SLOTS_PER_DAY))
    return frozenset(cells)


def rules_from_cells(cells: Iterable[Cell]) -> list[str]:
    """The fewest plain rules covering exactly ``cells``: runs of a day, joined across midnight where that
    stays under a day, and days with the same hours merged ("Mon-Fri 18:00-08:00")."""
    painted = [False] * WEEK_SLOTS
    for day, slot in cells:
        painted[day * SLOTS_PER_DAY + slot] = True
    if all(painted):
        return ["daily"]
    windows = _day_pieces(painted)
    by_hours: dict[tuple[int, int], set[int]] = {}
    for day, start, end in _join_across_midnight(windows):
        by_hours.setdefault((start, end), set()).add(day)
    rules = [(sorted(days), start, end) for (start, end), days in by_hours.items()]
    rules.sort(key=lambda rule: (rule[0][0], rule[1], rule[2]))
    return [_format(days, start, end) for days, start, end in rules]


def _day_pieces(painted: list[bool]) -> list[tuple[int, int, int]]:
    """(day, first slot, end slot) of each run inside one day."""
    pieces = []
    for day in range(7):
        row = painted[day * SLOTS_PER_DAY : (day + 1) * SLOTS_PER_DAY]
        slot = 0
        while slot < SLOTS_PER_DAY:
            if not row[slot]:
                slot += 1
                continue
            start = slot
            while slot < SLOTS_PER_DAY and row[slot]:
                slot += 1
            pieces.append((day, start, slot))
    return pieces


def _join_across_midnight(pieces: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """A piece running to midnight and the next day's piece from midnight become one window (end < start)
    when neither is a whole day; a whole day stays "all day" (start = end = 0)."""
    starts_at_midnight = {day: end for day, start, end in pieces if start == 0 and end < SLOTS_PER_DAY}
    used: set[int] = set()
    joined = []
    for day, start, end in pieces:
        if start == 0 and end == SLOTS_PER_DAY:
            joined.append((day, 0, 0))
        elif end == SLOTS_PER_DAY and start > 0 and (day + 1) % 7 in starts_at_midnight:
            following = (day + 1) % 7
            used.add(following)
            joined.append((day, start, starts_at_midnight[following]))
        else:
            joined.append((day, start, end))
    return [(day, start, end) for day, start, end in joined if not (start == 0 and end > 0 and day in used)]


def _format(days: list[int], start: int, end: int) -> str:
    named = _day_ranges(days)
    if start == end == 0:
        return named
    return f"{named} {_clock(start)}-{_clock(end)}"


def _clock(slot: int) -> str:
    minutes = slot * SLOT_MINUTES
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_ranges(days: list[int]) -> str:
    """ "Mon-Fri", "Sat-Sun", "Mon, Wed", "daily"."""
    if len(days) == 7:
        return "daily"
    parts = []
    run = [days[0]]
    for day in days[1:]:
        if day == run[-1] + 1:
            run.append(day)
        else:
            parts.append(run)
            run = [day]
    parts.append(run)
    names = [
        DAY_NAMES[r[0]].capitalize()
        if len(r) == 1
        else f"{DAY_NAMES[r[0]].capitalize()}-{DAY_NAMES[r[-1]].capitalize()}"
        for r in parts
    ]
    return ", ".join(names)
