"""Schemathesis runs the spec against the fake server: every operation, spec examples plus a
few generated cases each (bounded so the file stays fast).

The fake runs on its own event loop in a background thread (``run_in_thread``) because
schemathesis calls it synchronously over HTTP. It runs with ``validate_responses=True``, so a
body the fake's own (lenient-``oneOf``) check rejects would surface here as a 500.

What is checked, and what is left out on purpose:

- positive cases (valid requests): no 5xx, documented status codes, documented content types,
  response bodies conform to the schema of their status, documented headers
  (``X-RateLimit-*`` are sent because the fake has a generous rate limit) have their types.
- negative cases (invalid requests): no 5xx, documented status codes, documented content types,
  and error bodies conform to ``ErrorBody``.
- ``negative_data_rejection`` / ``positive_data_acceptance`` are not used: the fake checks
  more than a schema can say (referenced ids exist, E.164 numbers, a resend key before domain
  calls) and rejects, e.g., an outbound call to an unknown agent with 404, which those checks
  would misread.
- Coverage and stateful phases are off: the coverage phase alone generates hundreds of cases
  per operation, which does not fit the time budget.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flireo_async.testing import FakeFlireo, load_spec, run_in_thread

SPEC = load_spec()

MAX_EXAMPLES = 5


def load(mode: Any) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(SPEC))
    schema.config.generation.update(modes=[mode], max_examples=MAX_EXAMPLES)
    schema.config.phases.coverage.enabled = False
    schema.config.phases.stateful.enabled = False
    return schema


positive = load(GenerationMode.POSITIVE)
negative = load(GenerationMode.NEGATIVE)
bounded = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeFlireo]:
    with run_in_thread(speed=1000, rate_limit=1_000_000, seed=17, validate_responses=True) as server:
        yield server
        assert server.response_problems == []


def call(case: Case[Any], fake: FakeFlireo) -> schemathesis.Response:
    return case.call(base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"}, timeout=10)


@positive.parametrize()
@bounded
def test_valid_requests_get_conforming_responses(case: Case[Any], fake: FakeFlireo) -> None:
    response = call(case, fake)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            response_headers_conformance,
        ],
    )


@negative.parametrize()
@bounded
def test_invalid_requests_never_break_the_server(case: Case[Any], fake: FakeFlireo) -> None:
    response = call(case, fake)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
