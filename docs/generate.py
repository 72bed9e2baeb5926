"""Regenerate the committed API documents from the code: `make docs`.

docs/status.schema.json describes `sparecycles status --json`; docs/control-api.openapi.json is
the agent's control API. Tests fail when either is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparecycles.agent.api.server import ControlService, create_app
from sparecycles.control.models import StatusDocument

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
    service: ControlService = None  # type: ignore[assignment]  # the document never calls the service
    _write("control-api.openapi.json", create_app(service, "x" * 43).openapi())


if __name__ == "__main__":
    main()
