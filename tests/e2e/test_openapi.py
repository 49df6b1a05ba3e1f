"""Schemathesis against the service's own OpenAPI schema: no 5xx, no schema violation.

Bounded in CI: a few examples per operation, on the in-memory store.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from api.auth import Role
from api.catalog import OPERATIONS, Audience
from api.examples import STORY
from api.problems import CODES
from ledger.app import IDEMPOTENCY_KEY_PATTERN
from ledger.errors import ErrorCode
from ledger.ids import is_platform_id
from ledger.limits import BUSINESS_TIME_PATTERN
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
    schemes = document["components"]["securitySchemes"]
    assert {name: scheme["scheme"] for name, scheme in schemes.items()} == {
        str(role): "bearer" for role in Role
    }
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
                    problem_ref, listed = schema["schema"]["allOf"]
                    assert problem_ref == {"$ref": "#/components/schemas/Problem"}
                    codes = listed["properties"]["code"]["enum"]
                    assert codes and set(codes) <= set(CODES), (method, path, status)
    # Each operation lists the codes it may answer, by status.
    payment = document["paths"]["/v1/trades/{trade_id}/payment"]["post"]["responses"]
    enum = payment["409"]["content"]["application/problem+json"]["schema"]["allOf"][1]
    assert {"already_paid", "idempotency_key_reused"} <= set(enum["properties"]["code"]["enum"])
    credit = document["paths"]["/v1/members/{member_id}/credit"]["get"]["responses"]
    assert "409" not in credit  # a query contradicts no state
    listed = credit["422"]["content"]["application/problem+json"]["schema"]["allOf"][1]
    assert set(listed["properties"]["code"]["enum"]) == {
        "invalid_input", "position_beyond_log", "unknown_rulebook",
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {api.keys[Role.READER]}"}
    wrong = api.client.put("/v1/rulebooks", headers=headers)
    assert (wrong.status_code, wrong.json()["title"]) == (405, "Method Not Allowed")
    assert wrong.headers["allow"] == "GET"  # RFC 9110: a 405 names the methods allowed
    # A path with one route per method: the Allow header names them all.
    both = api.client.delete("/v1/sellers/s-30001/violations", headers=headers)
    assert (both.status_code, both.headers["allow"]) == (405, "GET, POST")
    key = document["paths"]["/v1/trades"]["post"]["parameters"]
    (idempotency,) = [p for p in key if p["name"] == "Idempotency-Key"]
    assert idempotency["schema"]["pattern"] == IDEMPOTENCY_KEY_PATTERN
    replay = document["paths"]["/v1/replay"]["get"]["parameters"]
    assert all("pattern" in p["schema"] for p in replay if p["name"] in ("member_id",))


# Each operation's callers, as the document states them and the server enforces.
QUERY = [Role.READER, Role.AUDITOR, Role.ADMIN]
CALLERS = {
    ("post", "/v1/trades"): [Role.SERVICE, Role.ADMIN],
    ("get", "/v1/members/{member_id}/credit"): QUERY,
    ("get", "/v1/sellers/{seller_id}/penalty"): [Role.RANKING, *QUERY],
    ("get", "/v1/log"): [Role.AUDITOR, Role.ADMIN],
    ("post", "/v1/deadlines/run"): [Role.ADMIN],
}


def test_each_operation_names_the_roles_that_may_call_it(api: Api) -> None:
    """One bearer scheme per role; an operation's security lists its callers'
    roles, the usual caller first, and a key of any other role is refused 403."""
    document = api.client.get("/openapi.json").json()
    for (method, path), roles in CALLERS.items():
        security = document["paths"][path][method]["security"]
        assert security == [{str(role): []} for role in roles], (method, path)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in document["paths"][path]["get"], path
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            allowed = {role for entry in operation.get("security", []) for role in entry}
            if not allowed:
                continue
            concrete = re.sub(r"\{[a-z_]+\}", "s-30001", path)
            for role in Role:
                answer = api.client.request(
                    method,
                    concrete,
                    headers={"Authorization": f"Bearer {api.keys[role]}"},
                    params={"after": 0}
                    if operation["operationId"] == "followPenaltyChanges"
                    else None,
                )
                refused = answer.status_code == 403
                assert refused == (str(role) not in allowed), (method, path, role, answer.text)


def test_creating_operations_link_to_the_operations_that_take_their_ids(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    by_id = {
        operation["operationId"]: operation
        for operations in document["paths"].values()
        for operation in operations.values()
    }
    links = {
        source: by_id[source]["responses"]["201"]["links"]
        for source in ("registerMember", "createTrade", "requestRefund", "fileComplaint")
    }
    assert links["createTrade"]["PayIntoEscrow"] == {
        "operationId": "payIntoEscrow",
        "parameters": {"trade_id": "$request.body#/trade_id"},
    }
    assert links["registerMember"]["CreateTradeWithSellerId"]["requestBody"] == {
        "seller_id": "$request.body#/member_id"
    }
    for source, named in links.items():
        for link in named.values():
            target = by_id[link["operationId"]]
            taken = {p["name"] for p in target.get("parameters", [])}
            assert set(link.get("parameters", {})) <= taken, (source, link)
            body = target.get("requestBody", {}).get("content", {}).get("application/json")
            if "requestBody" in link:
                model = body["schema"]["$ref"].rsplit("/", 1)[-1]
                properties = document["components"]["schemas"][model]["properties"]
                assert set(link["requestBody"]) <= set(properties), (source, link)


def test_rulebook_times_and_numbers_are_stated_as_the_server_takes_them(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    served = [entry.id for entry in api.reader.list_rulebooks().rulebooks]
    (rulebook,) = [
        p for p in document["paths"]["/v1/members/{member_id}/credit"]["get"]["parameters"]
        if p["name"] == "rulebook"
    ]  # fmt: skip
    assert rulebook["schema"]["anyOf"][0]["enum"] == served
    batch = document["components"]["schemas"]["PenaltyBatchRequest"]["properties"]
    assert batch["rulebook"]["anyOf"][0]["enum"] == served
    trade = document["components"]["schemas"]["NewTrade"]["properties"]
    assert trade["currency"]["enum"] == ["CNY"]
    assert trade["amount_minor"]["maximum"] == 10**15
    assert isinstance(trade["amount_minor"]["maximum"], int)
    assert trade["occurred_at"]["pattern"] == BUSINESS_TIME_PATTERN
    position = batch["min_position"]["anyOf"][0]
    assert (position["minimum"], position["maximum"]) == (0, 2**53 - 1)


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


def test_the_examples_tell_one_story_that_succeeds_when_tried_in_order(
    tmp_path: Path,
) -> None:
    """On an empty ledger, each step's request is built from the document's
    example of that name alone and sent with its usual caller's key (the first
    role of its security): every one succeeds."""
    with running_api("memory:", tmp_path, feed_follow_seconds=1.0) as fresh:
        document = fresh.client.get("/openapi.json").json()
        operations = {
            operation["operationId"]: (method, path, operation)
            for path, methods in document["paths"].items()
            for method, operation in methods.items()
        }
        assert {example.operation for example in STORY} == set(operations)
        written = 0
        for step, example in enumerate(STORY, start=1):
            method, path, operation = operations[example.operation]
            summary = f"{step}. {example.summary}"
            values = {}
            for parameter in operation.get("parameters", []):
                named = parameter.get("examples", {}).get(example.name)
                if named is not None:
                    assert named["summary"] == summary
                    values[(parameter["in"], parameter["name"])] = named["value"]
            body = None
            if "requestBody" in operation:
                media = operation["requestBody"]["content"]["application/json"]
                named = media.get("examples", {}).get(example.name)
                if named is not None:
                    assert named["summary"] == summary
                    body = named["value"]
            assert values == {
                **{("path", k): v for k, v in example.path.items()},
                **{("query", k): v for k, v in example.query.items()},
            }
            assert body == example.body
            url = path.format(**{name: v for (where, name), v in values.items() if where == "path"})
            headers = {"Idempotency-Key": f"story-{step}"}
            if operation.get("security"):
                (role,) = operation["security"][0]
                headers["Authorization"] = f"Bearer {fresh.keys[Role(role)]}"
            params = {name: v for (where, name), v in values.items() if where == "query"}
            # A reader of its own writes: the view first reflects the story so far.
            takes = {p["name"] for p in operation.get("parameters", [])}
            if "min_position" in takes:
                params["min_position"] = written
            elif body is not None and "min_position" in _body_fields(document, operation):
                body = {**body, "min_position": written}
            answer = fresh.client.request(method, url, params=params, json=body, headers=headers)
            assert answer.status_code < 300, (summary, answer.text)
            if answer.status_code == 201:
                written = max(written, *answer.json()["positions"])


def _body_fields(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    reference = operation["requestBody"]["content"]["application/json"]["schema"].get("$ref", "")
    model = document["components"]["schemas"].get(reference.rsplit("/", 1)[-1], {})
    return set(model.get("properties", {}))
