"""The marketplace's Prometheus endpoint (`market serve --metrics-port`), on a real server process: closed
without its token, parsed by prometheus_client's parser and checked by promtool, the queue depth and the
API latency by route template, and no secret (the requester's key, the token) in it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.market.market_process import MarketProcess

TOKEN = "market-metrics-" + "b" * 24


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_market_metrics_show_the_queue_and_latency_by_route_behind_a_token(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    port = free_port()
    market = MarketProcess(
        tmp_path / "market", serve_arguments=("--metrics-port", str(port), "--metrics-token-file", str(token_file))
    )
    market.start()
    try:
        key = market.operator("add-requester", "studio")
        market.operator("credit", "studio", str(10**12))
        spec = {"image": "registry.example.org/busybox@sha256:" + "0" * 64, "command": ["true"]}
        with httpx.Client(base_url=market.url(), headers={"Authorization": f"Bearer {key}"}) as requester:
            for _ in range(3):
                submitted = requester.post("/v1/jobs", json={"spec": spec, "max_price_per_core_hour": 1000})
                assert submitted.status_code == 201, submitted.text
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url).status_code == 401
        text = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).text
    finally:
        market.stop()

    families = {family.name: family for family in text_string_to_metric_families(text)}
    jobs = {s.labels["state"]: s.value for s in families["sparecycles_market_jobs"].samples}
    assert jobs["queued"] == 3  # no provider: the queue holds all three
    assert set(jobs) >= {"queued", "running", "completed", "failed", "cancelled"}
    assert "sparecycles_market_leases" in families
    counts = [
        s
        for s in families["sparecycles_market_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["route"] == "/v1/jobs" and s.labels["method"] == "POST"
    ]
    assert [s.value for s in counts] == [3]  # one series per route template, not per job id
    routes = {s.labels["route"] for s in families["sparecycles_market_request_duration_seconds"].samples}
    assert all(not route.startswith("/v1/jobs/") or "{" in route for route in routes), routes  # templates only
    assert TOKEN not in text
    assert key not in text
    promtool = os.environ.get("SPARECYCLES_TEST_PROMTOOL") or shutil.which("promtool")
    if promtool:
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
