"""Who may act where (rule X2), and the districts the loaded campaigns name (rule C2)."""

from __future__ import annotations

from collections.abc import Mapping

from server.auth import Principal, Role
from server.services.ports import Ports
from shared.campaign import Campaign
from shared.errors import Forbidden
from shared.ticket_campaign import TicketCampaign

# rule X2: the staff roles held in one district (a housing bureau naming none is the city's)
_DISTRICT_SCOPED = (Role.DISTRICT_OPERATOR, Role.TICKET_ISSUER, Role.HOUSING_BUREAU)


def require_district(me: Principal, district: str) -> None:
    """Rule X2: a district operator (an issuer, a district's housing bureau) acts in their
    own district only."""
    if me.role in _DISTRICT_SCOPED and me.district is not None and me.district != district:
        raise Forbidden("this merchant is in another district", district=district)


def district_codes(campaigns: Mapping[str, Campaign | TicketCampaign]) -> dict[str, str]:
    """Codes, short names and full names of every district the campaigns name -> code."""
    names: dict[str, str] = {}
    for campaign in campaigns.values():
        for district in campaign.districts.values():
            names[district.code] = names[district.name] = district.code
            names[district.full_name] = district.code
    return names


def all_district_codes(ports: Ports) -> dict[str, str]:
    """``district_codes`` of every loaded programme: voucher campaigns and house tickets
    (issue 13: a developer, an issuer, a district operator of Shangqiu or Suining)."""
    return district_codes({**ports.campaigns, **ports.programmes})


def district_name(campaigns: Mapping[str, Campaign | TicketCampaign], code: str) -> str:
    """东昌府区 for ``dongchangfu``: the name the campaigns give the district (its code when
    none names it)."""
    for campaign in campaigns.values():
        if code in campaign.districts:
            return campaign.districts[code].name
    return code
