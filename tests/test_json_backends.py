"""The JSON backends (orjson when installed, the standard library otherwise) agree: the same
values, the same bytes written, the same refusals; files written by one read with the other."""

from __future__ import annotations

import datetime
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flireo_async import AsyncFlireo, _json
from flireo_async._transport import encode_body
from flireo_async.bulk import FileLaunchStore
from flireo_async.bulk._store import Lead
from flireo_async.export import export_usage
from flireo_async.testing import FakeFlireo

HAS_ORJSON = importlib.util.find_spec("orjson") is not None
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
BACKENDS = [
    "stdlib",
    pytest.param("orjson", marks=pytest.mark.skipif(not HAS_ORJSON, reason="no orjson")),
]

VALUES: list[Any] = [
    {"name": "Ça va — 日本語 \u2028 😀", "n": 1, "f": 0.1, "big": 1e16, "neg": -0.0, "t": True, "z": None},
    [1, 2.5, "x", [], {}, [[{"a": [None]}]]],
    {"int64+": 2**70, "small": -(2**63)},
    "plain",
    12345678901234567890,
    {"escapes": 'quote " backslash \\ tab \t newline \n nul \u0000 del \x7f'},
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    before = _json.backend()
    _json.use(request.param)
    try:
        yield request.param
    finally:
        _json.use(before)


@pytest.mark.parametrize("value", VALUES)
def test_round_trip_and_bytes_equal_the_stdlib_compact_utf8_form(backend: str, value: Any) -> None:
    written = _json.dumps(value)
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert written == expected
    assert _json.loads(written) == value
    assert _json.loads(written.decode()) == value
    assert _json.dumps_text(value) == expected.decode()


def test_non_string_keys_are_written_as_the_stdlib_writes_them(backend: str) -> None:
    assert _json.dumps({1: "a", 2.5: "b", False: "c"}) == b'{"1":"a","2.5":"b","false":"c"}'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused_when_writing(backend: str, bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        _json.dumps({"a": [1, {"b": bad}], "c": None})


@pytest.mark.parametrize("text", [b"NaN", b'{"x": Infinity}', b"[-Infinity]"])
def test_non_finite_literals_are_refused_when_reading(backend: str, text: bytes) -> None:
    with pytest.raises(ValueError, match=r"not valid JSON|unexpected character|no digit"):
        _json.loads(text)


def test_values_json_cannot_carry_are_a_type_error(backend: str) -> None:
    import datetime as dt

    with pytest.raises(TypeError):
        _json.dumps({"when": dt.datetime(2026, 1, 1)})
    with pytest.raises(TypeError):
        _json.dumps({"what": object()})


def test_deep_nesting_is_a_recursion_error(backend: str) -> None:
    with pytest.raises(RecursionError):
        _json.loads(b"[" * 100_000 + b"]" * 100_000)


def test_invalid_json_is_a_value_error(backend: str) -> None:
    # The backends word their messages differently: the contract is the exception type.
    for text in (b"", b"{", b'{"a": 1,}', b"\xff\xfe"):
        with pytest.raises(ValueError):  # noqa: PT011
            _json.loads(text)


def test_request_body_is_the_same_bytes_with_either_backend(backend: str) -> None:
    body = {"assistant_id": "a-1", "phone_number": "+31850835037", "metadata": {"naam": "Zoë"}}
    assert encode_body(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_use_rejects_unknown_names_and_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _json.backend()
    try:
        with pytest.raises(ValueError, match="unknown JSON backend 'simdjson'"):
            _json.use("simdjson")  # type: ignore[arg-type]
        monkeypatch.setenv("FLIREO_JSON", "stdlib")
        assert _json.use() == "stdlib"
        assert _json.backend() == "stdlib"
        monkeypatch.delenv("FLIREO_JSON")
        assert _json.use() == ("stdlib" if not HAS_ORJSON else "orjson")
        if not HAS_ORJSON:
            with pytest.raises(ValueError, match="not installed"):
                _json.use("orjson")
    finally:
        _json.use(before)


async def test_a_journal_written_with_either_backend_reads_back_with_the_other(
    backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "launch.journal"
    store = FileLaunchStore(path, sync=False)
    await store.open()
    lead = Lead("id-ü", 0, destination="+31612345678")
    await store.claim(lead)
    await store.mark_sending(lead)
    await store.settle(lead, "failed", error="Fehler: ungültige Nummer „x“")
    await store.close()
    raw = path.read_bytes()
    lines = [json.loads(line) for line in raw.splitlines()]  # the standard library reads every line
    assert [line["event"] for line in lines] == ["run", "attempt", "failed"]
    assert lines[2]["error"] == "Fehler: ungültige Nummer „x“"
    for line, parsed in zip(raw.splitlines(), lines, strict=True):
        assert line == json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
    for other in ("stdlib", "orjson") if HAS_ORJSON else ("stdlib",):
        _json.use(other)
        reread = FileLaunchStore(path, sync=False)
        await reread.open()
        assert reread.unreadable_lines == 0
        assert reread.run == 2
        await reread.close()
        path.write_bytes(raw)
        _json.use(backend)  # type: ignore[arg-type]


async def test_exports_are_byte_identical_with_either_backend(tmp_path: Path) -> None:
    before = _json.backend()
    names = ["stdlib", "orjson"] if HAS_ORJSON else ["stdlib"]
    outputs: dict[tuple[str, str], bytes] = {}
    try:
        async with FakeFlireo(rate_limit=None, speed=100, seed=3) as fake:
            fake.seed_usage_logs(2500, start=START)
            async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None) as client:
                for name in names:
                    _json.use(name)  # type: ignore[arg-type]
                    for fmt in ("csv", "jsonl"):
                        out = tmp_path / f"{name}.{fmt}"
                        assert await export_usage(client, out, format=fmt, page_size=700) == 2500
                        outputs[(name, fmt)] = out.read_bytes()
    finally:
        _json.use(before)
    for fmt in ("csv", "jsonl"):
        assert outputs[("stdlib", fmt)] == outputs[(names[-1], fmt)]
    lines = outputs[("stdlib", "jsonl")].decode().splitlines()
    assert len(lines) == 2500
    assert all(isinstance(json.loads(line), dict) for line in lines)
