"""The compiled decoders agree with the precise slow path on thousands of mutated examples.

Every operation's documented response example is decoded as is and after seeded random
mutations (a key removed, a value of another JSON type, an unknown key, keys reordered, a
nested value replaced). For each input both decoders must give equal models, or both the same
:class:`DecodeError` message; any other exception is a bug in one of them.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from flireo_async import _convert
from flireo_async._generated import operations
from flireo_async._operation import Operation
from flireo_async.testing import load_spec

SEEDS = range(8)
MUTATIONS_PER_EXAMPLE = 12

_SCALARS: list[Any] = [None, True, 0, -7, 3.5, "", "x", "2025-03-01T10:00:00Z", [], {}, [1, "a"], {"k": 1}]


def examples() -> list[tuple[str, Operation[Any], Any]]:
    """(operation id, operation, decoded-body example) for every operation that has one."""
    spec = load_spec()
    by_id: dict[str, Any] = {}
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                by_id[op["operationId"]] = op
    found = []
    for name in operations.__all__:
        operation = getattr(operations, name)
        if operation.returns_none:
            continue
        for code, response in by_id[operation.id].get("responses", {}).items():
            if not code.startswith("2"):
                continue
            media = response.get("content", {}).get("application/json", {})
            bodies = [media["example"]] if "example" in media else []
            bodies += [named["value"] for named in media.get("examples", {}).values() if "value" in named]
            for body in bodies:
                if operation.unwrap is not None and isinstance(body, dict) and operation.unwrap in body:
                    body = body[operation.unwrap]
                found.append((operation.id, operation, body))
    return found


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def mutate(value: Any, rng: random.Random) -> Any:
    """One to three random edits of a deep copy of ``value``."""
    value = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(value))
        path = rng.choice(paths)
        if not path:
            continue
        parent, last = _get(value, path[:-1]), path[-1]
        action = rng.choice(["drop", "retype", "unknown", "reorder", "null"])
        if action == "drop" and isinstance(parent, dict):
            del parent[last]
        elif action == "retype":
            parent[last] = copy.deepcopy(rng.choice(_SCALARS))
        elif action == "null":
            parent[last] = None
        elif action == "unknown" and isinstance(parent, dict):
            parent[f"unknown_{rng.randint(0, 9)}"] = copy.deepcopy(rng.choice(_SCALARS))
        elif action == "reorder" and isinstance(parent, dict):
            items = list(parent.items())
            rng.shuffle(items)
            parent.clear()
            parent.update(items)
    return value


def _precise(lenient: bool) -> _convert._Converter:
    conv = _convert._make_converter(lenient=lenient, compiled=False)
    reference = _convert.lenient_converter if lenient else _convert.converter
    conv.tagged_unions = dict(reference.tagged_unions)
    conv.older_shapes = dict(reference.older_shapes)
    return conv


PRECISE = {False: _precise(False), True: _precise(True)}


def outcome(conv: _convert._Converter, body: Any, tp: Any) -> tuple[str, Any]:
    try:
        return ("ok", conv.structure(json.loads(json.dumps(body)), tp))
    except _convert.DecodeError as exc:
        return ("error", str(exc))


def test_every_documented_response_example_is_covered() -> None:
    covered = {op_id for op_id, _, _ in examples()}
    assert len(covered) >= 40, sorted(covered)


@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
@pytest.mark.parametrize("seed", SEEDS)
def test_compiled_decoders_agree_with_the_precise_path(seed: int, lenient: bool) -> None:
    rng = random.Random(seed)
    compiled = _convert.lenient_converter if lenient else _convert.converter
    cases = agreed_ok = 0
    for op_id, operation, example in examples():
        inputs = [example] + [mutate(example, rng) for _ in range(MUTATIONS_PER_EXAMPLE)]
        for body in inputs:
            expected = outcome(PRECISE[lenient], body, operation.result_type)
            got = outcome(compiled, body, operation.result_type)
            assert got == expected, (op_id, body)
            cases += 1
            agreed_ok += expected[0] == "ok"
    # Both kinds of outcome must be exercised, or the comparison proves little.
    assert cases >= 500
    assert 0 < agreed_ok < cases
