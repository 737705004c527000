"""Reading the audit log (rule X1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from server.db import admin as db
from server.db.admin import AuditEntry
from server.services.ports import Ports
from shared import rules


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    from_: date | None = None  # local dates, inclusive
    to: date | None = None
    limit: int = 100


async def entries(ports: Ports, q: AuditFilter) -> list[AuditEntry]:
    """Rule X1: the audit log, newest first, filtered by actor, action and local dates
    [from, to]."""
    start = rules.start_of_day(q.from_, ports.tz) if q.from_ else None
    end = rules.start_of_day(q.to + timedelta(days=1), ports.tz) if q.to else None
    async with ports.pool.acquire() as conn:
        return await db.audit_entries(
            conn, actor=q.actor, action=q.action, start=start, end=end, limit=q.limit
        )
