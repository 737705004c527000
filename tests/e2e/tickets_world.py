"""House tickets over HTTP for the issuer's and operators' tests (issue 13): issuers, housing
bureaus and developers' sales offices made through the API, agreements to issue from, and
uses of tickets written through the ledger's adapter as the till writes them (the till's own
ticket route is the sales office's, tested with it)."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from ops import demo as seed
from server.app import create_app
from server.campaign_files import bundled_ticket_campaigns_dir, load_ticket_campaign
from server.db import tickets as tickets_db
from server.settings import Settings
from shared.house_tickets import Contract, apply_use, person_key, quote_use
from shared.idnumber import hash_id_number
from shared.ticket_campaign import Relation, TicketCampaign
from tests.e2e.conftest import Clock, World, new_id_number
from tests.unit.ticket_helpers import SN, SQ

WAN = 1_000_000  # 1 万元 in fen
PROGRAMMES = {SQ.id: SQ, SN.id: SN}
UNITS_HEADER = "房号,所在区,用途,建筑面积,备案价\n"


def ref(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Office:
    """A developer admitted by the housing bureau, its units in the pool, a sales-office till."""

    campaign: TicketCampaign
    merchant_id: int
    terminal_id: int
    listings: dict[str, int] = field(default_factory=dict)  # unit -> listing id


class Tickets:
    """Builds the house-ticket side of one test, through the API where it has a route.
    ``sq`` and ``sn`` are the programmes its server serves (the shipped two, or copies of
    them under fresh ids: ``isolated``)."""

    def __init__(
        self, world: World, clock: Clock, sq: TicketCampaign = SQ, sn: TicketCampaign = SN
    ) -> None:
        self.world = world
        self.clock = clock
        self.client = world.client
        self.sq = sq
        self.sn = sn

    async def issuer(self, district: str) -> dict[str, str]:
        return await self.world.staff("ticket_issuer", district=district)

    async def bureau(self, district: str | None = None) -> dict[str, str]:
        return await self.world.staff("housing_bureau", district=district)

    def person(self, id_number: str) -> str:
        """The key a ticket holds for a person (the hex of the ID hash, X3)."""
        return person_key(hash_id_number(id_number, self.world.settings.id_hash_key))

    def agreement(
        self,
        campaign: TicketCampaign,
        *,
        district: str | None = None,
        holder: str | None = None,
        household: tuple[str, ...] = (),
        face: int = 100 * WAN,
        **extra: Any,
    ) -> dict[str, Any]:
        """A valid compensation agreement of ``campaign`` for ``face`` fen (Suining: with a
        household and the ticket's area; Shangqiu: the face in its two items)."""
        number = ref("FP")
        if campaign.household_required:
            items = [{"code": "compensation", "amount_fen": face}]
            household = household or (new_id_number(),)
        else:
            items = [
                {"code": "compensation", "amount_fen": face - face // 10},
                {"code": "policy_reward", "amount_fen": face // 10},
            ]
        body: dict[str, Any] = {
            "campaign_id": campaign.id,
            "number": number,
            "filing_no": f"BA-{number}",
            "district": district or sorted(campaign.issuing_districts)[0],
            "project": {"name": "某某片区征收项目", "housing_delivered": False, "cash_paid": False},
            "implementing_unit": "区房屋征收服务中心",
            "official": "经办人甲",
            "agreement_no": f"XY-{number}",
            "agreement_date": campaign.issuance_opens.isoformat(),
            "holder_id_number": holder or new_id_number(),
            "household_id_numbers": list(household),
            "items": items,
        }
        if campaign.ticket_area_required:
            body["area_dm2"] = 12_000
        return body | extra

    async def issue(self, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        r = await self.client.post("/v1/tickets", json=body, headers=headers)
        assert r.status == 201, await r.text()
        return dict(await r.json())

    async def office(
        self,
        campaign: TicketCampaign,
        units: list[tuple[str, str, str, str]],
        *,
        district: str | None = None,
    ) -> Office:
        """A developer and its units (unit, 用途, m², 元) through the API: added and admitted by
        the city's housing bureau, its units imported and admitted; a till for its office."""
        bureau = await self.bureau()
        district = district or sorted(campaign.usable_districts)[0]
        r = await self.client.post(
            "/v1/merchants",
            json={"name": ref("开发企业"), "district": district, "kind": "developer"},
            headers=bureau,
        )
        assert r.status == 201, await r.text()
        merchant_id = (await r.json())["id"]
        r = await self.client.post(
            f"/v1/merchants/{merchant_id}/admission",
            json={"admitted": True, "reason": "五证齐全"},
            headers=bureau,
        )
        assert r.status == 200, await r.text()
        text = UNITS_HEADER + "".join(
            f"{unit},{district},{kind},{area},{price}\n" for unit, kind, area, price in units
        )
        r = await self.client.post(
            "/v1/listings/imports",
            params={"campaign_id": campaign.id, "merchant_id": str(merchant_id)},
            data=text.encode("gbk"),
            headers={**bureau, "Content-Type": "text/csv"},
        )
        assert r.status == 201, await r.text()
        assert (await r.json())["rejected"] == 0
        r = await self.client.get(
            "/v1/listings",
            params={"campaign_id": campaign.id, "merchant_id": str(merchant_id)},
            headers=bureau,
        )
        listed = {u["unit"]: u["id"] for u in (await r.json())["units"]}
        r = await self.client.post(
            "/v1/listings/status",
            json={"listing_ids": list(listed.values()), "status": "admitted", "reason": "审核通过"},
            headers=bureau,
        )
        assert r.status == 200, await r.text()
        async with self.world.pool.acquire() as conn:
            till = await seed.terminal(conn, merchant_id=merchant_id, label="售楼处 1")
        return Office(campaign, merchant_id, till.terminal_id, listed)

    async def use(
        self,
        office: Office,
        ticket_ids: list[int],
        unit: str,
        *,
        buyer: str,
        price: int,
        signed_on: date,
        amounts: list[int] | None = None,
        relation: Relation = Relation.HOLDER,
        proof: str = "",
        home_kept: bool = False,
    ) -> int:
        """A use decided by the pure core and written through the ledger's adapter, as the
        sales office's till does: its ledger id."""
        contract_no = ref("WQ")
        async with self.world.pool.acquire() as conn:
            tickets = await tickets_db.read_tickets(conn, ticket_ids)
            found = await tickets_db.listing(conn, office.merchant_id, unit)
            assert found is not None
            listing_id, listing = found
            contract = Contract(
                contract_no, signed_on, price, self.person(buyer), relation, proof, home_kept
            )
            ordered = [tickets[i] for i in ticket_ids]
            q = quote_use(office.campaign, ordered, listing, contract, self.clock(), amounts)
            _, use = apply_use(q, ordered, self.clock())
            await tickets_db.write_use(
                conn,
                use,
                terminal_id=office.terminal_id,
                listing_id=listing_id,
                idempotency_key=contract_no,
                request_hash=hashlib.sha256(contract_no.encode()).digest(),
                actor=f"cashier:{office.terminal_id}",
            )
            use_id = await tickets_db.use_ids_of_contract(conn, office.merchant_id, use.contract_no)
        assert use_id is not None
        return use_id


def programme_copies(tmp_path: Path) -> list[TicketCampaign]:
    """Shangqiu's and Suining's programmes under fresh ids, as files in ``tmp_path`` (named
    ``<id>.toml``): what is asked of them counts one test's data only."""
    copies: list[TicketCampaign] = []
    for shipped in (SQ, SN):
        fresh = f"{shipped.id[:2]}-{uuid.uuid4().hex[:10]}"
        text = (bundled_ticket_campaigns_dir() / f"{shipped.id}.toml").read_text(encoding="utf-8")
        path = tmp_path / f"{fresh}.toml"
        path.write_text(text.replace(f'id = "{shipped.id}"', f'id = "{fresh}"', 1), "utf-8")
        copies.append(load_ticket_campaign(path))
    return copies


def serving(settings: Settings, copies: list[TicketCampaign], tmp_path: Path) -> Settings:
    """``settings`` serving ``copies`` (from ``programme_copies``) as its programmes."""
    files = tuple(tmp_path / f"{c.id}.toml" for c in copies)
    return replace(settings, ticket_campaign_files=files)


async def isolated(
    aiohttp_client: Any, settings: Settings, clock: Clock, pool: asyncpg.Pool, tmp_path: Path
) -> Tickets:
    """A server whose two programmes are fresh copies of Shangqiu's and Suining's: what is
    asked of those programmes (settlements at a point, reports) counts this test's data and
    nothing else in the shared ledger."""
    copies = programme_copies(tmp_path)
    app = create_app(serving(settings, copies, tmp_path), clock=clock)
    world = World(await aiohttp_client(app), settings, pool)
    return Tickets(world, clock, *copies)


def units_csv(rows: list[tuple[str, str, str, str, str]]) -> bytes:
    """The developer's file: (unit, district, 用途, m², 元) rows, in GBK."""
    out = io.StringIO()
    out.write(UNITS_HEADER)
    for row in rows:
        out.write(",".join(row) + "\n")
    return out.getvalue().encode("gbk")


async def ticket_counts(world: World) -> dict[str, int]:
    """What an issuer's act writes: tickets, their events, uses, payouts, settlements."""
    tables = (
        "tickets",
        "ticket_events",
        "ticket_household",
        "ticket_uses",
        "ticket_payouts",
        "ticket_settlements",
        "ticket_settlement_conditions",
        "listings",
        "merchants",
    )
    async with world.pool.acquire() as conn:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}  # noqa: S608
