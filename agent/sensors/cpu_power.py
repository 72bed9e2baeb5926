"""The CPU's power per busy core, for the price floor of CPU-only jobs.

The agent bids per core-hour and must never bid below the electricity the work costs. Where Linux
exposes the CPU's RAPL energy counters (Intel, and recent AMD, under ``/sys/class/powercap``) the
draw is measured: :class:`RaplMeter` reads the counters (the only I/O here) and
:class:`CpuPowerEstimate` turns readings into watts per busy core (pure, fed plain values). Where
the counters are missing or readable by root only, :func:`cpu_watts_per_core` falls back to the
configured figure and says so.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

_log = logging.getLogger(__name__)

POWERCAP_ROOT = Path("/sys/class/powercap")
MEASURED_SOURCE = "measured with RAPL"
CONFIGURED_SOURCE = "configured (ledger.cpu_watts_per_core)"

# A top-level zone is one package (socket); ``intel-rapl:0:0`` and the like are its subzones (core,
# uncore, dram), already inside the package's count. ``intel-rapl-mmio:*`` repeats the package.
_TOP_LEVEL_ZONE = re.compile(r"intel-rapl:(\d+)")
# ``psys`` (the whole platform, packages included) is top-level on some laptops; it would count twice.
_PACKAGE_NAME_PREFIX = "package"


class RaplMeter:
    """Reads the RAPL package energy counters: the sum over packages, with each one's wraparound undone.

    :meth:`read_uj` returns a total that only grows: the first reading is the plain sum of the
    packages' ``energy_uj``; later readings add each package's increase, where a counter that went
    back is taken as having wrapped at its ``max_energy_range_uj`` (the kernel's documented
    behaviour). A package whose range cannot be read and whose counter went back is taken as
    restarted from zero. Feed the total to :class:`CpuPowerEstimate` without a counter range.
    """

    def __init__(self, root: Path = POWERCAP_ROOT) -> None:
        self._root = root
        self._last_raw_uj: dict[str, int] = {}
        self._ranges_uj: dict[str, int | None] = {}
        self._total_uj: int | None = None
        self._reported: str | None = None

    def available(self) -> str | None:
        """None when the counters can be read, else why not, in words a user can act on."""
        zones = self._packages()
        if not zones:
            return f"no RAPL energy counters (no {self._root}/intel-rapl:*)"
        for zone in zones:
            path = zone / "energy_uj"
            try:
                _read_int(path)
            except (OSError, ValueError) as exc:
                return _unreadable_reason(path, exc)
        return None

    def read_uj(self) -> int | None:
        """The packages' energy in microjoules (a total that only grows), or None when it cannot be read."""
        zones = self._packages()
        if not zones:
            self._report(f"no RAPL energy counters (no {self._root}/intel-rapl:*)")
            return None
        raw_uj: dict[str, int] = {}
        for zone in zones:
            path = zone / "energy_uj"
            try:
                raw_uj[zone.name] = _read_int(path)
            except (OSError, ValueError) as exc:
                self._report(_unreadable_reason(path, exc))
                return None
        self._reported = None
        if self._total_uj is None:
            self._total_uj = sum(raw_uj.values())
        else:
            for name, raw in raw_uj.items():
                last = self._last_raw_uj.get(name)
                if last is not None:  # a package seen for the first time counts from its next reading
                    self._total_uj += self._increase_uj(name, last, raw)
        self._last_raw_uj = raw_uj
        return self._total_uj

    def _packages(self) -> list[Path]:
        """The top-level package zones, in index order; empty when powercap or RAPL is absent."""
        try:
            entries = list(self._root.iterdir())
        except OSError:
            return []
        zones: list[tuple[int, Path]] = []
        for entry in entries:
            match = _TOP_LEVEL_ZONE.fullmatch(entry.name)
            if match is not None and _is_package(entry):
                zones.append((int(match.group(1)), entry))
        return [zone for _, zone in sorted(zones)]

    def _increase_uj(self, name: str, last: int, raw: int) -> int:
        if raw >= last:
            return raw - last
        range_uj = self._range_uj(name)
        if range_uj is not None and last <= range_uj:
            return raw + range_uj - last
        return raw  # restarted (reloaded driver, firmware reset): what it counted since then

    def _range_uj(self, name: str) -> int | None:
        if name not in self._ranges_uj:
            try:
                self._ranges_uj[name] = _read_int(self._root / name / "max_energy_range_uj")
            except (OSError, ValueError):
                self._ranges_uj[name] = None
        return self._ranges_uj[name]

    def _report(self, reason: str) -> None:
        """Log why the counters cannot be read once, not on every poll."""
        if reason != self._reported:
            _log.warning("CPU power not measured: %s", reason)
            self._reported = reason


