"""The spec itself, and every operation end to end through its generated stub (aioresponses):
method, path (ids URL-encoded), query and body sent; the spec's response example decoded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aioresponses import aioresponses
from openapi_spec_validator import validate

from flireo_async import AsyncFlireo, Page, models
from flireo_async._convert import decode, encode
from flireo_async.testing import load_spec

from .conftest import KEY, operations, ref_name, resolve

SPEC = load_spec()

ROOT = Path(__file__).resolve().parent.parent
OPS = operations()
RAW_ID = "call-_+31612345678_Xq/a b"
ENCODED_ID = "call-_%2B31612345678_Xq%2Fa%20b"


def first_example(content: dict[str, Any]) -> Any:
    media = content["application/json"]
    if "example" in media:
        return media["example"]
    return next(iter(media["examples"].values()))["value"]


def success_response(op: dict[str, Any]) -> tuple[int, Any]:
    for code, response in op["responses"].items():
        if str(code).startswith("2") and "content" in response:
            return int(code), first_example(response["content"])
    return 204, None


def test_spec_validates_and_embedded_copy_is_current() -> None:
    spec = yaml.safe_load((ROOT / "openapi" / "flireo.yaml").read_text())
    validate(spec)
    assert spec == SPEC


def test_spec_has_exactly_50_operations_and_4_webhooks() -> None:
    ids = [op["operationId"] for _, _, op in OPS]
    assert len(ids) == 50
    assert len(set(ids)) == 50
    assert set(SPEC["webhooks"]) == {"assistant-request", "tool-calls", "status-update", "end-of-call-report"}


def test_every_success_response_and_webhook_has_an_example() -> None:
    for _, _, op in OPS:
        code, example = success_response(op)
        assert code == 204 or example is not None, op["operationId"]
    for name, hook in SPEC["webhooks"].items():
        assert first_example(hook["post"]["requestBody"]["content"]) is not None, name


def sample_query(param: dict[str, Any]) -> tuple[Any, str]:
    schema = param["schema"]
    kind = schema.get("type")
    if schema.get("format") == "date-time":
        from flireo_async._convert import parse_datetime

        return parse_datetime("2026-01-07T10:00:00Z"), "2026-01-07T10:00:00.000Z"
    if kind == "integer":
        return 7, "7"
    if kind == "boolean":
        return True, "true"
    return "in-progress", "in-progress"


@pytest.mark.parametrize(("method", "path", "op"), OPS, ids=[op["operationId"] for _, _, op in OPS])
async def test_operation_end_to_end(
    method: str, path: str, op: dict[str, Any], mocked: aioresponses, client: AsyncFlireo
) -> None:
    resource = getattr(client, op["tags"][0])
    call = getattr(resource, op["x-sdk-method"])
    params = op.get("parameters", [])
    args: list[Any] = []
    expected_path = path
    for p in params:
        if p["in"] == "path":
            args.append(RAW_ID)
            expected_path = expected_path.replace("{" + p["name"] + "}", ENCODED_ID)
    kwargs: dict[str, Any] = {}
    expected_query: dict[str, str] = {}
    for p in params:
        if p["in"] == "query":
            value, text = sample_query(p)
            kwargs[p["name"]] = value
            expected_query[p["name"]] = text
    body_example = None
    if "requestBody" in op:
        body_example = first_example(op["requestBody"]["content"])
        model = getattr(models, ref_name(op["requestBody"]["content"]["application/json"]["schema"]))
        args.append(decode(body_example, model))

    status, response_example = success_response(op)
    pattern = re.compile(r"^https://api\.test\.flireo/api/v1/.*$")
    if response_example is None:
        mocked.add(pattern, method=method, status=status)
    else:
        mocked.add(pattern, method=method, status=status, payload=response_example)

    result = call(*args, **kwargs)
    result = await result

    (((sent_method, url), requests),) = mocked.requests.items()
    assert sent_method == method
    assert url.raw_path == "/api/v1" + expected_path
    assert dict(url.query) == expected_query
    sent = requests[0].kwargs
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    if body_example is None:
        assert sent.get("data") is None
    else:
        assert sent["headers"]["Content-Type"] == "application/json"
        assert json.loads(sent["data"]) == body_example

    if op.get("x-returns-none"):
        assert result is None
        return
    if op.get("x-paginated"):
        assert isinstance(result, Page)
        assert encode(result.response) == response_example
        assert result.items == getattr(result.response, op["x-paginated"]["items"])
        return
    expected = response_example[op["x-unwrap"]] if op.get("x-unwrap") else response_example
    assert encode(result) == expected


def schema_examples() -> list[tuple[str, str, Any]]:
    """(label, schema name, example) for every example in request bodies, responses and webhooks."""
    found = []

    def collect(label: str, content: dict[str, Any] | None) -> None:
        if not content or "application/json" not in content:
            return
        media = content["application/json"]
        schema = media["schema"]
        if "$ref" not in schema:
            return
        values = (
            [media["example"]]
            if "example" in media
            else [e["value"] for e in media.get("examples", {}).values()]
        )
        for i, value in enumerate(values):
            found.append((f"{label}#{i}", ref_name(schema), value))

    for _, _, op in OPS:
        if "requestBody" in op:
            collect(op["operationId"] + ":request", op["requestBody"]["content"])
        for code, response in op["responses"].items():
            if str(code).startswith("2"):
                collect(f"{op['operationId']}:{code}", response.get("content"))
    for name, hook in SPEC["webhooks"].items():
        collect(name + ":payload", hook["post"]["requestBody"]["content"])
        for code, response in hook["post"]["responses"].items():
            collect(f"{name}:{code}", response.get("content"))
    return found


EXAMPLES = schema_examples()


@pytest.mark.parametrize(("label", "schema", "example"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_round_trips(label: str, schema: str, example: Any) -> None:
    model = getattr(models, schema)
    decoded = decode(example, model)
    assert encode(decoded) == example


def test_examples_cover_every_operation() -> None:
    labels = {label.split(":")[0] for label, _, _ in EXAMPLES}
    for _, _, op in OPS:
        _, example = success_response(op)
        if example is not None:
            assert op["operationId"] in labels


def test_error_schema_is_shared() -> None:
    for _, _, op in OPS:
        for code, response in op["responses"].items():
            if str(code)[0] in "45":
                assert "$ref" in response, (op["operationId"], code)
                target = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
                schema = target["content"]["application/json"]["schema"]
                assert resolve(schema) is SPEC["components"]["schemas"]["ErrorBody"]
