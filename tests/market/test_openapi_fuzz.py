"""schemathesis against the marketplace's own OpenAPI document: generated requests, valid and not, to
every operation, signed in as a provider or a requester; no 500s, and every answer matches the document."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sparecycles.agent.market_server.api import create_app
from sparecycles.agent.market_server.serve import MarketOptions, open_market

from .conftest import Provider, cpu_spec

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class Credentials:
    requester = ""
    provider = ""


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder: Path = tmp_path_factory.mktemp("fuzzed-market")
    market = open_market(MarketOptions(data_dir=folder / "market", key_file=folder / "operator.key"))
    app = create_app(market, tick_every_s=0.2)
    with TestClient(app) as client:
        Credentials.requester = market.add_requester("fuzzer")
        market.credit("fuzzer", 10**30)
        provider = Provider(client).join(cores=8)
        Credentials.provider = provider.token
        headers = {"Authorization": f"Bearer {Credentials.requester}"}
        client.post("/v1/jobs", json={"spec": cpu_spec(), "max_price_per_core_hour": 10**6}, headers=headers)
        yield schemathesis.openapi.from_asgi("/v1/openapi.json", app)


def test_no_server_errors_and_every_answer_matches_the_document(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15  # every operation of the protocol is in the document

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, not shrunk for minutes
            report_multiple_bugs=False,
            derandomize=True,  # the same requests on every run: a failure here reproduces
        )
        def call(case: Any) -> None:
            token = Credentials.provider if "/provider" in case.path else Credentials.requester
            if case.path.endswith("/work"):
                case.query = {"wait_s": "0.2"}  # a long poll waits on purpose; the fuzzer's timeout is 10 s
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        call()


def test_the_published_document_is_the_one_the_server_serves(api_schema: Any) -> None:
    import json

    served = api_schema.raw_schema
    committed = json.loads((Path(__file__).parents[2] / "docs" / "marketplace.openapi.json").read_text())
    assert served == committed, "docs/marketplace.openapi.json is stale: run `make docs`"
