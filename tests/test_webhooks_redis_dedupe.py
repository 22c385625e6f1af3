"""RedisDedupe against a real redis-server: claims, replays, failures, leases, outages, keys."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from flireo_async.webhooks import (
    Dedupe,
    DedupeUnavailableError,
    DeliveryCache,
    RedisDedupe,
    Reply,
    ToolInvocation,
    WebhookRouter,
)
from flireo_async.webhooks._dedupe import delivery_key
from flireo_async.webhooks._redis_dedupe import _decode, _encode

from . import test_webhooks_router
from .conftest import free_port
from .test_webhooks_router import Start, delivery, fast_router, post, results
from .test_webhooks_verify import SECRET, envelope, tool_calls

start = test_webhooks_router.start  # the fixture that serves routers on test servers
KEY = delivery_key("1767225600", b'{"message":{}}')
LATER = time.time() + 600


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[Callable[..., RedisDedupe]]:
    """Makes RedisDedupe objects on the test's Redis, each standing for one replica."""
    made: list[RedisDedupe] = []

    def make(**kwargs: Any) -> RedisDedupe:
        dedupe = RedisDedupe(redis_url, **kwargs)
        made.append(dedupe)
        return dedupe

    yield make
    for dedupe in made:
        await dedupe.aclose()


async def stored(redis_url: str) -> dict[bytes, bytes]:
    client = aioredis.from_url(redis_url)
    try:
        found: dict[bytes, bytes] = {}
        for key in await client.keys("*"):
            value = await client.get(key)
            assert isinstance(key, bytes)
            assert isinstance(value, bytes)
            found[key] = value
        return found
    finally:
        await client.aclose()


def spy_on_polls(dedupe: RedisDedupe) -> asyncio.Event:
    """An event set once ``dedupe`` has found a delivery claimed by someone else."""
    seen = asyncio.Event()
    script = dedupe._claim_script

    async def claim(**kwargs: Any) -> Any:
        value = await script(**kwargs)
        if value is not None and value.startswith(b"P"):
            seen.set()
        return value

    dedupe._claim_script = claim
    return seen


def test_replies_survive_the_encoding() -> None:
    for reply in (Reply(204), Reply(200, b""), Reply(200, b'{"a":":-"}'), Reply(503, b"-")):
        assert _decode(_encode(reply)) == reply


