"""``client.calls.create_many``: one outcome per lead, no lead dialed twice, crash-safe journal."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flireo_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncFlireo,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
)
from flireo_async._convert import encode
from flireo_async.bulk import (
    LaunchResult,
    LaunchStoreError,
    UnknownOutcomeError,
    content_identity,
    launch_outcome,
)
from flireo_async.models import OutboundCallRequest
from flireo_async.testing import FakeFlireo

UNKNOWN_FAULTS = {"status_5xx", "malformed_json", "drop_after_processing"}


def phone(i: int) -> str:
    return f"+3161{i:07d}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlireo]:
    async with FakeFlireo(rate_limit=None, speed=1000, seed=11) as server:
        yield server


def make_client(fake: FakeFlireo, **options: Any) -> AsyncFlireo:
    settings: dict[str, Any] = dict(rate_limit=None, max_retries=1, max_retry_wait=1, max_concurrency=32)
    settings.update(options)
    return AsyncFlireo(api_key=fake.api_key, base_url=fake.url, **settings)


@pytest.fixture
async def client(fake: FakeFlireo) -> AsyncIterator[AsyncFlireo]:
    async with make_client(fake) as c:
        yield c


@pytest.fixture
async def agent_id(client: AsyncFlireo) -> str:
    return (await client.agents.create(name="Bulk agent")).id


def requests_for(agent_id: str, n: int, start: int = 0) -> Iterator[OutboundCallRequest]:
    for i in range(start, start + n):
        yield OutboundCallRequest(destination=phone(i), assistant_id=agent_id)


async def collect(results: AsyncIterator[LaunchResult]) -> list[LaunchResult]:
    return [r async for r in results]


def outbound_records(fake: FakeFlireo) -> dict[str, list[Any]]:
    """Requests the server received for POST /calls/outbound, per destination, in order."""
    by_destination: dict[str, list[Any]] = collections.defaultdict(list)
    for record in fake.requests_for("createOutboundCall"):
        if isinstance(record.body, dict):
            by_destination[str(record.body.get("destination"))].append(record)
    return by_destination


def assert_never_dialed_twice(fake: FakeFlireo) -> None:
    twice = [d for d, n in collections.Counter(fake.dialed()).items() if n > 1]
    assert twice == [], f"dialed more than once: {twice[:5]}"


# -- the big one -----------------------------------------------------------------------------


async def test_2000_launches_with_faults_of_every_kind(fake: FakeFlireo, agent_id: str) -> None:
    fake.inject(
        "createOutboundCall",
        status_429=0.04,
        status_5xx=0.02,
        malformed_json=0.02,
        drop_after_processing=0.02,
        latency=(0.0, 0.01),
        retry_after=0,
    )
    n = 2000
    invalid_dict = {"assistant_id": agent_id}  # no destination: rejected before sending
    bad_number = OutboundCallRequest(destination="0612345678", assistant_id=agent_id)  # server: 400
    no_agent = OutboundCallRequest(destination=phone(999_999), assistant_id="no-such-agent")  # server: 404

    def inputs() -> Iterator[Any]:
        for i in range(n):
            if i == 100:
                yield invalid_dict
            elif i == 200:
                yield bad_number
            elif i == 300:
                yield no_agent
            elif i % 50 == 7:
                yield {"destination": phone(i), "assistant_id": agent_id}  # dicts of wire names work too
            else:
                yield OutboundCallRequest(destination=phone(i), assistant_id=agent_id)

    async with make_client(fake, max_concurrency=64) as client:
        results = await collect(client.calls.create_many(inputs(), max_in_flight=64))

    # Exactly one result per request.
    assert len(results) == n
    assert sorted(r.index for r in results) == list(range(n))
    by_status = collections.Counter(r.status for r in results)
    assert by_status["launched"] + by_status["failed"] + by_status["unknown"] == n
    assert_never_dialed_twice(fake)

    records = outbound_records(fake)
    dialed = set(fake.dialed())
    calls = fake.state.calls
    for r in results:
        sent = records.get(str(r.destination))
        final = sent[-1] if sent else None
        if r.status == "launched":
            assert r.call_id in calls
            assert calls[r.call_id]["caller_phone"] == r.destination
            assert final is not None
            assert final.status == 200
            assert final.fault in (None, "latency")
        elif r.status == "failed":
            # Certainly not dialed, and the error says why.
            assert r.destination not in dialed
            assert isinstance(
                r.error, (RateLimitError, RequestValidationError, BadRequestError, NotFoundError)
            )
            if isinstance(r.error, RateLimitError):
                assert final is not None
                assert final.fault == "status_429"
        else:
            # Justified: the last attempt hit a fault that leaves the outcome open.
            assert final is not None
            assert final.fault in UNKNOWN_FAULTS, (r, final)
            assert isinstance(r.error, (InternalServerError, APIResponseValidationError, APIConnectionError))
            if isinstance(r.error, APIConnectionError):
                assert r.error.sent
    # Every destination the server dialed was reported launched or unknown, never failed.
    reported = {r.destination: r.status for r in results}
    assert all(reported[d] in ("launched", "unknown") for d in dialed)
    # The three invalid requests failed; the dict one was never sent.
    assert results_by_index(results)[100].status == "failed"
    assert "None" not in records
    assert isinstance(results_by_index(results)[100].error, RequestValidationError)
    assert isinstance(results_by_index(results)[200].error, RequestValidationError)  # not E.164
    # The unknown agent is a 404, unless a random fault answered its last attempt first.
    no_agent_final = records[str(no_agent.destination)][-1]
    if no_agent_final.fault in UNKNOWN_FAULTS:
        assert results_by_index(results)[300].status == "unknown"
    else:
        assert isinstance(results_by_index(results)[300].error, NotFoundError)
    # Each ambiguous fault produced exactly one unknown (POST is never retried on them).
    faults = collections.Counter(r.fault for r in fake.requests_for("createOutboundCall"))
    assert by_status["unknown"] == sum(faults[f] for f in UNKNOWN_FAULTS) > 0
    assert faults["status_429"] > 0
    assert by_status["launched"] > 1700


def results_by_index(results: list[LaunchResult]) -> dict[int, LaunchResult]:
    return {r.index: r for r in results}


# -- outcomes of single failure modes ----------------------------------------------------------


async def test_timeout_is_unknown_and_really_may_have_dialed(fake: FakeFlireo, agent_id: str) -> None:
    fake.inject("createOutboundCall", latency=0.5)
    async with make_client(fake, timeout=0.2) as client:
        results = await collect(client.calls.create_many(requests_for(agent_id, 4)))
    assert {r.status for r in results} == {"unknown"}
    assert all(isinstance(r.error, APITimeoutError) for r in results)
    # The server goes on with the requests after the client gave up: wait for it to finish.
    for _ in range(200):
        if len(fake.dialed()) == 4:
            break
        await asyncio.sleep(0.05)
    assert sorted(fake.dialed()) == [phone(i) for i in range(4)]


async def test_connection_refused_is_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncFlireo(api_key="k", base_url=f"http://127.0.0.1:{port}/api/v1", max_retries=0) as client:
        results = await collect(client.calls.create_many(requests_for("agent", 3)))
    assert [r.status for r in results] == ["failed"] * 3
    assert all(isinstance(r.error, APIConnectionError) and not r.error.sent for r in results)


def test_launch_outcome_classification() -> None:
    def status_error(cls: type, status: int) -> Exception:
        return cls("x", status=status)  # type: ignore[no-any-return]

    assert launch_outcome(RequestValidationError("destination", "missing")) == "failed"
    assert launch_outcome(APIConnectionError("refused", method="POST", url="u", sent=False)) == "failed"
    assert launch_outcome(APIConnectionError("dropped", method="POST", url="u", sent=True)) == "unknown"
    assert launch_outcome(APITimeoutError("slow", method="POST", url="u")) == "unknown"
    assert launch_outcome(status_error(RateLimitError, 429)) == "failed"
    assert launch_outcome(status_error(BadRequestError, 400)) == "failed"
    assert launch_outcome(status_error(NotFoundError, 404)) == "failed"
    assert launch_outcome(status_error(InternalServerError, 503)) == "unknown"
    assert launch_outcome(APIResponseValidationError("bad", status=200, body="{", headers={})) == "unknown"
    assert launch_outcome(RuntimeError("surprise")) == "unknown"


# -- laziness and bounds ---------------------------------------------------------------------


async def test_input_is_consumed_lazily_and_in_flight_is_bounded(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str
) -> None:
    fake.inject("createOutboundCall", latency=0.02)
    pulled = 0

    def endless() -> Iterator[OutboundCallRequest]:
        nonlocal pulled
        i = 0
        while True:  # a million leads or more: never materialised
            pulled += 1
            yield OutboundCallRequest(destination=phone(i), assistant_id=agent_id)
            i += 1

    seen = 0
    launches = client.calls.create_many(endless(), max_in_flight=5)
    async with contextlib.aclosing(launches):
        async for _ in launches:
            seen += 1
            assert pulled <= seen + 5
            if seen == 30:
                break
    await asyncio.sleep(0.05)
    assert len(fake.dialed()) <= 35
    assert not [t for t in asyncio.all_tasks() if "_launch" in repr(t.get_coro())]


async def test_async_iterable_input(client: AsyncFlireo, agent_id: str) -> None:
    async def leads() -> AsyncIterator[dict[str, Any]]:
        for i in range(10):
            await asyncio.sleep(0)
            yield {"destination": phone(i), "assistant_id": agent_id}

    results = await collect(client.calls.create_many(leads()))
    assert sorted(r.index for r in results) == list(range(10))
    assert {r.status for r in results} == {"launched"}


async def test_rejects_a_single_request(client: AsyncFlireo) -> None:
    one: Any = {"destination": phone(1)}
    with pytest.raises(TypeError, match="iterable of requests"):
        await collect(client.calls.create_many(one))


# -- the journal -----------------------------------------------------------------------------


def journal_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.splitlines()]  # every line is complete JSON


async def test_resume_after_cancel_dials_nobody_twice(
    fake: FakeFlireo, agent_id: str, tmp_path: Path
) -> None:
    fake.inject("createOutboundCall", latency=(0.005, 0.03), drop_after_processing=0.03, status_429=0.03)
    n = 300
    journal = tmp_path / "launch.journal"
    inputs = [OutboundCallRequest(destination=phone(i), assistant_id=agent_id) for i in range(n)]
    inputs[42] = OutboundCallRequest(destination=phone(42), assistant_id="gone")  # fails with 404
    first: list[LaunchResult] = []
    enough = asyncio.Event()

    async with make_client(fake, max_retries=0) as client:

        async def consume() -> None:
            async for result in client.calls.create_many(inputs, max_in_flight=16, journal=journal):
                first.append(result)
                if len(first) == 100:
                    enough.set()

        task = asyncio.create_task(consume())
        await enough.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        lines = journal_lines(journal)
        attempted = {e["index"] for e in lines if e["event"] == "attempt"}
        outcomes = {
            e["index"]: e["event"]
            for e in lines
            if e["event"] in ("launched", "failed", "unknown", "released")
        }
        # In-flight requests were recorded as unknown on cancel, those not yet sent as released.
        assert attempted == set(outcomes)
        assert len(attempted) >= 100
        dialed_before = len(fake.dialed())

        second = await collect(client.calls.create_many(inputs, max_in_flight=16, journal=journal))

    assert len(second) == n
    assert sorted(r.index for r in second) == list(range(n))
    assert_never_dialed_twice(fake)
    final = results_by_index(second)
    for index, event in outcomes.items():
        if event in ("launched", "unknown"):
            assert final[index].resumed
            assert final[index].status == event
        else:  # failed in the first run, or never sent: tried again
            assert not final[index].resumed
    assert final[42].status == "failed"
    # The unknown agent answers 404, unless the injected 429 fault hit lead 42's last attempt
    # (max_retries=0): either way a refusal the server certainly did not act on.
    attempts_42 = [r for r in fake.requests_for("createOutboundCall") if r.body["destination"] == phone(42)]
    last_answer = attempts_42[-1]
    expected_error = RateLimitError if last_answer.fault == "status_429" else NotFoundError
    assert last_answer.status == (429 if expected_error is RateLimitError else 404)
    assert isinstance(final[42].error, expected_error)
    assert 42 in outcomes  # ... and it was in the first run too: failed leads are retried
    dialed = set(fake.dialed())
    assert all(final[i].status in ("launched", "unknown") for i in range(n) if phone(i) in dialed)
    assert len(fake.dialed()) > dialed_before


async def test_attempt_without_outcome_resumes_as_unknown(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j.jsonl"
    inputs = list(requests_for(agent_id, 12))
    first = await collect(client.calls.create_many(inputs[:10], journal=journal))
    assert {r.status for r in first} == {"launched"}
    # A crash: index 10 was being sent (attempt on disk, no outcome), and a line was cut short.
    with journal.open("ab") as f:
        identity = content_identity(encode(inputs[10]))
        f.write(json.dumps({"event": "attempt", "id": identity, "index": 10, "run": 1}).encode() + b"\n")
        f.write(b'{"event":"attempt","index":11,"id')

    second = await collect(client.calls.create_many(inputs, journal=journal))

    final = results_by_index(second)
    assert [final[i].resumed for i in range(10)] == [True] * 10
    assert {final[i].call_id for i in range(10)} == {r.call_id for r in first}
    assert final[10].status == "unknown"
    assert final[10].resumed
    assert isinstance(final[10].error, UnknownOutcomeError)
    assert final[11].status == "launched"
    assert not final[11].resumed
    assert phone(10) not in fake.dialed()  # never resent
    assert_never_dialed_twice(fake)
    events = [(e["event"], e.get("index")) for e in journal_lines(journal)]  # the cut line is gone
    assert ("unknown", 10) in events

    third = await collect(client.calls.create_many(inputs, journal=journal))
    assert all(r.resumed for r in third)
    assert len(third) == 12


async def test_journal_is_locked_while_in_use(client: AsyncFlireo, agent_id: str, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    first = client.calls.create_many(requests_for(agent_id, 50), journal=journal, max_in_flight=2)
    async with contextlib.aclosing(first):
        await first.__anext__()
        with pytest.raises(LaunchStoreError, match="in use"):
            await collect(client.calls.create_many(requests_for(agent_id, 5), journal=journal))
    # Closed early: the lock is released and the journal reads back.
    assert len(await collect(client.calls.create_many(requests_for(agent_id, 50), journal=journal))) == 50


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from flireo_async import AsyncFlireo
    from flireo_async.models import OutboundCallRequest

    async def main(url, key, agent_id, journal, n):
        async with AsyncFlireo(api_key=key, base_url=url, rate_limit=None) as client:
            leads = (OutboundCallRequest(destination=f"+3161{i:07d}", assistant_id=agent_id) for i in range(n))
            async for _ in client.calls.create_many(leads, max_in_flight=8, journal=journal):
                pass

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    """
)


