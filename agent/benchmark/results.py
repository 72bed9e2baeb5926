"""A benchmark result as a record, its JSON form, and the store of the latest good result per GPU.

The record is what the worker prints, what the agent keeps, and what it will send to the marketplace;
its JSON form carries a schema number so that a later change can still read older files. The store
keeps one result per GPU UUID in one JSON file, written atomically; a damaged file is set aside under
another name (so nothing is lost for a bug report) and the agent simply benchmarks again.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

from sparecycles.agent.benchmark.errors import ResultFormatError
from sparecycles.agent.benchmark.figures import Figures
from sparecycles.agent.benchmark.measure import Measurement, PhaseResult
from sparecycles.agent.benchmark.outliers import FigureName, Flag, FlagKind, check_figures
from sparecycles.agent.benchmark.reference_table import GpuReference
from sparecycles.agent.benchmark.score import score_figures
from sparecycles.fileio import atomic_write_text

log = logging.getLogger(__name__)

SCHEMA = 1
_T = TypeVar("_T")


@dataclass(frozen=True)
class PhaseRecord:
    """One phase as recorded: its figure, steadiness, and the board's power and temperature meanwhile."""

    phase: str
    unit: str
    value: float | None
    unsupported: str | None
    spread: float | None
    operations: int
    seconds: float
    mean_power_w: float | None
    max_power_w: float | None
    max_temperature_c: float | None
    tflops_per_watt: float | None

    @classmethod
    def from_phase(cls, result: PhaseResult) -> PhaseRecord:
        power = result.power
        return cls(
            phase=result.phase,
            unit=result.unit,
            value=result.value,
            unsupported=result.unsupported,
            spread=result.spread,
            operations=result.timed_operations,
            seconds=result.timed_seconds,
            mean_power_w=power.mean_power_w if power is not None else None,
            max_power_w=power.max_power_w if power is not None else None,
            max_temperature_c=power.max_temperature_c if power is not None else None,
            tflops_per_watt=result.tflops_per_watt,
        )


@dataclass(frozen=True)
class BenchmarkResult:
    """A complete benchmark of one GPU."""

    gpu_index: int
    gpu_uuid: str
    gpu_name: str
    driver_version: str | None
    measured_at: datetime  # UTC
    mode: str  # "quick" or "full"
    runner: str  # how it ran: "in-process: torch", "in-process: cupy", "container: <image>"
    figures: Figures
    phases: tuple[PhaseRecord, ...]
    score: float | None
    flags: tuple[Flag, ...]
    reference_model: str | None  # the reference table's key, None for a model it does not know
    elapsed_s: float

    @classmethod
    def from_measurement(
        cls,
        measurement: Measurement,
        *,
        gpu_index: int,
        gpu_uuid: str,
        gpu_name: str,
        driver_version: str | None,
        runner: str,
        measured_at: datetime,
        reference: GpuReference | None,
    ) -> BenchmarkResult:
        """Score and check a measurement against its model, and record it with the GPU's identity."""
        figures = measurement.figures
        return cls(
            gpu_index=gpu_index,
            gpu_uuid=gpu_uuid,
            gpu_name=gpu_name,
            driver_version=driver_version,
            measured_at=measured_at.astimezone(UTC),
            mode=measurement.mode,
            runner=runner,
            figures=figures,
            phases=tuple(PhaseRecord.from_phase(phase) for phase in measurement.phases),
            score=score_figures(figures),
            flags=check_figures(figures, reference),
            reference_model=reference.key if reference is not None else None,
            elapsed_s=measurement.elapsed_s,
        )

    @property
    def is_good(self) -> bool:
        """Worth keeping: it has a score and no reading was implausible (figures merely low are real)."""
        return self.score is not None and not any(flag.kind == "implausible" for flag in self.flags)

    # -- JSON -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "gpu_index": self.gpu_index,
            "gpu_uuid": self.gpu_uuid,
            "gpu_name": self.gpu_name,
            "driver_version": self.driver_version,
            "measured_at": self.measured_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "mode": self.mode,
            "runner": self.runner,
            "figures": {field.name: getattr(self.figures, field.name) for field in fields(Figures)},
            "phases": [
                {field.name: getattr(phase, field.name) for field in fields(PhaseRecord)} for phase in self.phases
            ],
            "score": self.score,
            "flags": [{"figure": flag.figure, "kind": flag.kind, "message": flag.message} for flag in self.flags],
            "reference_model": self.reference_model,
            "elapsed_s": self.elapsed_s,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: object) -> BenchmarkResult:
        """Read a result back; ResultFormatError says which field is wrong."""
        record = _mapping(data, "result")
        schema = _required(record, "schema", int)
        if schema != SCHEMA:
            raise ResultFormatError(f"benchmark result schema {schema} is not {SCHEMA}: this version cannot read it")
        figures = _mapping(record.get("figures"), "figures")
        return cls(
            gpu_index=_required(record, "gpu_index", int),
            gpu_uuid=_required(record, "gpu_uuid", str),
            gpu_name=_required(record, "gpu_name", str),
            driver_version=_optional(record, "driver_version", str),
            measured_at=_timestamp(_required(record, "measured_at", str)),
            mode=_required(record, "mode", str),
            runner=_required(record, "runner", str),
            figures=Figures(
                fp32_tflops=_number(figures, "fp32_tflops"),
                fp16_tflops=_number(figures, "fp16_tflops"),
                bf16_tflops=_number(figures, "bf16_tflops"),
                memory_gbps=_number(figures, "memory_gbps"),
                host_to_device_gbps=_number(figures, "host_to_device_gbps"),
                device_to_host_gbps=_number(figures, "device_to_host_gbps"),
                vram_usable_bytes=_optional(figures, "vram_usable_bytes", int),
            ),
            phases=tuple(_phase(item) for item in _sequence(record.get("phases"), "phases")),
            score=_number(record, "score"),
            flags=tuple(_flag(item) for item in _sequence(record.get("flags"), "flags")),
            reference_model=_optional(record, "reference_model", str),
            elapsed_s=_required_number(record, "elapsed_s"),
        )

    @classmethod
    def from_json(cls, text: str) -> BenchmarkResult:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResultFormatError(f"a benchmark result is not JSON: {exc}") from None
        return cls.from_dict(data)


