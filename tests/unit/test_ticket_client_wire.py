"""The house tickets' client answers (``client/ticket_office.py``, issue 13) against the
server's own description (``server/schemas.py``): every field voucherctl reads is a field of
the server's answer, of the same type (as ``test_client_wire.py`` holds ``client.wire``)."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from client import ticket_office as ours
from client import wire
from server import schemas
from tests.unit.test_client_wire import ANSWERS as WIRE_ANSWERS
from tests.unit.test_client_wire import shape

ANSWERS: dict[type[msgspec.Struct], type[msgspec.Struct]] = {
    ours.HouseTicket: schemas.HouseTicket,
    ours.TicketEvent: schemas.TicketEventView,
    ours.TicketPayout: schemas.PayoutView,
    ours.FamilySummary: schemas.FamilySummary,
    ours.TicketFile: schemas.TicketFile,
    ours.Tickets: schemas.Tickets,
    ours.UseCondition: schemas.UseCondition,
    ours.UseFile: schemas.UseFile,
    ours.Payouts: schemas.Payouts,
    ours.BonusReviewed: schemas.BonusReviewed,
    ours.TicketSettlementLine: schemas.TicketSettlementLine,
    ours.TicketSettlement: schemas.TicketSettlement,
    ours.TicketSettlements: schemas.TicketSettlements,
    ours.ListingReject: schemas.ListingReject,
    ours.ListingImport: schemas.ListingImport,
    ours.ListedUnit: schemas.ListedUnit,
    ours.ListedUnits: schemas.ListedUnits,
    ours.ExitNotice: schemas.ExitNotice,
    ours.TicketReportRow: schemas.TicketReportRow,
    ours.TicketReport: schemas.TicketReport,
    ours.Developer: schemas.Merchant,
    ours.Programmes: schemas.TicketProgrammes,
}
KNOWN = {**WIRE_ANSWERS, **ANSWERS}


def same(client: Any, server: Any) -> bool:
    if isinstance(client, type) and issubclass(client, msgspec.Struct):
        return KNOWN.get(client) is server
    if isinstance(client, tuple) and isinstance(server, tuple):
        return len(client) == len(server) and all(map(same, client, server))
    if isinstance(client, frozenset) and isinstance(server, frozenset):
        return len(client) == len(server) and all(any(same(c, s) for s in server) for c in client)
    return bool(client == server)


@pytest.mark.parametrize("client", list(ANSWERS), ids=lambda c: c.__name__)
def test_every_field_voucherctl_reads_of_a_ticket_answer_is_the_servers(
    client: type[msgspec.Struct],
) -> None:
    info = mi.type_info(client)
    served = mi.type_info(ANSWERS[client])
    assert isinstance(info, mi.StructType) and isinstance(served, mi.StructType)
    server_fields = {f.encode_name: f for f in served.fields}
    for f in info.fields:
        assert f.encode_name in server_fields, f"the server sends no {client.__name__}.{f.name}"
        theirs = shape(server_fields[f.encode_name].type)
        assert same(shape(f.type), theirs), (client.__name__, f.name, shape(f.type), theirs)


def test_every_ticket_answer_the_client_decodes_is_compared() -> None:
    decoded = {
        v
        for v in vars(ours).values()
        if isinstance(v, type) and issubclass(v, msgspec.Struct) and v.__module__ == ours.__name__
    }
    assert decoded == set(ANSWERS)
    assert wire.RejectReason in WIRE_ANSWERS  # the listing rejects' reasons, compared there
