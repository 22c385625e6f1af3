"""A minimal stand-in API for benchmarks, run in its own process so it never competes with
the measured client for the interpreter.

``python bench/_server.py PORT`` serves:
- ``GET /api/v1/assistants/{id}``: one agent (the spec's example), as fast as aiohttp can;
- ``GET /api/v1/usage?limit&offset``: usage logs from a virtual table of ``--rows`` rows, with
  ``--page-delay`` seconds added per page (the export benchmark's slow backend).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

AGENT = {
    "assistant": {
        "id": "3f6d2a9e-8c41-4b7a-9e2d-5a1c7f0b6e13",
        "name": "Customer Support Agent",
        "business_name": "Acme Corp",
        "first_message": "Hallo, welkom bij Acme. Waarmee kan ik u helpen?",
        "is_active": True,
        "max_duration_seconds": 600,
        "webhook_url": "https://hooks.acme.example/flireo",
        "webhook_events": ["tool-calls", "status-update", "end-of-call-report"],
        "stt_config": {"provider": "deepgram", "model": "nova-3-general", "language": "nl"},
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "temperature": 0.7,
            "messages": [{"role": "system", "content": "Je bent een vriendelijke medewerker."}],
        },
        "tts_config": {"provider": "elevenlabs", "voice_id": "21m00Tcm4TlvDq8ikWAM"},
        "created_at": "2026-01-07T10:00:00.000Z",
        "updated_at": "2026-01-07T10:00:00.000Z",
    }
}


def usage_page(offset: int, limit: int, rows: int) -> bytes:
    end = min(offset + limit, rows)
    logs = ",".join(
        '{"id":"log-%08d","duration_sec":%d,"byok_stt":false,"byok_llm":false,"byok_tts":false,'
        '"call_type":"phone","phone_number":"+31850835037","agent_name":"Customer Support Agent",'
        '"business_name":"Acme Corp","created_at":"2026-01-07T10:%02d:%02d.000Z"}'
        % (i, 30 + i % 300, (i // 60) % 60, i % 60)
        for i in range(offset, end)
    )
    return (
        '{"logs":[%s],"pagination":{"total":%d,"limit":%d,"offset":%d},'
        '"summary":{"total_calls":%d,"total_duration_seconds":%d,"total_duration_minutes":%d}}'
        % (logs, rows, limit, offset, rows, rows * 60, rows)
    ).encode()


def make_app(rows: int, page_delay: float) -> web.Application:
    agent_body = json.dumps(AGENT).encode()

    async def agent(_: web.Request) -> web.Response:
        return web.Response(body=agent_body, content_type="application/json")

    async def usage(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
        if page_delay:
            await asyncio.sleep(page_delay)
        return web.Response(body=usage_page(offset, limit, rows), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/assistants/{id}", agent)
    app.router.add_get("/api/v1/usage", usage)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--page-delay", type=float, default=0.0)
    args = parser.parse_args()
    web.run_app(
        make_app(args.rows, args.page_delay),
        host="127.0.0.1",
        port=args.port,
        print=lambda *_: print("ready", flush=True),
        access_log=None,
    )


if __name__ == "__main__":
    main()
