"""What the city's and districts' dashboard reads (rules S1, S3, X2): the month's ranking,
claims and redemptions per day, settlement batches. Each role sees only its own: a district
operator their district (the ranking's row of it, its days, its batches); the city and the
auditor every district. Nothing here writes: it reads the replica when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from server.auth import Principal, Role
from server.db import Conn
from server.db import pages as db
from server.db.pages import BatchRow, DailyActivity
from server.services import settlement as settlements
from server.services.ports import Ports
from server.services.scope import district_codes
from shared import settlement as rules
from shared.errors import Forbidden, InvalidRequest
from shared.rules import month_bounds

READERS = (Role.CITY_OPERATOR, Role.DISTRICT_OPERATOR, Role.AUDITOR)


@dataclass(frozen=True, slots=True)
class Dashboard:
    month: date
    campaign_id: str
    district: str | None  # None: every district of the campaign
    names: dict[str, str]  # district code -> its Chinese name
    ranked: list[rules.Ranked]
    activity: list[DailyActivity]
    batches: list[BatchRow]


def default_campaign(ports: Ports) -> str:
    """The campaign running today, else the one that ended last (the demo's, in the demo)."""
    today = ports.clock().astimezone(ports.tz).date()
    running = [c for c in ports.campaigns.values() if c.claim_opens <= today <= c.hard_end]
    chosen = running or sorted(ports.campaigns.values(), key=lambda c: c.hard_end)[-1:]
    return chosen[0].id


async def dashboard(
    ports: Ports, me: Principal, month: date, campaign_id: str | None, district: str | None
) -> Dashboard:
    if me.role not in READERS:
        raise Forbidden(f"a {me.role} may not see the dashboard")
    campaign_id = campaign_id or default_campaign(ports)
    campaign = ports.campaigns.get(campaign_id)
    if campaign is None:
        raise InvalidRequest("unknown campaign", field="campaign")
    if district is not None:
        district = district_codes(ports.campaigns).get(district)
        if district is None or district not in campaign.issuing_districts:
            raise InvalidRequest("not a district of this campaign", field="district")
    if me.role is Role.DISTRICT_OPERATOR:
        district = me.district  # rule X2: their own district, whatever the URL says
    found = await settlements.ranking(ports, month.strftime("%Y-%m"), campaign_id)
    ranked = [r for r in found.ranked if district is None or r.figures.district == district]
    districts = [district] if district else sorted(campaign.issuing_districts)
    start, end = month_bounds(month, ports.tz)

    async def read(conn: Conn) -> tuple[list[DailyActivity], list[BatchRow]]:
        activity = await db.daily_activity(
            conn,
            campaign_ids=[campaign_id],
            districts=districts,
            start=start,
            end=end,
            tz=str(getattr(ports.tz, "key", "Asia/Shanghai")),
        )
        return activity, await db.batches(conn, district)

    activity, batches = await ports.report(read)  # issue 14: the replica, when there is one
    names = {code: d.name for code, d in campaign.districts.items()}
    return Dashboard(month, campaign_id, district, names, ranked, activity, batches)