def test_both_stores_are_dedupes(redis_url: str) -> None:
    assert isinstance(DeliveryCache(max_entries=1), Dedupe)
    assert isinstance(RedisDedupe(redis_url), Dedupe)
    with pytest.raises(TypeError, match="dedupe must provide claim"):
        WebhookRouter(SECRET, dedupe=object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lease": 0}, "lease"),
        ({"max_wait": -1}, "max_wait"),
        ({"on_unavailable": "ignore"}, "on_unavailable"),
        ({"prefix": ""}, "prefix"),
    ],
)
def test_bad_options_name_the_field(redis_url: str, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RedisDedupe(redis_url, **kwargs)


def test_repr_hides_the_password() -> None:
    dedupe = RedisDedupe("redis://:hunter2-secret@127.0.0.1:1/0")
    assert "hunter2-secret" not in repr(dedupe)


async def test_one_replica_claims_and_the_other_replays(replicas: Callable[..., RedisDedupe]) -> None:
    a, b = replicas(), replicas()
    assert await a.claim(KEY, expires_at=LATER, wait=5) is None
    waiting = asyncio.create_task(b.claim(KEY, expires_at=LATER, wait=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the copy waits while the first is being handled
    await a.release(KEY, Reply(200, b'{"ok":1}'), remember=True)
    assert await waiting == Reply(200, b'{"ok":1}')
    # Later copies, on either replica, replay at once.
    assert await b.claim(KEY, expires_at=LATER, wait=0) == Reply(200, b'{"ok":1}')
    assert await a.claim(KEY, expires_at=LATER, wait=0) == Reply(200, b'{"ok":1}')


async def test_only_one_of_many_concurrent_claims_wins(replicas: Callable[..., RedisDedupe]) -> None:
    stores = [replicas() for _ in range(6)]
    claims = [asyncio.create_task(s.claim(KEY, expires_at=LATER, wait=30)) for s in stores]
    # Nobody can get a reply before the winner releases: the first claim done is the winner.
    done, _ = await asyncio.wait(claims, return_when=asyncio.FIRST_COMPLETED)
    (winner,) = done
    assert winner.result() is None
    await stores[claims.index(winner)].release(KEY, Reply(204), remember=True)
    answers = await asyncio.gather(*claims)
    assert answers.count(None) == 1
    assert [a for a in answers if a is not None] == [Reply(204)] * 5


async def test_reply_lives_until_the_timestamp_leaves_the_window(
    replicas: Callable[..., RedisDedupe], redis_url: str
) -> None:
    a = replicas()
    await a.claim(KEY, expires_at=time.time() + 120, wait=1)
    await a.release(KEY, Reply(204), remember=True)
    client = aioredis.from_url(redis_url)
    try:
        (name,) = await client.keys("*")
        assert 110_000 < await client.pttl(name) <= 120_000
    finally:
        await client.aclose()


async def test_failed_delivery_is_forgotten_but_waiting_copies_get_its_reply(
    replicas: Callable[..., RedisDedupe],
) -> None:
    a, b, c = replicas(), replicas(), replicas()
    assert await a.claim(KEY, expires_at=LATER, wait=5) is None
    saw_pending = spy_on_polls(b)
    waiting = asyncio.create_task(b.claim(KEY, expires_at=LATER, wait=30))
    await saw_pending.wait()  # b is now waiting on a's claim
    await a.release(KEY, Reply(500, b"{}"), remember=False)
    assert await waiting == Reply(500, b"{}")
    # A redelivery after the failure is handled again.
    assert await c.claim(KEY, expires_at=LATER, wait=5) is None


async def test_a_crashed_replicas_claim_runs_out(
    replicas: Callable[..., RedisDedupe], redis_url: str
) -> None:
    crashed = RedisDedupe(redis_url, lease=0.3)
    assert await crashed.claim(KEY, expires_at=LATER, wait=5) is None
    await crashed.aclose()  # stops renewing, never releases: as if the process died
    survivor = replicas()
    assert await survivor.claim(KEY, expires_at=LATER, wait=5) is None
    await survivor.release(KEY, Reply(204), remember=True)
    assert await replicas().claim(KEY, expires_at=LATER, wait=0) == Reply(204)


async def test_a_running_handlers_claim_is_renewed(replicas: Callable[..., RedisDedupe]) -> None:
    a = replicas(lease=1.0)  # renewed every third of it: a busy machine may delay a renewal
    b = replicas()
    assert await a.claim(KEY, expires_at=LATER, wait=5) is None
    await asyncio.sleep(3.5)  # more than three leases
    # Still claimed: a copy that cannot wait gives up instead of handling it a second time.
    assert await b.claim(KEY, expires_at=LATER, wait=0.05) == Reply(503)
    await a.release(KEY, Reply(204), remember=True)
    assert await b.claim(KEY, expires_at=LATER, wait=0) == Reply(204)


async def test_copies_in_the_claiming_process_wait_without_polling(
    replicas: Callable[..., RedisDedupe],
) -> None:
    a = replicas()
    assert await a.claim(KEY, expires_at=LATER, wait=5) is None
    copy = asyncio.create_task(a.claim(KEY, expires_at=LATER, wait=5))
    assert await a.claim(KEY, expires_at=LATER, wait=0.01) == Reply(503)
    await a.release(KEY, Reply(200, b"[]"), remember=True)
    assert await copy == Reply(200, b"[]")


async def test_unreachable_redis_rejects_the_claim() -> None:
    dedupe = RedisDedupe(f"redis://:pw-not-shown@127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(DedupeUnavailableError, match="unreachable") as caught:
            await dedupe.claim(KEY, expires_at=LATER, wait=1)
        assert "pw-not-shown" not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
    finally:
        await dedupe.aclose()


# --- through the router ---------------------------------------------------------------------


def booking_router(dedupe: Dedupe, runs: list[str], **kwargs: Any) -> WebhookRouter:
    # Deadlines far from the handler's 0.1 s: on a busy machine a copy must not give up waiting.
    router = fast_router(dedupe=dedupe, **{"tool_calls_deadline": 10.0, **kwargs})

    @router.tool("book")
    async def book(tool: ToolInvocation) -> dict[str, Any]:
        runs.append(tool.id)
        await asyncio.sleep(0.1)
        return {"booking": len(runs)}

    return router


async def test_two_routers_share_one_run(start: Start, replicas: Callable[..., RedisDedupe]) -> None:
    runs: list[str] = []
    first = await start(booking_router(replicas(), runs))
    second = await start(booking_router(replicas(), runs))
    body, headers = delivery(tool_calls(("t1", "book", {})))
    answers = await asyncio.gather(
        post(first, body, headers), post(second, body, headers), post(second, body, headers)
    )
    assert [results(a) for a in answers] == [[("t1", {"booking": 1})]] * 3
    assert runs == ["t1"]
    assert results(await post(first, body, headers)) == [("t1", {"booking": 1})]
    assert runs == ["t1"]


async def test_keys_and_values_hold_no_secret_body_or_signature(
    start: Start, replicas: Callable[..., RedisDedupe], redis_url: str
) -> None:
    runs: list[str] = []
    client = await start(booking_router(replicas(), runs))
    body, headers = delivery(tool_calls(("t-very-private-42", "book", {"card": "4111-1111"})))
    assert (await post(client, body, headers)).status == 200
    contents = await stored(redis_url)
    assert len(contents) == 1
    signature = headers["X-Webhook-Signature"].removeprefix("sha256=")
    for key, value in contents.items():
        assert key.startswith(b"flireo:webhook:{")
        for text in (SECRET, signature, "4111-1111", headers["X-Webhook-Timestamp"]):
            assert text.encode() not in key
        for text in (SECRET, signature, "4111-1111"):
            assert text.encode() not in value
        assert json.loads(value.partition(b":")[2]) == {
            "results": [{"toolCallId": "t-very-private-42", "result": {"booking": 1}}]
        }


async def test_router_answers_503_when_redis_is_down(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    runs: list[str] = []
    dedupe = RedisDedupe(f"redis://:pw-not-shown@127.0.0.1:{free_port()}/0")
    client = await start(booking_router(dedupe, runs))
    body, headers = delivery(tool_calls(("t1", "book", {})))
    with caplog.at_level(logging.INFO, logger="flireo_async"):
        answer = await post(client, body, headers)
    assert (answer.status, answer.body) == (503, {"error": "dedupe_unavailable"})
    assert runs == []
    assert "pw-not-shown" not in caplog.text
    assert SECRET not in caplog.text


async def test_router_can_handle_without_dedupe_when_asked(start: Start) -> None:
    runs: list[str] = []
    dedupe = RedisDedupe(f"redis://127.0.0.1:{free_port()}/0", on_unavailable="handle")
    client = await start(booking_router(dedupe, runs))
    body, headers = delivery(tool_calls(("t1", "book", {})))
    assert results(await post(client, body, headers)) == [("t1", {"booking": 1})]
    assert results(await post(client, body, headers)) == [("t1", {"booking": 2})]  # no memory


async def test_a_failing_notification_runs_again_on_redelivery(
    start: Start, replicas: Callable[..., RedisDedupe]
) -> None:
    attempts: list[str] = []
    routers = [fast_router(dedupe=replicas()) for _ in range(2)]
    for router in routers:

        @router.status_update
        async def update(event: Any) -> None:
            attempts.append(event.call.id)
            if len(attempts) == 1:
                raise RuntimeError("database unavailable")

    first, second = [await start(router) for router in routers]
    body, headers = delivery(envelope("status-update"))
    assert (await post(first, body, headers)).status == 500
    assert (await post(second, body, headers)).status == 204  # the redelivery ran again
    assert (await post(first, body, headers)).status == 204  # and is now remembered
    assert len(attempts) == 2
