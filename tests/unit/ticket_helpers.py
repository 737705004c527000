"""Shared data for the house-ticket rule tests (T1-T14): the two programmes as shipped, and
small builders of tickets, listings and contracts."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from server.campaign_files import load_bundled_ticket_campaign
from shared.house_tickets import (
    Contract,
    FaceItem,
    IssueRequest,
    Listing,
    Project,
    Ticket,
    issue_ticket,
)
from shared.ticket_campaign import PropertyType, Relation, TicketCampaign

SQ = load_bundled_ticket_campaign("shangqiu-2025")
SN = load_bundled_ticket_campaign("suining-chuanshan-2025")
TZ = ZoneInfo("Asia/Shanghai")
WAN = 1_000_000  # 1 万元 in fen
HOLDER = "holder-1"
SPOUSE = "spouse-1"
MEMBER = "member-1"


def at(day: date, hour: int = 10) -> datetime:
    """An instant on ``day``, Beijing time."""
    return datetime.combine(day, time(hour), tzinfo=TZ)


def request(
    campaign: TicketCampaign,
    *,
    face: int = 100 * WAN,
    holder: str = HOLDER,
    number: str = "NO-1",
    district: str | None = None,
    validity_months: int | None = None,
    project: Project | None = None,
) -> IssueRequest:
    """A valid issue request of ``campaign`` for ``face`` fen (Suining: with a household and
    an area; Shangqiu: the face split in its two items)."""
    suining = campaign.household_required
    code = next(iter(campaign.face_items))
    items: tuple[FaceItem, ...] = (FaceItem(code, face),)
    if not suining and face > 1:
        items = (FaceItem("compensation", face - face // 10), FaceItem("policy_reward", face // 10))
    return IssueRequest(
        number=number,
        filing_no=f"BA-{number}",
        district=district or sorted(campaign.issuing_districts)[0],
        project=project or Project("某某片区征收项目", housing_delivered=False, cash_paid=False),
        implementing_unit="征收实施单位",
        official="经办人甲",
        agreement_no=f"XY-{number}",
        agreement_date=campaign.issuance_opens,
        holder=holder,
        household=frozenset({holder, MEMBER}) if suining else frozenset(),
        area_dm2=12_000 if suining else None,
        items=items,
        validity_months=validity_months,
    )


def issue(
    campaign: TicketCampaign,
    issued_on: date,
    *,
    face: int = 100 * WAN,
    ticket_id: int = 1,
    holder: str = HOLDER,
    validity_months: int | None = None,
) -> Ticket:
    """A ticket issued on ``issued_on``."""
    req = request(
        campaign,
        face=face,
        holder=holder,
        number=f"NO-{ticket_id}",
        validity_months=validity_months,
    )
    return issue_ticket(campaign, req, ticket_id=ticket_id, issued_on=issued_on)


def listing(
    campaign: TicketCampaign,
    *,
    price: int = 200 * WAN,
    area_dm2: int = 10_000,
    kind: PropertyType = PropertyType.RESIDENTIAL,
    seller: str = "dev-1",
    unit: str = "1-101",
) -> Listing:
    """A unit of the pool in the programme's first district."""
    district = sorted(campaign.usable_districts)[0]
    return Listing(seller, unit, district, kind, area_dm2, price, in_pool=True)


def contract(
    signed_on: date,
    *,
    price: int = 200 * WAN,
    no: str = "WQ-1",
    buyer: str = HOLDER,
    relation: Relation = Relation.HOLDER,
    proof: str = "",
    home_kept: bool = False,
) -> Contract:
    """A purchase contract signed on ``signed_on``."""
    return Contract(no, signed_on, price, buyer, relation, proof, home_kept)
