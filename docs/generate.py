"""Regenerate the committed API documents from the code: `make docs`.

docs/status.schema.json describes `sparecycles status --json`, docs/job-spec.schema.json a job
spec, docs/control-api.openapi.json the agent's control API, docs/marketplace.openapi.json the marketplace
protocol v1. Tests fail when any is stale.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from sparecycles.agent.api.server import ControlService, create_app
from sparecycles.agent.market_server.api import create_app as create_market_app
from sparecycles.agent.market_server.serve import MarketOptions, open_market
from sparecycles.control.models import StatusDocument
from sparecycles.protocol.jobs import JobSpec

DOCS = Path(__file__).resolve().parent


def _write(name: str, document: dict[str, Any]) -> None:
    (DOCS / name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"wrote docs/{name}")


def main() -> None:
    schema = StatusDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://sparecycles.dev/schemas/status-v1.json"
    schema["description"] = "Output of `sparecycles status --json`. Fields are only added within a schema_version."
    _write("status.schema.json", schema)
    job_schema = JobSpec.model_json_schema()
    job_schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    job_schema["description"] = "A SpareCycles job spec (see examples/job.json). Unknown fields are refused."
    _write("job-spec.schema.json", job_schema)
    service: ControlService = None  # type: ignore[assignment]  # the document never calls the service
    _write("control-api.openapi.json", create_app(service, "x" * 43).openapi())
    # The marketplace's app reads its settings as it is built, so a throwaway marketplace stands behind it.
    with tempfile.TemporaryDirectory(prefix="sparecycles-docs-") as folder:
        options = MarketOptions(data_dir=Path(folder) / "market", key_file=Path(folder) / "operator.key")
        market = open_market(options)
        _write("marketplace.openapi.json", create_market_app(market).openapi())


if __name__ == "__main__":
    main()
