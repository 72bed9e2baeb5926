"""The reverse auction, as pure functions: who may bid on a job, and which bids win.

Pay-as-bid: every qualifying provider bids its floor; the lowest bid wins, ties go to the higher
benchmark score and then the earlier bid; a job with N replicas takes the N best bids of N
different providers. Nothing here reads the database or a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True)
class GpuOffer:
    uuid: str
    vram_bytes: int
    score: float | None


@dataclass(frozen=True)
class Capacity:
    """What one provider offers now, less what its active leases already use."""

    address: str
    floor_per_gpu_hour: int
    floor_per_core_hour: int
    free_gpus: tuple[GpuOffer, ...]
    free_cores: int


@dataclass(frozen=True)
class Need:
    """What a job asks of one provider."""

    gpus: int
    min_vram_bytes: int
    cores: int
    max_price: int
    min_score: float | None = None  # GPUs without a score do not meet a minimum


class CandidateBid(NamedTuple):
    """A bid as an auction ranks it. A named tuple, not a dataclass: a closing batch builds one for every bidder
    standing by for every job, and a frozen dataclass took three times as long to make."""

    address: str
    price: int
    score: float
    placed_at: datetime


def suitable_gpus(capacity: Capacity, need: Need) -> tuple[GpuOffer, ...]:
    """The provider's free GPUs that meet the job's VRAM, best score first (empty for a CPU-only job)."""
    fitting = [
        gpu
        for gpu in capacity.free_gpus
        if gpu.vram_bytes >= need.min_vram_bytes
        and (need.min_score is None or (gpu.score is not None and gpu.score >= need.min_score))
    ]
    if len(fitting) > 1:  # most providers have one GPU: nothing to sort
        fitting.sort(key=lambda gpu: (-(gpu.score or 0.0), gpu.uuid))
    return tuple(fitting)


def bid_price(capacity: Capacity, need: Need) -> int:
    return capacity.floor_per_gpu_hour if need.gpus > 0 else capacity.floor_per_core_hour


def qualifies(capacity: Capacity, need: Need) -> bool:
    """Whether this provider can run the job now (capacity) at a price the requester accepts."""
    return offer(capacity, need) is not None


def offer(capacity: Capacity, need: Need) -> tuple[int, float] | None:
    """The price and score this provider bids on the job now (``bid_price``, ``bid_score``), or None when it
    does not qualify: the three in one pass, cheapest checks first, since closing auctions asks it of every
    provider standing by for every job."""
    price = bid_price(capacity, need)
    if price > need.max_price:
        return None
    if need.gpus == 0:
        return (price, 0.0) if capacity.free_cores >= need.cores else None
    if len(capacity.free_gpus) < need.gpus:
        return None
    chosen = suitable_gpus(capacity, need)[: need.gpus]
    if len(chosen) < need.gpus:
        return None
    return price, sum(gpu.score or 0.0 for gpu in chosen) / len(chosen)


def bid_score(capacity: Capacity, need: Need) -> float:
    """The score a bid carries for tie-breaks: the mean of the GPUs it would get (0 for CPU jobs)."""
    chosen = suitable_gpus(capacity, need)[: need.gpus]
    return sum(gpu.score or 0.0 for gpu in chosen) / len(chosen) if chosen else 0.0


Rank = tuple[int, float, datetime, str]


def rank(bid: CandidateBid) -> Rank:
    """How a bid ranks, lowest first: lowest price, then higher score, then earlier, then by address."""
    return bid.price, -bid.score, bid.placed_at, bid.address


def best_possible_rank(capacity: Capacity, gpu_job: bool, placed_at: datetime) -> Rank:
    """A rank no bid of this provider can beat, on any GPU job (``gpu_job``) or any CPU job: its floor, and for a
    GPU job its best free GPU's score (a bid's score is the mean of the GPUs it gets)."""
    if not gpu_job:
        return capacity.floor_per_core_hour, -0.0, placed_at, capacity.address
    best = max((gpu.score or 0.0 for gpu in capacity.free_gpus), default=0.0)
    return capacity.floor_per_gpu_hour, -best, placed_at, capacity.address


def winners(bids: Iterable[CandidateBid], seats: int, excluded: Sequence[str] = ()) -> list[CandidateBid]:
    """The ``seats`` best bids from different providers: lowest price, then higher score, then earlier."""
    ranked = sorted(bids, key=rank)
    chosen: list[CandidateBid] = []
    for bid in ranked:
        if len(chosen) == seats:
            break
        if bid.address in excluded or any(bid.address == other.address for other in chosen):
            continue
        chosen.append(bid)
    return chosen


def no_bid_reason(unit: str, max_price: int, floors: Sequence[int], capable: int) -> str:
    """Why a job is still queued after a window without a bid, in words."""
    if capable == 0:
        return f"queued: no provider online offers enough free capacity for this job (one {unit} or more)"
    lowest = min(floors)
    if lowest > max_price:
        return (
            f"queued: no provider bids at or below your maximum of {max_price} per {unit}-hour; "
            f"the lowest floor among {capable} capable provider(s) is {lowest}"
        )
    return "queued: waiting for bids"
