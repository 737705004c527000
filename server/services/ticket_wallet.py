"""The holder's house tickets, as the wallet shows them (issue 13, rules T2, T5-T10): each
ticket with the pieces split from it (its family, T6), its face value, balance, uses, expiry,
subsidies and rewards, and the cash-out and bonus due — the pure view is
``shared.ticket_payouts.family_view``; this reads the ledger for it. Only what the holder
holds counts: a piece passed to someone else (T3) is a history line, its receiver masked
(X3); the receiver sees the piece and nothing of the transferor's."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import parties
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
    receivers: dict[int, str]  # T3: a piece passed away -> its new holder, masked (X3)
    held: tuple[str, ...]  # the numbers of every ticket of the family the holder holds

    def number_of(self, ticket_id: int) -> str:
        return self.numbers.get(ticket_id, "?")

    @property
    def title(self) -> str:
        """The numbers that hold value now, else those the holder ever held here."""
        return "，".join(self.view.numbers or self.held)


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
        others = {t.holder for family in families.values() for t in family} - {person}
        masks = await parties.masked_persons(conn, others) if others else {}
    cards = []
    for family in families.values():
        campaign = ports.programmes.get(family[0].campaign_id)
        if campaign is None:
            continue  # a programme this server no longer runs
        view = family_view(campaign, family, uses, today, holder=person)
        held = [t for t in family if t.holder == person]
        shown = [*held, *view.transferred]
        numbers = {t.id: t.number for t in shown}
        receivers = {t.id: masks.get(t.holder, "") for t in view.transferred}
        title = tuple(t.number for t in held)
        cards.append(TicketCard(campaign, view, numbers, receivers, title))
    return cards
