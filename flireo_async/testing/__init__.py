"""Testing tools: a stateful fake Flireo API server.

>>> from flireo_async import AsyncFlireo
>>> from flireo_async.testing import FakeFlireo
>>> async with FakeFlireo(speed=100, rate_limit=None) as fake:
...     async with AsyncFlireo(api_key=fake.api_key, base_url=fake.url) as client:
...         agent = await client.agents.create(name="Support")
...         await client.calls.create(destination="+31612345678", assistant_id=agent.id)
...         await fake.wait_calls_finished()

Inbound calls are rung with :meth:`FakeFlireo.simulate_inbound_call`, which drives the
``assistant-request`` and ``tool-calls`` webhooks into your receiver and returns an
:class:`InboundCall` recording what it answered.

Also a pytest plugin (fixtures ``flireo_fake`` and ``flireo_client``), a threaded runner for
synchronous code (:func:`run_in_thread`) and a process: ``python -m flireo_async.testing``.
Needs the ``testing`` extra (``jsonschema``).

Names are imported on first use, so that loading the pytest plugin (which lives in this
package) costs nothing and works without the extra until a fixture is actually used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cli import serve
    from ._defaults import DEFAULT_API_KEY
    from ._faults import FaultRule, Faults
    from ._inbound import AssistantRequestOutcome, InboundCall, ToolCallOutcome
    from ._process import FakeProcess, busiest_window
    from ._redis import RedisServer
    from ._server import FakeFlireo
    from ._spec import load_spec
    from ._state import FakeState, RecordedRequest, WebhookDelivery
    from ._thread import BackgroundFake, run_in_thread

__all__ = [
    "FakeFlireo",
    "FakeProcess",
    "load_spec",
    "busiest_window",
    "RedisServer",
    "Faults",
    "FaultRule",
    "FakeState",
    "RecordedRequest",
    "WebhookDelivery",
    "InboundCall",
    "AssistantRequestOutcome",
    "ToolCallOutcome",
    "BackgroundFake",
    "run_in_thread",
    "serve",
    "DEFAULT_API_KEY",
]

_HOMES = {
    "FakeFlireo": "._server",
    "FakeProcess": "._process",
    "load_spec": "._spec",
    "busiest_window": "._process",
    "RedisServer": "._redis",
    "DEFAULT_API_KEY": "._defaults",
    "Faults": "._faults",
    "FaultRule": "._faults",
    "FakeState": "._state",
    "RecordedRequest": "._state",
    "WebhookDelivery": "._state",
    "InboundCall": "._inbound",
    "AssistantRequestOutcome": "._inbound",
    "ToolCallOutcome": "._inbound",
    "BackgroundFake": "._thread",
    "run_in_thread": "._thread",
    "serve": "._cli",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
