"""The fleet dashboard (docs/grafana/sparecycles-fleet.json) queries only metrics the agent and the
marketplace really export: their names are read from the exporters' own output, not listed by hand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sparecycles.agent.market_server.metrics import ApiLatency, count_metrics
from sparecycles.agent.metrics.collector import status_metrics
from sparecycles.agent.metrics.server import exposition
from sparecycles.control.ledger import TodayFigure
from sparecycles.control.models import GpuBackendStatus, GpuReadings, GpuState, GpuStatus, StatusDocument

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "sparecycles-fleet.json"
SERIES_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported_names() -> set[str]:
    gpu = GpuStatus(
        index=0, uuid="GPU-0", name="NVIDIA RTX 4090", state=GpuState.WORKING, reason="working",
        readings=GpuReadings(utilization_gpu_percent=90, temperature_c=70, power_draw_w=300, energy_total_mj=1000,
                             vram_used_bytes=1, vram_total_bytes=2),
    )  # fmt: skip
    status = StatusDocument.model_validate(
        {"agent_version": "0", "pid": 1, "started_at": datetime.now(UTC), "state": "working", "reason": "working",
         "gpus": [gpu.model_dump()], "gpu_backend": GpuBackendStatus(available=True, kind="nvml").model_dump()}
    )  # fmt: skip
    today = TodayFigure(
        day=datetime.now(UTC).date(), gross_base_units=5, pending_base_units=0, energy_wh=1, idle_energy_wh=0,
        power_cost=0, currency="EUR", net=None, net_base_units=None,
    )  # fmt: skip
    latency = ApiLatency()
    latency.histogram.labels("POST", "/v1/jobs").observe(0.01)
    text = exposition([*status_metrics(status, today), *count_metrics({}, {}), *latency.registry.collect()]).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bsparecycles_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 8
    exported = exported_names()
    missing = sorted(name for name in queried if name not in exported)
    assert not missing, f"the dashboard queries metrics nobody exports: {missing}"
    assert {panel["id"] for panel in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
