"""The GPU benchmark on the control API: the kept results, and a run on request (which waits for it)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from sparecycles.agent.benchmark.control import BenchmarkControl, BenchmarkRefused
from sparecycles.control.benchmark import BenchmarkList, RunBenchmark
from sparecycles.control.models import ErrorBody


def add_benchmark_routes(app: FastAPI, control: BenchmarkControl | None) -> None:
    errors: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (404, 409, 422, 503)}

    def benchmarks() -> BenchmarkControl:
        if control is None:
            raise StarletteHTTPException(503, "This agent does not benchmark GPUs.")
        return control

    @app.get("/v1/benchmarks", response_model=BenchmarkList, tags=["benchmark"], responses=errors)
    async def results() -> BenchmarkList:
        """The latest good benchmark of each GPU (a run under way or failed shows in the status)."""
        return benchmarks().results()

    @app.post("/v1/benchmarks", response_model=BenchmarkList, tags=["benchmark"], responses=errors)
    async def run(request: RunBenchmark) -> BenchmarkList:
        """Benchmark one GPU, or all one after another, and answer when done (under a minute per GPU in
        quick mode). No NVIDIA GPU, only simulated ones, or a GPU running a job: 409 saying so."""
        try:
            return await benchmarks().run(request.gpu, request.mode)
        except BenchmarkRefused as exc:
            raise StarletteHTTPException(exc.status, str(exc)) from None