def _is_package(zone: Path) -> bool:
    try:
        name = (zone / "name").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return True  # a top-level zone that does not say is most likely a package
    return name.startswith(_PACKAGE_NAME_PREFIX)


def _read_int(path: Path) -> int:
    return int(path.read_text(encoding="utf-8").strip())


def _unreadable_reason(path: Path, exc: OSError | ValueError) -> str:
    if isinstance(exc, PermissionError):
        return (
            f"RAPL energy counters are readable by root only ({path}: {exc.strerror}): "
            "the configured watts per core is used"
        )
    error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"RAPL energy counter not readable ({path}: {error}): the configured watts per core is used"


class CpuPowerEstimate:
    """Watts per busy core from energy readings: package power above the idle baseline, per core our jobs use.

    Fed ``(monotonic_s, package_energy_uj, busy_cores)`` observations, where ``busy_cores`` is what
    our CPU jobs use at that moment (0 when none run). An interval counts only when both its ends
    report the same ``busy_cores``: a job started or stopped somewhere inside it, at an unknown
    moment. Idle intervals feed the idle baseline; busy ones, once a baseline is known, feed
    ``(package W - idle W) / busy_cores`` (never below zero). Both are exponentially weighted by
    time, so long intervals weigh more than short ones and old conditions fade with ``half_life_s``.

    Skipped intervals: a time that did not advance; a counter that went back by more than
    ``counter_range_uj`` (or at all, without a range), i.e. it restarted; and a draw above
    ``max_package_w``, which no CPU reaches (a restart that looked like a wrap).
    """

    def __init__(
        self,
        *,
        counter_range_uj: int | None = None,
        half_life_s: float = 600.0,
        max_package_w: float = 10_000.0,
    ) -> None:
        if counter_range_uj is not None and counter_range_uj <= 0:
            raise ValueError(f"counter_range_uj must be positive, not {counter_range_uj}")
        if not half_life_s > 0:
            raise ValueError(f"half_life_s must be positive, not {half_life_s}")
        if not max_package_w > 0:
            raise ValueError(f"max_package_w must be positive, not {max_package_w}")
        self._range_uj = counter_range_uj
        self._half_life_s = half_life_s
        self._max_package_w = max_package_w
        self._last: tuple[float, int, float] | None = None
        self._idle_w: float | None = None
        self._per_core_w: float | None = None

    def observe(self, monotonic_s: float, package_energy_uj: int, busy_cores: float) -> None:
        """Take one reading; the interval since the previous one updates the averages where it can."""
        if not math.isfinite(busy_cores) or busy_cores < 0:
            raise ValueError(f"busy_cores must be a finite number >= 0, not {busy_cores}")
        last, self._last = self._last, (monotonic_s, package_energy_uj, busy_cores)
        if last is None:
            return
        last_s, last_uj, last_cores = last
        elapsed_s = monotonic_s - last_s
        if not elapsed_s > 0:
            return
        used_uj = self._energy_used_uj(last_uj, package_energy_uj)
        if used_uj is None:
            return
        package_w = used_uj / 1e6 / elapsed_s
        if package_w > self._max_package_w or not math.isclose(last_cores, busy_cores, abs_tol=1e-9):
            return
        weight = 1.0 - 0.5 ** (elapsed_s / self._half_life_s)
        if busy_cores == 0:
            self._idle_w = _ewma(self._idle_w, package_w, weight)
        elif self._idle_w is not None:
            per_core_w = max(0.0, (package_w - self._idle_w) / busy_cores)
            self._per_core_w = _ewma(self._per_core_w, per_core_w, weight)

    def watts_per_core(self) -> float | None:
        """The measured draw of one busy core in watts; None until a busy interval followed an idle one."""
        return self._per_core_w

    def idle_watts(self) -> float | None:
        """The package draw with none of our jobs running, in watts; None until an idle interval was seen."""
        return self._idle_w

    def _energy_used_uj(self, last_uj: int, now_uj: int) -> int | None:
        """Microjoules between two readings, undoing one wrap; None for a counter that restarted."""
        used = now_uj - last_uj
        if used >= 0:
            return used
        if self._range_uj is not None and -used <= self._range_uj:
            return used + self._range_uj
        return None


def _ewma(average: float | None, value: float, weight: float) -> float:
    return value if average is None else average + weight * (value - average)


def cpu_watts_per_core(measured: float | None, configured: float) -> tuple[float, str]:
    """The watts per busy core to price with, and where it came from: measured where RAPL gave a figure."""
    if measured is not None:
        return measured, MEASURED_SOURCE
    return configured, CONFIGURED_SOURCE
