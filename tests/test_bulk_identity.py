"""Leads are matched by identity, not position: edited inputs dial nobody twice, skip nobody new.

The referee is the fake server's own request record: every ``POST /calls/outbound`` it
received, by destination.
"""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from flireo_async import AsyncFlireo, RequestValidationError
from flireo_async._convert import encode
from flireo_async.bulk import (
    FileLaunchStore,
    LaunchResult,
    LaunchStoreError,
    UnknownOutcomeError,
    content_identity,
    key_identity,
    launch_outcome,
    normalize_destination,
)
from flireo_async.bulk._identity import legacy_digest
from flireo_async.models import AssistantOverride, OutboundCallRequest
from flireo_async.testing import FakeFlireo


def phone(i: int) -> str:
    return f"+3164{i:07d}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(rate_limit=None, speed=1000, seed=5) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFlireo) -> AsyncIterator[AsyncFlireo]:
    async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url, rate_limit=None, max_retries=0) as c:
        yield c


@pytest.fixture
async def agent_id(client: AsyncFlireo) -> str:
    return (await client.agents.create(name="Identity agent")).id


def leads(agent_id: str, numbers: Iterable[int]) -> list[OutboundCallRequest]:
    return [OutboundCallRequest(destination=phone(i), assistant_id=agent_id) for i in numbers]


async def run(client: AsyncFlireo, requests: Any, **options: Any) -> list[LaunchResult]:
    return [r async for r in client.calls.create_many(requests, **options)]


def sent(fake: FakeFlireo) -> collections.Counter[str]:
    """How often the server received a dial request for each destination."""
    return collections.Counter(
        str(r.body.get("destination"))
        for r in fake.requests_for("createOutboundCall")
        if isinstance(r.body, dict)
    )


def twice(fake: FakeFlireo) -> list[str]:
    return [d for d, n in sent(fake).items() if n > 1]


# -- identity ------------------------------------------------------------------------------------


def test_identity_is_the_content_not_the_formatting() -> None:
    base = {"destination": "+31612345678", "assistant_id": "a1", "number_id": "n1"}
    same = content_identity(base)
    assert content_identity({**base, "destination": " +31 6-1234 5678 "}) == same
    assert content_identity({"number_id": "n1", "destination": "+31612345678", "agent_id": "a1"}) == same
    assert content_identity({**base, "assistant_id": "a2"}) != same  # another agent calls
    assert content_identity({**base, "number_id": "n2"}) != same  # another caller id
    override = {"assistant_override": {"variableValues": {"name": "Jan"}}}
    assert content_identity({**base, **override}) != same  # other variables
    assert len(same) == 32
    assert normalize_destination(" +31 (6) 1234.5678 ") == "+31612345678"


def test_key_identity() -> None:
    assert key_identity("A-1042") == "key:A-1042"
    assert key_identity(7) == "key:7"
    assert key_identity("x" * 300).startswith("key-sha256:")
    for bad in ("", "  ", None, 1.5, True):
        with pytest.raises(ValueError, match="key"):
            key_identity(bad)


# -- reruns with an edited input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "new"),
    [
        ("insert_on_top", [999]),
        ("reverse", []),
        ("remove_rows", []),
        ("shuffle_and_add", [500, 501]),
    ],
)
async def test_rerun_after_edit_dials_nobody_twice_and_skips_no_new_lead(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path, edit: str, new: list[int]
) -> None:
    journal = tmp_path / "j.journal"
    numbers = list(range(30))
    first = await run(client, leads(agent_id, numbers), journal=journal)
    assert {r.status for r in first} == {"launched"}
    edited = {
        "insert_on_top": [999, *numbers],
        "reverse": numbers[::-1],
        "remove_rows": [n for n in numbers if n % 3],
        "shuffle_and_add": [*numbers[15:], 500, *numbers[:15], 501],
    }[edit]

    second = await run(client, leads(agent_id, edited), journal=journal)

    assert twice(fake) == []
    assert sorted(sent(fake)) == sorted(phone(i) for i in {*numbers, *new})
    by_destination = {r.destination: r for r in second}
    assert len(second) == len(edited)
    for i in edited:
        result = by_destination[phone(i)]
        assert result.status == "launched"
        assert result.resumed == (i not in new)
    first_ids = {r.destination: r.call_id for r in first}
    assert all(by_destination[phone(i)].call_id == first_ids[phone(i)] for i in edited if i not in new)


