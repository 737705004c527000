"""The holder's house tickets, as the wallet shows them (issue 13, rules T2, T5-T10): each
ticket with the pieces split from it (its family, T6), its face value, balance, uses, expiry,
subsidies and rewards, and the cash-out and bonus due — the pure view is
``shared.ticket_payouts.family_view``; this reads the ledger for it."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import ticket_till as till_db
from server.db import tickets as tickets_db
from server.services.ports import Ports
from shared.house_tickets import Ticket
from shared.ticket_campaign import TicketCampaign
from shared.ticket_payouts import FamilyView, family_view


@dataclass(frozen=True, slots=True)
class TicketCard:
    """One family of the holder's, with its programme and the numbers of its tickets."""

    campaign: TicketCampaign
    view: FamilyView
    numbers: dict[int, str]  # ticket id -> printed number, for the uses' draws

    def number_of(self, ticket_id: int) -> str:
        return self.numbers.get(ticket_id, "?")


async def ticket_cards(ports: Ports, citizen_id: int) -> list[TicketCard]:
    """Rules T2, T5-T10: the citizen's ticket families of the programmes this server runs,
    the latest issued first, as of today (campaign time)."""
    today = ports.clock().astimezone(ports.tz).date()
    async with ports.pool.acquire() as conn:
        person = await till_db.person_of(conn, citizen_id)
        if person is None:
            return []
        held = await tickets_db.tickets_of_holder(conn, person)
        families: dict[int, list[Ticket]] = {}
        for original_id in sorted({t.original_id for t in held}, reverse=True):
            families[original_id] = await tickets_db.read_family(conn, original_id)
        members = [t.id for family in families.values() for t in family]
        uses = await tickets_db.uses_of(conn, members) if members else []
    cards = []
    for family in families.values():
        campaign = ports.programmes.get(family[0].campaign_id)
        if campaign is None:
            continue  # a programme this server no longer runs
        view = family_view(campaign, family, uses, today)
        cards.append(TicketCard(campaign, view, {t.id: t.number for t in family}))
    return cards
