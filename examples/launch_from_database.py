"""Launch a campaign's outbound calls from a SQLite query, with a journal.

Usage::

    FLIREO_API_KEY=... python examples/launch_from_database.py leads.db spring-2026 AGENT_ID

The ``leads`` table (created if missing) holds one row per person to call. Every lead of the
campaign that has not opted out and was not called yet is launched; its outcome, call id and
error are written back to its row. The journal (``leads.db.<campaign>.journal``) records each
attempt before it is sent, so after a crash, Ctrl-C or a deploy the same command carries on:
leads that were launched, or may have been (``unknown``), are never dialed again, and leads
that certainly failed are tried again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from flireo_async import AsyncFlireo
from flireo_async.bulk import describe_error
from flireo_async.models import OutboundCallRequest

SCHEMA = """
CREATE TABLE IF NOT EXISTS leads (
    id        INTEGER PRIMARY KEY,
    campaign  TEXT NOT NULL,
    name      TEXT NOT NULL,
    phone     TEXT NOT NULL,
    opted_out INTEGER NOT NULL DEFAULT 0,
    outcome   TEXT,  -- launched, failed, unknown or duplicate, once launched
    call_id   TEXT,
    error     TEXT
)
"""

# Failed leads are certainly not dialed, so they are picked up again; unknown ones are not.
PENDING = """
SELECT id, name, phone FROM leads
WHERE campaign = ? AND opted_out = 0 AND (outcome IS NULL OR outcome = 'failed')
ORDER BY id
"""


async def launch_campaign(
    client: AsyncFlireo,
    db_path: str | Path,
    campaign: str,
    agent_id: str,
    *,
    journal: str | Path | None = None,
) -> Counter[str]:
    """Launch every pending lead of ``campaign``; returns how many ended in each outcome."""
    journal = journal if journal is not None else f"{db_path}.{campaign}.journal"
    db = sqlite3.connect(db_path)
    try:
        db.execute(SCHEMA)
        rows = db.execute(PENDING, (campaign,)).fetchall()
        requests = [
            OutboundCallRequest(
                destination=phone, assistant_id=agent_id, context=f"The customer's name is {name}."
            )
            for _, name, phone in rows
        ]
        # A lead is its database id: an edited phone number is still the same lead, and the
        # journal knows it was called. key() sees only the request, so map it back to its row.
        lead_ids = {id(request): lead_id for request, (lead_id, _, _) in zip(requests, rows, strict=True)}
        outcomes: Counter[str] = Counter()
        results = client.calls.create_many(requests, journal=journal, key=lambda r: f"lead-{lead_ids[id(r)]}")
        async for result in results:
            lead_id = rows[result.index][0]
            error = describe_error(result.error) if result.error is not None else None
            db.execute(
                "UPDATE leads SET outcome = ?, call_id = ?, error = ? WHERE id = ?",
                (result.status, result.call_id, error, lead_id),
            )
            db.commit()  # per lead: a crash loses nothing the journal does not also know
            outcomes[result.status] += 1
        return outcomes
    finally:
        db.close()


async def main(db_path: str, campaign: str, agent_id: str) -> int:
    async with AsyncFlireo() as client:  # FLIREO_API_KEY, FLIREO_BASE_URL
        outcomes = await launch_campaign(client, db_path, campaign, agent_id)
    print(", ".join(f"{count} {status}" for status, count in sorted(outcomes.items())) or "nothing to launch")
    return 0 if set(outcomes) <= {"launched", "duplicate"} else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