async def test_duplicates_in_one_input_are_dialed_once(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    inputs: list[Any] = [
        {"destination": phone(1), "assistant_id": agent_id},
        {"destination": phone(2), "assistant_id": agent_id},
        {"destination": phone(1) + " ", "assistant_id": agent_id},  # trailing space: the same lead
        {"destination": phone(3), "assistant_id": agent_id},
        {"destination": phone(1), "agent_id": agent_id},  # deprecated name: the same lead
    ]
    results = {r.index: r for r in await run(client, inputs, journal=tmp_path / "j")}
    assert [results[i].status for i in range(5)] == [
        "launched",
        "launched",
        "duplicate",
        "launched",
        "duplicate",
    ]
    assert results[2].duplicate_of == 0
    assert results[4].duplicate_of == 0
    assert results[2].identity == results[0].identity
    assert sent(fake) == {phone(1): 1, phone(2): 1, phone(3): 1}

    # A rerun still finds the repeat (and dials nobody).
    again = {r.index: r for r in await run(client, inputs, journal=tmp_path / "j")}
    assert [again[i].status for i in range(5)] == [
        "launched",
        "launched",
        "duplicate",
        "launched",
        "duplicate",
    ]
    assert sent(fake) == {phone(1): 1, phone(2): 1, phone(3): 1}


async def test_duplicates_are_found_without_a_journal_too(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str
) -> None:
    inputs = leads(agent_id, [1, 2, 1, 1])
    statuses = [r.status for r in sorted(await run(client, inputs), key=lambda r: r.index)]
    assert statuses == ["launched", "launched", "duplicate", "duplicate"]
    assert sent(fake) == {phone(1): 1, phone(2): 1}


async def test_a_key_identifies_the_lead_and_a_new_key_calls_again(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    rows = [{"lead_id": f"L{i}", "destination": phone(i), "assistant_id": agent_id} for i in range(5)]

    def request(row: dict[str, Any], **override: Any) -> dict[str, Any]:
        return {"destination": row["destination"], "assistant_id": agent_id, **override}

    by_key = {r["lead_id"]: r for r in rows}

    def key(req: dict[str, Any]) -> str:
        return next(k for k, r in by_key.items() if r["destination"] == req["destination"])

    await run(client, [request(r) for r in rows], journal=journal, key=key)
    assert len(sent(fake)) == 5

    # Same keys, edited content (a new greeting): nobody is dialed again.
    edited = [request(r, first_message="Hallo!") for r in rows]
    again = await run(client, edited, journal=journal, key=key)
    assert all(r.resumed and r.status == "launched" for r in again)
    assert all(r.identity.startswith("key:L") for r in again)
    assert twice(fake) == []

    # A deliberate second call to lead 0: give it a new key.
    retry = await run(client, [request(rows[0])], journal=journal, key=lambda r: "L0-second-call")
    assert [r.status for r in retry] == ["launched"]
    assert sent(fake)[phone(0)] == 2


async def test_a_failing_key_function_fails_that_lead_only(client: AsyncFlireo, agent_id: str) -> None:
    inputs = [
        {"destination": phone(1), "assistant_id": agent_id, "crm": "A"},
        {"destination": phone(2), "assistant_id": agent_id},
    ]
    results = {r.index: r for r in await run(client, inputs, key=lambda r: r["crm"])}
    assert results[0].status == "launched"
    assert results[1].status == "failed"
    assert isinstance(results[1].error, RequestValidationError)
    assert results[1].error.field == "key"


async def test_an_edited_lead_is_a_new_lead(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    """Content identity: another agent or other variables for the same number is another call."""
    journal = tmp_path / "j"
    await run(client, leads(agent_id, [1]), journal=journal)
    override = AssistantOverride(extra={"variableValues": {"name": "Jan"}})
    changed = [OutboundCallRequest(destination=phone(1), assistant_id=agent_id, assistant_override=override)]
    results = await run(client, changed, journal=journal)
    assert [r.status for r in results] == ["launched"]
    assert not results[0].resumed
    assert sent(fake)[phone(1)] == 2


# -- runs, failures and what counts as sent ----------------------------------------------------------


async def test_failed_leads_are_retried_by_the_next_run_only(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    fake.inject("createOutboundCall", status_429=1.0, retry_after=0, times=3)
    first = await run(client, leads(agent_id, range(3)), journal=journal, max_in_flight=1)
    assert {r.status for r in first} == {"failed"}
    assert sum(sent(fake).values()) == 3  # each refused once; max_retries=0
    second = await run(client, leads(agent_id, range(3)), journal=journal)
    assert {r.status for r in second} == {"launched"}
    assert not any(r.resumed for r in second)
    third = await run(client, leads(agent_id, range(3)), journal=journal)
    assert all(r.resumed for r in third)
    assert sum(sent(fake).values()) == 6


async def test_an_error_before_sending_is_failed_and_retried_later(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything that goes wrong before the request is on the wire cannot have dialed."""
    journal = tmp_path / "j"

    async def broken() -> float:
        raise RuntimeError("pacing broke")

    pacer = client._transport.pacer
    monkeypatch.setattr(pacer, "try_acquire", lambda: False)
    monkeypatch.setattr(pacer, "acquire", broken)
    first = await run(client, leads(agent_id, range(4)), journal=journal)
    assert {r.status for r in first} == {"failed"}
    assert all(isinstance(r.error, RuntimeError) for r in first)
    assert sent(fake) == {}
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert "attempt" not in events  # never marked as sending

    monkeypatch.undo()
    second = await run(client, leads(agent_id, range(4)), journal=journal)
    assert {r.status for r in second} == {"launched"}
    assert sorted(sent(fake).values()) == [1, 1, 1, 1]


def test_launch_outcome_when_nothing_was_sent() -> None:
    assert launch_outcome(RuntimeError("boom")) == "unknown"
    assert launch_outcome(RuntimeError("boom"), sent=False) == "failed"
    assert launch_outcome(LaunchStoreError("redis gone")) == "failed"


class BrokenStore(FileLaunchStore):
    """A journal whose disk fills up after ``ok`` attempts."""

    def __init__(self, path: Path, ok: int) -> None:
        super().__init__(path)
        self.ok = ok

    async def mark_sending(self, lead: Any) -> None:
        if self.ok <= 0:
            raise LaunchStoreError("the journal cannot be written: [Errno 28] No space left on device")
        self.ok -= 1
        await super().mark_sending(lead)


async def test_a_store_that_cannot_record_means_no_dial_and_the_launch_stops(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    store = BrokenStore(tmp_path / "j", ok=5)
    seen: list[LaunchResult] = []

    async def consume() -> None:
        async for result in client.calls.create_many(
            leads(agent_id, range(50)), store=store, max_in_flight=1
        ):
            seen.append(result)

    with pytest.raises(LaunchStoreError, match="No space left"):
        await consume()
    assert sum(sent(fake).values()) == 5  # nothing beyond what was recorded
    assert [r.status for r in seen].count("launched") == 5
    failed = [r for r in seen if r.status == "failed"]
    assert failed
    assert all(isinstance(r.error, LaunchStoreError) for r in failed)
    assert all(r.destination not in sent(fake) for r in failed)

    # Once the disk is fine again, a rerun completes the rest without dialing anyone twice.
    rest = await run(client, leads(agent_id, range(50)), journal=tmp_path / "j")
    assert {r.status for r in rest} == {"launched"}
    assert sum(r.resumed for r in rest) == 5
    assert twice(fake) == []
    assert len(sent(fake)) == 50


async def test_resumed_outcomes_say_what_was_recorded(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    fake.inject("createOutboundCall", drop_after_processing=1.0, times=1)
    first = await run(client, leads(agent_id, [1]), journal=journal)
    assert [r.status for r in first] == ["unknown"]
    second = await run(client, leads(agent_id, [1]), journal=journal)
    assert second[0].status == "unknown"
    assert second[0].resumed
    assert isinstance(second[0].error, UnknownOutcomeError)
    assert "APIConnectionError" in str(second[0].error)
    assert sent(fake)[phone(1)] == 1


async def test_journals_of_version_0_1_are_read(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    """A journal written by 0.1 (position-based keys with a content hash) still protects its leads."""
    journal = tmp_path / "old.journal"
    old = leads(agent_id, range(4))
    lines = [{"event": "run", "at": "2026-01-01T00:00:00.000Z", "version": 1}]
    for index, request in enumerate(old[:3]):
        key = f"{index}:{legacy_digest(encode(request))}"
        lines.append({"event": "attempt", "index": index, "key": key, "destination": request.destination})
        lines.append({"event": "launched", "index": index, "key": key, "call_id": f"call-{index}"})
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))

    results = {r.destination: r for r in await run(client, old[::-1], journal=journal)}  # and reordered
    assert [results[phone(i)].resumed for i in range(4)] == [True, True, True, False]
    assert results[phone(0)].call_id == "call-0"
    assert sent(fake) == {phone(3): 1}


async def test_invalid_destinations_fail_without_being_sent(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str
) -> None:
    inputs: list[Any] = [
        {"destination": "0612345678", "assistant_id": agent_id},
        {"destination": "+31 6 1234 5678", "assistant_id": agent_id},
    ]
    results = {r.index: r for r in await run(client, inputs)}
    assert results[0].status == "failed"
    assert isinstance(results[0].error, RequestValidationError)
    assert results[0].error.field == "destination"
    assert results[1].status == "launched"
    assert results[1].destination == "+31612345678"
    assert sent(fake) == {"+31612345678": 1}  # sent normalised


def test_create_many_checks_its_arguments(tmp_path: Path) -> None:
    client = AsyncFlireo(api_key="k", base_url="http://127.0.0.1:9/api/v1")
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(max_in_flight=0), "max_in_flight"),
        (dict(journal=tmp_path / "j", store=FileLaunchStore(tmp_path / "k")), "not both"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            client.calls.create_many([], **bad)
    with pytest.raises(TypeError, match="key must be a function"):
        client.calls.create_many([], key="lead_id")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LaunchStore"):
        client.calls.create_many([], store=object())  # type: ignore[arg-type]