async def test_resume_after_kill_9(
    fake: FakeFlireo, client: AsyncFlireo, agent_id: str, tmp_path: Path
) -> None:
    fake.inject("createOutboundCall", latency=(0.01, 0.03))
    n = 200
    journal = tmp_path / "j.jsonl"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, fake.url, fake.api_key, agent_id, str(journal), str(n)
    )
    try:
        for _ in range(400):
            await asyncio.sleep(0.02)
            if journal.exists() and journal.read_bytes().count(b'"launched"') >= 40:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    assert len(fake.dialed()) < n

    results = await collect(client.calls.create_many(requests_for(agent_id, n), journal=journal))

    assert len(results) == n
    assert sorted(r.index for r in results) == list(range(n))
    assert_never_dialed_twice(fake)
    assert sum(r.resumed for r in results) >= 40
    dialed = set(fake.dialed())
    assert all(r.status in ("launched", "unknown") for r in results if r.destination in dialed)
    # Whatever the child left half-done is unknown; nothing else is.
    assert all(r.resumed for r in results if r.status == "unknown")


# -- encoding once and the group commit ------------------------------------------------------


async def test_a_launch_encodes_its_request_once_and_sends_those_bytes(
    fake: FakeFlireo, agent_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flireo_async._resource as resource_module
    import flireo_async._transport as transport_module
    import flireo_async.bulk._launcher as launcher_module

    counts: collections.Counter[str] = collections.Counter()

    def counting(name: str, module: Any, attr: str) -> None:
        real = getattr(module, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, attr, wrapper)

    counting("launcher encode", launcher_module, "encode")
    counting("launcher decode", launcher_module, "decode")
    counting("launcher dumps", launcher_module, "encode_body")
    counting("resource encode", resource_module, "encode")
    counting("resource decode", resource_module, "decode")
    counting("transport encode", transport_module, "encode")
    sent: list[bytes] = []
    real_send = transport_module.Transport._send

    async def recording(
        self: Any, session: Any, op: Any, url: Any, headers: Any, data: Any, *rest: Any
    ) -> Any:
        if op.method == "POST":
            sent.append(data)
        return await real_send(self, session, op, url, headers, data, *rest)

    monkeypatch.setattr(transport_module.Transport, "_send", recording)
    n = 6
    inputs: list[Any] = [
        OutboundCallRequest(destination=phone(i), assistant_id=agent_id, first_message="Hallo Zoë")
        for i in range(3)
    ] + [{"destination": f" {phone(i)[:4]} {phone(i)[4:]} ", "assistant_id": agent_id} for i in range(3, n)]
    async with make_client(fake) as client:
        results = await collect(client.calls.create_many(inputs, max_in_flight=4))
    assert [r.status for r in results] == ["launched"] * n
    # Models are checked by one round-trip (encode, decode) and encoded once for the wire;
    # dicts are decoded once and encoded once. Nothing is encoded or decoded again to send.
    assert counts == {"launcher encode": 3 * 2 + 3, "launcher decode": n, "launcher dumps": n}
    assert len(sent) == n
    bodies = sorted(json.loads(body)["destination"] for body in sent)
    assert bodies == sorted(phone(i) for i in range(n))  # the normalised destination is sent
    assert sum("Zoë".encode() in body for body in sent) == 3  # UTF-8, as encoded in _prepare


async def test_journal_group_commit_one_fsync_per_batch_off_the_loop_durable_before_return(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from flireo_async.bulk import FileLaunchStore
    from flireo_async.bulk._store import Lead

    path = tmp_path / "launch.journal"
    loop_thread = threading.get_ident()
    syncs: list[tuple[int, int]] = []  # (thread, bytes on disk when synced)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        syncs.append((threading.get_ident(), path.stat().st_size))

    monkeypatch.setattr(os, "fsync", fsync)
    store = FileLaunchStore(path)
    await store.open()
    syncs.clear()
    leads = [Lead(f"id-{i}", i, destination=phone(i)) for i in range(40)]
    for lead in leads:
        await store.claim(lead)

    async def attempt(lead: Lead) -> None:
        await store.mark_sending(lead)
        # Returned: the attempt line is on disk, and a sync covered it.
        data = path.read_bytes()
        end = data.index(b"\n", data.index(f'"id":"{lead.identity}"'.encode())) + 1
        assert any(size >= end for _, size in syncs)

    await asyncio.gather(*(attempt(lead) for lead in leads))
    await store.close()
    assert 1 <= len(syncs) < len(leads)  # batched: fewer syncs than lines
    assert all(thread != loop_thread for thread, _ in syncs)  # never on the event loop's thread
    assert [line["event"] for line in journal_lines(path)].count("attempt") == len(leads)
