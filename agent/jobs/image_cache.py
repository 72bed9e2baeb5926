"""Job images kept on disk within a budget, least recently used evicted first.

Only images that SpareCycles itself pulled for jobs are ever candidates: the index in the state
folder records them (by digest reference) with when a job last used them. The owner's own images
are never touched, whatever the budget says.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sparecycles.fileio import atomic_write_text, read_number_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedImage:
    reference: str  # repo@sha256:… as the job named it
    size_bytes: int
    last_used_s: float  # wall-clock seconds
    in_use: bool  # a job (running, paused or queued) needs it


def images_to_evict(images: Iterable[CachedImage], budget_bytes: int) -> list[CachedImage]:
    """Pure: the least recently used images not in use whose removal brings the total within budget."""
    images = list(images)
    total = sum(image.size_bytes for image in images)
    evict: list[CachedImage] = []
    for image in sorted((i for i in images if not i.in_use), key=lambda i: (i.last_used_s, i.reference)):
        if total <= budget_bytes:
            break
        evict.append(image)
        total -= image.size_bytes
    return evict


class ImageStore(Protocol):
    """The engine's side: sizes of present images and their removal (the ContainerRunner in the agent)."""

    def image_size_bytes(self, reference: str) -> int | None:
        """The image's size, or None when it is not present any more."""
        ...

    def remove_image(self, reference: str) -> None: ...


class ImageCache:
    """The index of job images SpareCycles pulled, and the budget they are kept within.

    ``budget_bytes`` is asked at every enforcement, so a changed setting applies to the next one.
    Sizes are the engine's per-image sizes, which count shared layers in each image: the cache errs on
    the side of using less disk than the budget, never more.
    """

    def __init__(
        self, index_file: Path, budget_bytes: Callable[[], int], clock: Callable[[], float] = time.time
    ) -> None:
        self._index_file = index_file
        self._budget_bytes = budget_bytes
        self._clock = clock
        self._lock = threading.Lock()

    def _index(self) -> dict[str, float]:
        try:
            return read_number_map(self._index_file)
        except ValueError as exc:
            log.warning("Starting a new image index: %s was unreadable (%s)", self._index_file, exc)
            return {}

    def _save(self, index: dict[str, float]) -> None:
        self._index_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._index_file, json.dumps(index, sort_keys=True, indent=1))

    def used(self, reference: str, *, pulled: bool) -> None:
        """A job is about to run this image; ``pulled`` when SpareCycles downloaded it just now.

        An image that was on the machine before a job needed it (the owner's own) is not recorded, so it
        is never evicted; one we pulled earlier becomes the most recently used.
        """
        with self._lock:
            index = self._index()
            if not pulled and reference not in index:
                return
            index[reference] = self._clock()
            self._save(index)

    def known(self) -> set[str]:
        return set(self._index())

    def enforce(self, store: ImageStore, in_use: Iterable[str]) -> list[str]:
        """Remove least recently used images over the budget; returns the references removed."""
        with self._lock:
            return self._enforce(store, set(in_use))

    def _enforce(self, store: ImageStore, needed: set[str]) -> list[str]:
        index = self._index()
        present: list[CachedImage] = []
        for reference, last_used in index.items():
            size = store.image_size_bytes(reference)
            if size is None:  # removed by someone else: forget it
                continue
            present.append(CachedImage(reference, size, last_used, reference in needed))
        removed = []
        for image in images_to_evict(present, self._budget_bytes()):
            try:
                store.remove_image(image.reference)
            except Exception as exc:  # the engine refuses (e.g. a container still uses it): try next time
                log.warning("Could not evict %s from the image cache: %s", image.reference, exc)
                continue
            removed.append(image.reference)
            log.info("Evicted %s (%d MB) from the image cache", image.reference, image.size_bytes // 10**6)
        keep = {image.reference for image in present} - set(removed)
        self._save({reference: used for reference, used in index.items() if reference in keep})
        return removed
