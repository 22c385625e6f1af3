"""Checked by mypy, never run: the raw-response twins keep the plain methods' types.

Each ``# type: ignore[...]`` below marks a call mypy must reject. mypy runs with
``warn_unused_ignores``, so if a raw method ever accepted what its plain method rejects, the
ignore would go unused and the type check would fail.
"""

from __future__ import annotations

from typing_extensions import assert_type

from flireo_async import AsyncFlireo, RawResponse
from flireo_async.models import Agent, Call, Campaign


async def raw_methods_keep_their_signatures(client: AsyncFlireo) -> None:
    raw = client.with_raw_response

    created = await raw.campaigns.create(
        name="Spring",
        agent_id="a1",
        schedule_start_time="09:00",
        schedule_end_time="17:00",
        timezone="Europe/Amsterdam",
    )
    assert_type(created, RawResponse[Campaign])
    assert_type(created.parsed, Campaign)
    assert_type(await raw.agents.get("a1"), RawResponse[Agent])
    assert_type((await raw.calls.get("c1")).parsed, Call)

    await raw.campaigns.create(nme="Spring")  # type: ignore[call-overload]
    await client.campaigns.create(nme="Spring")  # type: ignore[call-overload]
    await raw.agents.get(42)  # type: ignore[arg-type]
    await raw.agents.get()  # type: ignore[call-arg]
