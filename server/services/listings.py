"""The listing pool (rule T4): a developer's units, imported from its CSV (UTF-8 or GBK, as
the registry), admitted or removed by the housing bureau, and leaving the pool on the
developer's notice (Suining: 3 months). A developer is a merchant of kind ``developer``
(admitted and suspended like a shop, X1; its sales office gets terminals as a shop does,
``server/services/merchants.py``). Every change is audited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from server.auth import Principal, Role
from server.db import admin as audit_db
from server.db import listings as db
from server.db.listings import PoolUnit
from server.services.merchants import DEVELOPER
from server.services.ports import Ports
from server.services.scope import all_district_codes, district_name, require_district
from server.services.ticket_issuance import programme, today_of
from shared.errors import Forbidden, InvalidDate, InvalidRequest, NotFound
from shared.house_tickets import exit_date
from shared.listings import parse_listings_csv
from shared.registry import Reject

MAX_UNITS_PER_CHANGE = 1000
STATUSES = ("admitted", "removed", "pending")


@dataclass(frozen=True, slots=True)
class ImportUnits:
    campaign_id: str
    merchant_id: int
    data: bytes  # UTF-8 or GBK
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Imported:
    inserted: int
    updated: int
    unchanged: int
    rejects: list[Reject]
    encoding: str
    dry_run: bool


async def _developer(ports: Ports, me: Principal, merchant_id: int) -> str:
    """The developer's district, if the caller may file its units: the housing bureau (of
    its district, if it has one) or the developer's own manager."""
    async with ports.pool.acquire() as conn:
        found = await audit_db.merchant_for_update(conn, merchant_id)
    if found is None or (me.role is Role.MERCHANT_MANAGER and me.merchant_id != merchant_id):
        raise NotFound("no such developer")
    if found.kind != DEVELOPER:
        raise InvalidRequest("the merchant is not a developer", field="merchant_id")
    return found.district


async def import_units(ports: Ports, me: Principal, cmd: ImportUnits) -> Imported:
    """Rule T4: the developer's units: new or changed units wait for the housing bureau's
    admission; rejects come back with line and every reason, in English and Chinese. A
    district's housing bureau files units of its district only (X2). A dry run writes
    nothing."""
    campaign = programme(ports, cmd.campaign_id)
    await _developer(ports, me, cmd.merchant_id)
    parsed = parse_listings_csv(cmd.data, campaign=campaign, districts=all_district_codes(ports))
    rows = list(parsed.rows)
    rejects = list(parsed.rejects)
    if me.role is Role.HOUSING_BUREAU and me.district is not None:
        rejects += [
            Reject.one(
                r.line,
                r.unit,
                f"district {r.district} is not yours",
                f"{district_name(ports.programmes, r.district)}不是您所辖的区",
            )
            for r in rows
            if r.district != me.district
        ]
        rows = [r for r in rows if r.district == me.district]
    async with ports.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            summary = await db.import_rows(conn, campaign.id, cmd.merchant_id, rows)
            done = Imported(
                inserted=summary.inserted,
                updated=summary.updated,
                unchanged=summary.unchanged,
                rejects=sorted([*rejects, *summary.rejects], key=lambda r: r.line),
                encoding=parsed.encoding,
                dry_run=cmd.dry_run,
            )
            if cmd.dry_run:
                await transaction.rollback()
                return done
            await audit_db.audit(
                conn,
                actor=me.actor,
                action="listing.import",
                subject=f"merchant:{cmd.merchant_id}",
                details={
                    "campaign_id": campaign.id,
                    "file_sha256": hashlib.sha256(cmd.data).hexdigest(),
                    "inserted": done.inserted,
                    "updated": done.updated,
                    "unchanged": done.unchanged,
                    "rejected": len(done.rejects),
                },
            )
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
    return done


