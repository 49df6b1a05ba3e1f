"""Schemathesis against the service's own OpenAPI schema: no 5xx, no schema violation.

Bounded in CI: a few examples per operation, on the in-memory store.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from api.auth import Role
from api.catalog import OPERATIONS, Audience
from api.problems import CODES
from ledger.app import IDEMPOTENCY_KEY_PATTERN
from ledger.errors import ErrorCode
from ledger.ids import is_platform_id
from tests.e2e.support import Api, running_api

EXAMPLES_PER_OPERATION = 10
_idempotency_keys = itertools.count()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # A following stream of the penalty feed ends after a second, not five minutes.
    with running_api(
        "memory:", tmp_path_factory.mktemp("openapi"), feed_follow_seconds=1.0
    ) as client:
        yield client


def test_every_operation_is_described(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert len(document["paths"]) >= 35
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), f"{method} {path} has no responses"


def test_every_operation_has_a_stable_id_a_summary_and_its_callers_tag(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    seen = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert re.fullmatch(r"[a-z][A-Za-z]+", operation["operationId"]), operation
            assert operation["summary"] and operation["description"], (method, path)
            assert operation["tags"] in ([str(a)] for a in Audience), operation["tags"]
            seen[(method, path)] = operation["operationId"]
    assert seen == {key: entry[0] for key, entry in OPERATIONS.items()}
    assert len(set(seen.values())) == len(seen)
    assert {tag["name"] for tag in document["tags"]} == {str(a) for a in Audience}


def test_problems_are_one_component_whose_code_lists_every_value(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["code"]["enum"] == list(CODES)
    assert {str(code) for code in ErrorCode} <= set(CODES)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/problem+json")
                if schema is not None:
                    assert schema["schema"] == {"$ref": "#/components/schemas/Problem"}, (
                        method,
                        path,
                        status,
                    )
    headers = {"Authorization": f"Bearer {api.keys[Role.READER]}"}
    wrong = api.client.put("/v1/rulebooks", headers=headers)
    assert (wrong.status_code, wrong.json()["title"]) == (405, "Method Not Allowed")
    assert wrong.headers["allow"] == "GET"  # RFC 9110: a 405 names the methods allowed
    key = document["paths"]["/v1/trades"]["post"]["parameters"]
    (idempotency,) = [p for p in key if p["name"] == "Idempotency-Key"]
    assert idempotency["schema"]["pattern"] == IDEMPOTENCY_KEY_PATTERN
    replay = document["paths"]["/v1/replay"]["get"]["parameters"]
    assert all("pattern" in p["schema"] for p in replay if p["name"] in ("member_id",))


def test_examples_are_ids_of_one_story_each_of_its_own_kind(api: Api) -> None:
    """A buyer's example is not the seller's, so trying createTrade as the
    document shows it is not refused as a trade with oneself."""
    document = api.client.get("/openapi.json").json()
    trade = document["components"]["schemas"]["NewTrade"]["properties"]
    ids = {
        name: trade[name]["examples"][0]
        for name in ("trade_id", "buyer_id", "seller_id", "item_id")
    }
    assert len(set(ids.values())) == 4
    examples = [
        example
        for schema in document["components"]["schemas"].values()
        for prop in schema.get("properties", {}).values()
        for example in prop.get("examples", [])
        if isinstance(example, str) and re.fullmatch(r"[a-z]-\d+", example)
    ]
    assert examples and all(is_platform_id(example) for example in examples)
    assert "T-1001" not in json.dumps(document)
    payment = document["paths"]["/v1/trades/{trade_id}/payment"]["post"]["parameters"]
    assert [p["schema"]["examples"] for p in payment if p["in"] == "path"] == [[ids["trade_id"]]]


def test_no_server_errors_and_no_schema_violations(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself does not parse
        operations.append(result.ok())
    assert len(operations) >= 35

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case[Any]) -> None:
            key = {"Idempotency-Key": f"fuzz-{next(_idempotency_keys)}"}
            response = case.call(headers={**headers, **key})
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            case.validate_response(
                response, checks=[schemathesis.checks.response_schema_conformance]
            )

        check()
