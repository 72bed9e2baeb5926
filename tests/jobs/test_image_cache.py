"""The image cache's budget: least recently used first, never an image in use or not ours."""

from __future__ import annotations

from pathlib import Path

from sparecycles.agent.jobs.image_cache import CachedImage, ImageCache, images_to_evict

MB = 10**6


def test_evicts_least_recently_used_until_within_budget() -> None:
    images = [
        CachedImage("a@sha256:1", 400 * MB, last_used_s=10, in_use=False),
        CachedImage("b@sha256:2", 300 * MB, last_used_s=5, in_use=False),
        CachedImage("c@sha256:3", 300 * MB, last_used_s=20, in_use=False),
    ]
    assert [i.reference for i in images_to_evict(images, 700 * MB)] == ["b@sha256:2"]
    assert [i.reference for i in images_to_evict(images, 250 * MB)] == ["b@sha256:2", "a@sha256:1", "c@sha256:3"]
    assert images_to_evict(images, 1000 * MB) == []


def test_an_image_in_use_is_never_evicted() -> None:
    images = [
        CachedImage("old-but-running@sha256:1", 900 * MB, last_used_s=1, in_use=True),
        CachedImage("new@sha256:2", 100 * MB, last_used_s=9, in_use=False),
    ]
    assert [i.reference for i in images_to_evict(images, 500 * MB)] == ["new@sha256:2"]


class FakeStore:
    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = dict(sizes)
        self.removed: list[str] = []

    def image_size_bytes(self, reference: str) -> int | None:
        return self.sizes.get(reference)

    def remove_image(self, reference: str) -> None:
        self.removed.append(reference)
        del self.sizes[reference]


def test_only_images_we_pulled_are_candidates(tmp_path: Path) -> None:
    store = FakeStore({"ours@sha256:1": 600 * MB, "owners-own:latest": 5000 * MB, "ours@sha256:2": 600 * MB})
    clock = iter(range(100)).__next__
    cache = ImageCache(tmp_path / "images.json", lambda: 1000 * MB, clock=lambda: float(clock()))
    cache.used("ours@sha256:1", pulled=True)
    cache.used("ours@sha256:2", pulled=True)
    cache.used("owners-own:latest", pulled=False)  # it was here before a job needed it
    assert cache.enforce(store, in_use=[]) == ["ours@sha256:1"]
    assert store.removed == ["ours@sha256:1"]
    assert "owners-own:latest" in store.sizes
    assert cache.known() == {"ours@sha256:2"}


def test_index_forgets_images_removed_by_someone_else(tmp_path: Path) -> None:
    store = FakeStore({"ours@sha256:1": 10 * MB})
    cache = ImageCache(tmp_path / "images.json", lambda: 1000 * MB)
    cache.used("ours@sha256:1", pulled=True)
    del store.sizes["ours@sha256:1"]
    assert cache.enforce(store, in_use=[]) == []
    assert cache.known() == set()


def test_a_damaged_index_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "images.json").write_text("{broken")
    cache = ImageCache(tmp_path / "images.json", lambda: 1)
    assert cache.known() == set()
    cache.used("x@sha256:1", pulled=True)
    assert cache.known() == {"x@sha256:1"}


def test_reusing_an_image_we_pulled_makes_it_the_most_recent(tmp_path: Path) -> None:
    store = FakeStore({"a@sha256:1": 600 * MB, "b@sha256:2": 600 * MB})
    clock = iter(range(100)).__next__
    budget = [2000 * MB]
    cache = ImageCache(tmp_path / "images.json", lambda: budget[0], clock=lambda: float(clock()))
    cache.used("a@sha256:1", pulled=True)
    cache.used("b@sha256:2", pulled=True)
    cache.used("a@sha256:1", pulled=False)  # a later job ran it again, from the cache
    assert cache.enforce(store, in_use=[]) == []  # within budget
    budget[0] = 1000 * MB  # the owner lowered the budget: the next enforcement applies it
    assert cache.enforce(store, in_use=[]) == ["b@sha256:2"]
