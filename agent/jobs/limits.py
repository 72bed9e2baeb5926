"""The provider's limits for one job, from the owner's settings and this machine's size."""

from __future__ import annotations

import os

import psutil

from sparecycles.config import JobsSettings
from sparecycles.durations import parse_duration
from sparecycles.protocol.job_refusal import ProviderLimits
from sparecycles.sizes import parse_size


def provider_limits(
    settings: JobsSettings,
    *,
    gpu_count: int,
    gpu_vram_bytes: int | None,
    cpu_count: int | None = None,
    memory_bytes: int | None = None,
) -> ProviderLimits:
    """What a job may ask of this machine; unset settings leave the owner a core and half the memory."""
    cores = cpu_count or os.cpu_count() or 1
    memory = memory_bytes or psutil.virtual_memory().total
    max_memory = parse_size(settings.max_memory) if settings.max_memory else memory // 2
    return ProviderLimits(
        max_gpus=gpu_count,
        max_cpus=settings.max_cpus if settings.max_cpus is not None else float(max(1, cores - 1)),
        max_memory_bytes=max_memory,
        max_shm_bytes=max_memory // 2,
        max_runtime_s=parse_duration(settings.max_runtime),
        max_output_bytes=parse_size(settings.max_output),
        allowed_registries=tuple(settings.allowed_registries),
        egress_allowed=settings.egress == "per_job",
        private_networks_allowed=settings.private_networks,
        gpu_vram_bytes=gpu_vram_bytes,
    )