def needs_rerun(result: BenchmarkResult | None, current_uuid: str, current_driver: str | None) -> bool:
    """Whether this GPU must be benchmarked (again): no result yet, another GPU, or another driver."""
    return result is None or result.gpu_uuid != current_uuid or result.driver_version != current_driver


class ResultStore:
    """The latest good result per GPU UUID, in one JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> dict[str, BenchmarkResult]:
        """Every stored result by GPU UUID; {} when there is no file or it is damaged (then set aside)."""
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            return self._set_aside(str(exc))
        try:
            data = _mapping(json.loads(text), "benchmark store")
            if data.get("schema") != SCHEMA:
                raise ResultFormatError(f"store schema {data.get('schema')!r} is not {SCHEMA}")
            stored = _mapping(data.get("results"), "results")
            results = {str(uuid): BenchmarkResult.from_dict(item) for uuid, item in stored.items()}
        except (json.JSONDecodeError, ResultFormatError) as exc:
            return self._set_aside(str(exc))
        for uuid, result in results.items():
            if result.gpu_uuid != uuid:
                return self._set_aside(f"the result filed under {uuid} is of GPU {result.gpu_uuid}")
        return results

    def latest(self, gpu_uuid: str) -> BenchmarkResult | None:
        return self.load().get(gpu_uuid)

    def keep(self, result: BenchmarkResult) -> bool:
        """Store ``result`` as its GPU's latest if it is good (see ``BenchmarkResult.is_good``); say if it was."""
        if not result.is_good:
            log.warning("benchmark of %s (%s) not kept: %s", result.gpu_name, result.gpu_uuid, _why_not_good(result))
            return False
        results = self.load()
        results[result.gpu_uuid] = result
        document = {"schema": SCHEMA, "results": {uuid: item.to_dict() for uuid, item in sorted(results.items())}}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._path, json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return True

    def _set_aside(self, reason: str) -> dict[str, BenchmarkResult]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = self._path.with_name(f"{self._path.name}.damaged-{stamp}")
        try:
            self._path.rename(aside)
        except OSError as exc:
            log.warning(
                "benchmark results in %s are damaged (%s) and could not be moved (%s); ignoring them",
                self._path,
                reason,
                exc,
            )
        else:
            log.warning(
                "benchmark results in %s are damaged (%s); moved to %s, and the GPUs will be benchmarked again",
                self._path,
                reason,
                aside.name,
            )
        return {}


def _why_not_good(result: BenchmarkResult) -> str:
    if result.score is None:
        return "it has no score (a phase it needs did not run)"
    return "; ".join(flag.message for flag in result.flags if flag.kind == "implausible")


# -- reading JSON with messages that say what is wrong ----------------------------------------------


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ResultFormatError(f"{what} is not a JSON object")
    return cast(Mapping[str, Any], value)


def _sequence(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ResultFormatError(f"{what} is not a JSON list")
    return value


def _optional(record: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ResultFormatError(f"{key} should be of type {kind.__name__}, not {value!r}")
    return value


def _required(record: Mapping[str, Any], key: str, kind: type[_T]) -> _T:
    value = _optional(record, key, kind)
    if value is None:
        raise ResultFormatError(f"{key} is missing")
    return value


def _number(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ResultFormatError(f"{key} is not a finite number: {value!r}")
    return float(value)


def _required_number(record: Mapping[str, Any], key: str) -> float:
    value = _number(record, key)
    if value is None:
        raise ResultFormatError(f"{key} is missing")
    return value


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ResultFormatError(f"measured_at is not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise ResultFormatError(f"measured_at has no time zone: {text!r}")
    return moment.astimezone(UTC)


def _phase(item: object) -> PhaseRecord:
    record = _mapping(item, "phase")
    return PhaseRecord(
        phase=_required(record, "phase", str),
        unit=_required(record, "unit", str),
        value=_number(record, "value"),
        unsupported=_optional(record, "unsupported", str),
        spread=_number(record, "spread"),
        operations=_required(record, "operations", int),
        seconds=_required_number(record, "seconds"),
        mean_power_w=_number(record, "mean_power_w"),
        max_power_w=_number(record, "max_power_w"),
        max_temperature_c=_number(record, "max_temperature_c"),
        tflops_per_watt=_number(record, "tflops_per_watt"),
    )


def _flag(item: object) -> Flag:
    record = _mapping(item, "flag")
    figure = _required(record, "figure", str)
    kind = _required(record, "kind", str)
    if figure not in get_args(FigureName):
        raise ResultFormatError(f"flag figure {figure!r} is unknown")
    if kind not in get_args(FlagKind):
        raise ResultFormatError(f"flag kind {kind!r} is unknown")
    return Flag(cast(FigureName, figure), cast(FlagKind, kind), _required(record, "message", str))
