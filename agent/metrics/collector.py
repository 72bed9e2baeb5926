"""What the agent's metrics say, read from the same status document and ledger figures the GUI shows, at
each scrape (so a scrape never sees a number the status would not). The status is read on the agent's
loop, as the control API reads it; the ledger's figure in a thread, as its routes do.

Nothing secret is a metric: GPU names and UUIDs, states, readings, energy and earnings only; the control
API's token, keys and addresses never pass through here.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from sparecycles.control.ledger import TodayFigure
from sparecycles.control.models import AgentState, GpuState, StatusDocument

PREFIX = "sparecycles"


def status_metrics(status: StatusDocument, today: TodayFigure | None) -> list[Metric]:
    """The metric families for one status document and today's ledger figure (None: the ledger is off)."""
    info = GaugeMetricFamily(f"{PREFIX}_agent_info", "The running agent's version.", labels=["version"])
    info.add_metric([status.agent_version], 1)
    agent_state = GaugeMetricFamily(
        f"{PREFIX}_agent_state", "1 for the agent's present state, 0 for the others.", labels=["state"]
    )
    for state in AgentState:
        agent_state.add_metric([state.value], 1 if status.state is state else 0)

    gpu = ["gpu"]
    gpu_info = GaugeMetricFamily(
        f"{PREFIX}_gpu_info", "Each GPU the agent shares, by its index.", labels=[*gpu, "uuid", "name", "simulated"]
    )
    gpu_state = GaugeMetricFamily(
        f"{PREFIX}_gpu_state", "1 for the GPU's present state, 0 for the others.", labels=[*gpu, "state"]
    )
    utilization = GaugeMetricFamily(f"{PREFIX}_gpu_utilization_ratio", "GPU utilization, 0 to 1.", labels=gpu)
    temperature = GaugeMetricFamily(f"{PREFIX}_gpu_temperature_celsius", "GPU temperature.", labels=gpu)
    power = GaugeMetricFamily(f"{PREFIX}_gpu_power_watts", "Board power draw.", labels=gpu)
    memory_used = GaugeMetricFamily(f"{PREFIX}_gpu_memory_used_bytes", "VRAM in use (anyone's).", labels=gpu)
    memory_total = GaugeMetricFamily(f"{PREFIX}_gpu_memory_total_bytes", "VRAM in all.", labels=gpu)
    energy = CounterMetricFamily(
        f"{PREFIX}_gpu_energy_joules", "Energy the board used since the driver loaded (NVML's counter).", labels=gpu
    )
    for shown in status.gpus:
        label = [str(shown.index)]
        gpu_info.add_metric([*label, shown.uuid, shown.name, str(shown.simulated).lower()], 1)
        for each_state in GpuState:
            gpu_state.add_metric([*label, each_state.value], 1 if shown.state is each_state else 0)
        readings = shown.readings
        if readings is None:
            continue
        if readings.utilization_gpu_percent is not None:
            utilization.add_metric(label, readings.utilization_gpu_percent / 100)
        if readings.temperature_c is not None:
            temperature.add_metric(label, readings.temperature_c)
        if readings.power_draw_w is not None:
            power.add_metric(label, readings.power_draw_w)
        if readings.vram_used_bytes is not None:
            memory_used.add_metric(label, readings.vram_used_bytes)
        if readings.vram_total_bytes is not None:
            memory_total.add_metric(label, readings.vram_total_bytes)
        if readings.energy_total_mj is not None:
            energy.add_metric(label, readings.energy_total_mj / 1000)
    families: list[Metric] = [
        info, agent_state, gpu_info, gpu_state, utilization, temperature, power, memory_used, memory_total, energy,
    ]  # fmt: skip
    if today is not None:
        families += _today_metrics(today)
    return families


def _today_metrics(today: TodayFigure) -> list[Metric]:
    earned = GaugeMetricFamily(
        f"{PREFIX}_earnings_today_base_units",
        "Today's earnings in token base units: gross (credited), pending (no verified voucher yet), net (gross "
        "less the power cost, when a tariff and a token rate are set).",
        labels=["kind"],
    )
    earned.add_metric(["gross"], today.gross_base_units)
    earned.add_metric(["pending"], today.pending_base_units)
    if today.net_base_units is not None:
        earned.add_metric(["net"], today.net_base_units)
    energy = GaugeMetricFamily(
        f"{PREFIX}_energy_today_joules", "Today's GPU energy, while jobs ran and while idle.", labels=["while"]
    )
    energy.add_metric(["working"], float(today.energy_wh) * 3600)  # Prometheus' base unit: joules, not Wh
    energy.add_metric(["idle"], float(today.idle_energy_wh) * 3600)
    families: list[Metric] = [earned, energy]
    if today.currency is not None:
        cost = GaugeMetricFamily(
            f"{PREFIX}_power_cost_today", "What today's work's electricity cost.", labels=["currency"]
        )
        cost.add_metric([today.currency], float(today.power_cost))
        families.append(cost)
    return families


class Snapshot:
    """Families gathered once, served as a prometheus_client collector (the exposition reads them back)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families