async def units(
    ports: Ports,
    me: Principal | None,
    *,
    campaign_id: str,
    merchant_id: int | None,
    district: str | None,
    status: str | None,
    limit: int = 1000,
) -> list[PoolUnit]:
    """Rule T4: the pool's units. Anyone sees the admitted ones (the programme publishes its
    listings, T14); the housing bureau, the issuers and the city see every status; a
    developer's manager its own units."""
    campaign = programme(ports, campaign_id)
    if district is not None:
        district = all_district_codes(ports).get(district, district)
    staff = me is not None and me.role in (
        Role.HOUSING_BUREAU,
        Role.TICKET_ISSUER,
        Role.CITY_OPERATOR,
        Role.AUDITOR,
    )
    if me is not None and me.role is Role.MERCHANT_MANAGER:
        merchant_id, staff = me.merchant_id, True
    async with ports.pool.acquire() as conn:
        return await db.units(
            conn,
            campaign_id=campaign.id,
            merchant_id=merchant_id,
            district=district,
            status=status if staff else "admitted",
            limit=limit,
        )


async def set_status(
    ports: Ports, me: Principal, listing_ids: list[int], status: str, reason: str
) -> list[PoolUnit]:
    """Rule T4: the housing bureau admits units into the pool, removes them (X1: as a
    merchant is suspended), or sends them back to pending; a unit a live ticket use bought
    stays as it is. Audited per unit."""
    if me.role is not Role.HOUSING_BUREAU:
        raise Forbidden("the housing bureau admits and removes units (rule T4)")
    if status not in STATUSES:
        raise InvalidRequest(f"status is one of {', '.join(STATUSES)}", field="status")
    ids = sorted(set(listing_ids))
    if not 0 < len(ids) <= MAX_UNITS_PER_CHANGE:
        raise InvalidRequest(f"name 1 to {MAX_UNITS_PER_CHANGE} units", field="listing_ids")
    async with ports.pool.acquire() as conn, conn.transaction():
        found = await db.units_for_update(conn, ids)
        missing = sorted(set(ids) - {u.id for u in found})
        if missing:
            raise NotFound("no such unit", listing_ids=missing)
        for unit in found:
            require_district(me, unit.district)
        await db.set_status(conn, ids, status)
        for unit in found:
            await audit_db.audit(
                conn,
                actor=me.actor,
                action=f"listing.{status}",
                subject=f"listing:{unit.id}",
                reason=reason,
                details={"merchant_id": unit.merchant_id, "unit": unit.unit, "was": unit.status},
            )
        return await db.units_for_update(conn, ids)


@dataclass(frozen=True, slots=True)
class Notice:
    merchant_id: int
    notice_on: date
    exits_on: date
    units: int


async def exit_notice(
    ports: Ports, me: Principal, campaign_id: str, merchant_id: int, notice_on: date, reason: str
) -> Notice:
    """Rule T4 (Suining 第七条): the developer's notice of leaving the pool, recorded by the
    housing bureau; its units leave at the end of ``exit_date`` (3 months on), and a unit is
    no longer sold with a ticket after it."""
    campaign = programme(ports, campaign_id)
    if me.role is not Role.HOUSING_BUREAU:
        raise Forbidden("the housing bureau records a developer's notice (rule T4)")
    district = await _developer(ports, me, merchant_id)
    require_district(me, district)
    if notice_on > today_of(ports, campaign):
        raise InvalidDate("a notice is not given in the future", field="notice_on")
    exits_on = exit_date(campaign, notice_on)
    async with ports.pool.acquire() as conn, conn.transaction():
        count = await db.give_notice(conn, campaign.id, merchant_id, notice_on, exits_on)
        await audit_db.audit(
            conn,
            actor=me.actor,
            action="listing.exit_notice",
            subject=f"merchant:{merchant_id}",
            reason=reason,
            details={"campaign_id": campaign.id, "notice_on": str(notice_on), "units": count},
        )
    return Notice(merchant_id, notice_on, exits_on, count)
