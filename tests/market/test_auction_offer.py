"""``auction.offer`` answers qualifies, bid_price and bid_score in one pass (closing auctions asks it of every
provider standing by for every job): its answer must be the one the rules give, taken one by one."""

from __future__ import annotations

import random

import pytest

from sparecycles.agent.market_server import auction

GIB = 2**30


def _by_the_rules(capacity: auction.Capacity, need: auction.Need) -> tuple[int, float] | None:
    """The auction's rules as written in its docstring, slowly: enough free capacity of the kind asked (GPUs
    with the VRAM and score, or cores) at a floor the requester accepts; the score is the mean of the best
    such GPUs it would get."""
    price = capacity.floor_per_gpu_hour if need.gpus > 0 else capacity.floor_per_core_hour
    if need.gpus > 0:
        fitting = [
            gpu
            for gpu in capacity.free_gpus
            if gpu.vram_bytes >= need.min_vram_bytes
            and (need.min_score is None or (gpu.score is not None and gpu.score >= need.min_score))
        ]
        if len(fitting) < need.gpus:
            return None
        best = sorted(fitting, key=lambda gpu: (-(gpu.score or 0.0), gpu.uuid))[: need.gpus]
        score = sum(gpu.score or 0.0 for gpu in best) / len(best)
    else:
        if capacity.free_cores < need.cores:
            return None
        score = 0.0
    return (price, score) if price <= need.max_price else None


def _case(rng: random.Random) -> tuple[auction.Capacity, auction.Need]:
    gpus = tuple(
        auction.GpuOffer(
            f"GPU-{rng.randrange(10**6):06d}",
            rng.choice([8, 12, 24, 48, 80]) * GIB,
            rng.choice([None, 50.0, 100.0, 150.0, 200.0]),
        )
        for _ in range(rng.choice([0, 1, 1, 1, 2, 4, 8]))
    )
    capacity = auction.Capacity("0xprovider", rng.randrange(50, 500), rng.randrange(5, 50), gpus, rng.randrange(0, 64))
    need = auction.Need(
        gpus=rng.choice([0, 1, 1, 2, 4]),
        min_vram_bytes=rng.choice([0, 8, 16, 40]) * GIB,
        cores=rng.randrange(1, 32),
        max_price=rng.randrange(40, 520),
        min_score=rng.choice([None, None, 75.0, 150.0]),
    )
    return capacity, need


@pytest.mark.parametrize("seed", range(8))
def test_an_offer_is_what_the_rules_give(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - varied cases, not secrets
    qualified = refused = 0
    for _ in range(500):
        capacity, need = _case(rng)
        expected = _by_the_rules(capacity, need)
        assert auction.offer(capacity, need) == expected, (capacity, need)
        assert auction.qualifies(capacity, need) is (expected is not None)
        if expected is not None:
            assert auction.bid_price(capacity, need) == expected[0]
            assert auction.bid_score(capacity, need) == pytest.approx(expected[1])
            qualified += 1
        else:
            refused += 1
    assert qualified > 50  # both answers were really compared
    assert refused > 50


def test_a_single_gpu_provider_is_ranked_by_its_gpu() -> None:
    gpu = auction.GpuOffer("GPU-1", 24 * GIB, 120.0)
    capacity = auction.Capacity("0xone", 300, 10, (gpu,), 0)
    need = auction.Need(gpus=1, min_vram_bytes=16 * GIB, cores=1, max_price=300)
    assert auction.offer(capacity, need) == (300, 120.0)
    assert auction.suitable_gpus(capacity, need) == (gpu,)
    assert auction.offer(capacity, auction.Need(gpus=1, min_vram_bytes=32 * GIB, cores=1, max_price=300)) is None
    assert auction.offer(capacity, auction.Need(gpus=1, min_vram_bytes=0, cores=1, max_price=299)) is None
