"""Results on their way to the marketplace: written to disk first, sent until acknowledged.

A report (signed, with the folder of the outputs it describes) is saved before the first attempt
and removed only when the marketplace acknowledges it, so an agent killed or a marketplace down in
between loses nothing; sending is idempotent by lease id on the server, so a result is never paid
twice either.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from sparecycles.fileio import atomic_write_text
from sparecycles.protocol.market import SignedResultReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingReport:
    signed: SignedResultReport
    outputs_dir: Path | None

    @property
    def lease_id(self) -> str:
        return self.signed.report.lease_id


class Outbox:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = threading.Lock()

    def _file(self, lease_id: str) -> Path:
        return self._folder / f"{lease_id}.json"

    def put(self, pending: PendingReport) -> None:
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {
            "signed": pending.signed.model_dump(mode="json"),
            "outputs_dir": str(pending.outputs_dir) if pending.outputs_dir else None,
        }
        with self._lock:
            atomic_write_text(self._file(pending.lease_id), json.dumps(document, indent=1) + "\n")

    def pending(self) -> list[PendingReport]:
        found: list[PendingReport] = []
        with self._lock:
            for path in sorted(self._folder.glob("*.json")):
                try:
                    document = json.loads(path.read_text(encoding="utf-8"))
                    signed = SignedResultReport.model_validate(document["signed"])
                except (OSError, ValueError, KeyError, ValidationError) as exc:
                    log.warning("A pending report in %s cannot be read (%s); it is set aside", path, exc)
                    path.replace(path.with_suffix(".corrupt"))
                    continue
                outputs = document.get("outputs_dir")
                found.append(PendingReport(signed, Path(outputs) if outputs else None))
        return found

    def done(self, lease_id: str) -> None:
        with self._lock:
            self._file(lease_id).unlink(missing_ok=True)
