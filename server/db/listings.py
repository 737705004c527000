"""SQL of the listing pool (rule T4): a developer's units, imported from its CSV, admitted or
removed by the housing bureau, leaving on notice. The till reads a unit through
``server/db/tickets.py``'s ``listing``; rows come back here as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from server.db import Conn
from shared.listings import ListingRow
from shared.registry import Reason, Reject


@dataclass(frozen=True, slots=True)
class PoolUnit:
    """A unit of the pool as the operators list it (rule T4)."""

    id: int
    campaign_id: str
    merchant_id: int
    merchant_name: str
    unit: str
    district: str
    property_type: str
    area_dm2: int
    listed_price_fen: int
    status: str  # pending | admitted | removed
    exit_notice_on: date | None
    exits_on: date | None
    used: bool  # a live ticket use bought it


@dataclass(frozen=True, slots=True)
class ImportSummary:
    inserted: int
    updated: int
    unchanged: int
    rejects: list[Reject]


_UNIT = """
SELECT l.id, l.campaign_id, l.merchant_id, m.name AS merchant_name, l.unit, l.district,
       l.property_type, l.area_dm2, l.listed_price_fen, l.status, l.exit_notice_on, l.exits_on,
       EXISTS (SELECT 1 FROM ticket_uses u WHERE u.listing_id = l.id
                AND u.cancelled_at IS NULL) AS used
  FROM listings l JOIN merchants m ON m.id = l.merchant_id
"""


async def import_rows(
    conn: Conn, campaign_id: str, merchant_id: int, rows: Sequence[ListingRow]
) -> ImportSummary:
    """Rule T4: the developer's units, in the caller's transaction: a new unit is pending the
    housing bureau's admission; a changed one (area, type, price, district) is pending again;
    a unit a live ticket use bought, or one in another programme, is not changed (a use's
    area and type are its unit's)."""
    existing = {
        r["unit"]: r
        for r in await conn.fetch(
            _UNIT + " WHERE l.merchant_id = $1 AND l.unit = ANY($2) FOR UPDATE OF l",
            merchant_id,
            [row.unit for row in rows],
        )
    }
    inserted = updated = unchanged = 0
    rejects: list[Reject] = []
    for row in rows:
        found = existing.get(row.unit)
        values = (row.district, row.property_type.value, row.area_dm2, row.listed_price_fen)
        if found is None:
            await conn.execute(
                "INSERT INTO listings (campaign_id, merchant_id, unit, district, property_type, "
                "area_dm2, listed_price_fen) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                campaign_id,
                merchant_id,
                row.unit,
                *values,
            )
            inserted += 1
            continue
        same = (
            found["district"],
            found["property_type"],
            found["area_dm2"],
            found["listed_price_fen"],
        ) == values
        if found["campaign_id"] != campaign_id:
            rejects.append(
                Reject.one(
                    row.line,
                    row.unit,
                    f"the unit is listed in {found['campaign_id']}",
                    f"该房号已在 {found['campaign_id']} 的房源库中",
                )
            )
        elif same:
            unchanged += 1
        elif found["used"]:
            rejects.append(
                Reject.one(
                    row.line,
                    row.unit,
                    "a ticket use bought the unit: it is not changed",
                    "该房源已用房票购买，不能修改",
                )
            )
        else:
            await conn.execute(
                "UPDATE listings SET district = $2, property_type = $3, area_dm2 = $4, "
                "listed_price_fen = $5, status = 'pending' WHERE id = $1",
                found["id"],
                *values,
            )
            updated += 1
    return ImportSummary(inserted, updated, unchanged, rejects)


async def units(
    conn: Conn,
    *,
    campaign_id: str | None,
    merchant_id: int | None,
    district: str | None,
    status: str | None,
    limit: int,
) -> list[PoolUnit]:
    rows = await conn.fetch(
        _UNIT
        + """ WHERE ($1::text IS NULL OR l.campaign_id = $1)
                AND ($2::bigint IS NULL OR l.merchant_id = $2)
                AND ($3::text IS NULL OR l.district = $3)
                AND ($4::text IS NULL OR l.status = $4)
              ORDER BY l.id LIMIT $5""",
        campaign_id,
        merchant_id,
        district,
        status,
        limit,
    )
    return [PoolUnit(**dict(r)) for r in rows]


async def units_for_update(conn: Conn, ids: Sequence[int]) -> list[PoolUnit]:
    rows = await conn.fetch(
        _UNIT + " WHERE l.id = ANY($1) ORDER BY l.id FOR UPDATE OF l", list(ids)
    )
    return [PoolUnit(**dict(r)) for r in rows]


async def set_status(conn: Conn, ids: Sequence[int], status: str) -> None:
    await conn.execute("UPDATE listings SET status = $2 WHERE id = ANY($1)", list(ids), status)


async def give_notice(
    conn: Conn, campaign_id: str, merchant_id: int, notice_on: date, exits_on: date
) -> int:
    """Rule T4: the developer's notice, on its units of the programme not removed (a notice
    given before stays: the first one counts). The number of units it covers."""
    done = await conn.execute(
        "UPDATE listings SET exit_notice_on = $3, exits_on = $4 WHERE campaign_id = $1 "
        "AND merchant_id = $2 AND status <> 'removed' AND exit_notice_on IS NULL",
        campaign_id,
        merchant_id,
        notice_on,
        exits_on,
    )
    return int(done.split()[-1])


__all__ = ["ImportSummary", "PoolUnit", "Reason", "import_rows", "units"]
