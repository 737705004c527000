"""The client's view of the answers (``client/wire.py``) against the server's own description
(``server/schemas.py``, the source of ``/openapi.json``): every field the client reads is a
field of the server's answer, of the same type. The client may read less (it ignores what it
does not need), never something else. Plus how the client decodes: whole fen only, refusals
with the server's stable code."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from client import wire
from client.http import Answer, ApiError, BadAnswer
from server import schemas
from shared.errors import BillTooSmall, Category

# each answer the client decodes -> the server's description of it
ANSWERS: dict[type[msgspec.Struct], type[msgspec.Struct]] = {
    wire.AccessToken: schemas.AccessToken,
    wire.TerminalRef: schemas.TerminalRef,
    wire.MerchantRef: schemas.MerchantRef,
    wire.TerminalMerchant: schemas.TerminalMerchant,
    wire.Session: schemas.TerminalAccess,
    wire.StaffAccess: schemas.StaffAccess,
    wire.RefundApproval: schemas.RefundApproval,
    wire.DevAssertion: schemas.DevAssertion,
    wire.QrToken: schemas.QrToken,
    wire.Claimed: schemas.Claimed,
    wire.Citizen: schemas.MaskedCitizen,
    wire.Quote: schemas.Quote,
    wire.RefundEntry: schemas.RefundLine,
    wire.Redemption: schemas.Redemption,
    wire.DayRedemption: schemas.DayRedemption,
    wire.DayRefund: schemas.DayRefund,
    wire.DayTotals: schemas.DayTotals,
    wire.DayReport: schemas.MerchantDay,
    wire.PublicCampaigns: schemas.Campaigns,
    wire.Merchant: schemas.Merchant,
    wire.Merchants: schemas.Merchants,
    wire.MerchantSettings: schemas.MerchantSettings,
    wire.Pairing: schemas.Pairing,
    wire.IssuedTerminal: schemas.IssuedTerminal,
    wire.RevokedTerminal: schemas.RevokedTerminal,
    wire.RevokedCitizen: schemas.RevokedCitizen,
    wire.RejectReason: schemas.RejectReason,
    wire.RegistryReject: schemas.RegistryReject,
    wire.RegistryImport: schemas.RegistryImport,
    wire.Account: schemas.Account,
    wire.Accounts: schemas.Accounts,
    wire.SettlementLine: schemas.SettlementLine,
    wire.Settlement: schemas.Settlement,
    wire.RankedDistrict: schemas.RankedDistrict,
    wire.Ranking: schemas.Ranking,
    wire.AuditEntry: schemas.AuditEntry,
    wire.AuditLog: schemas.AuditLog,
    wire.PoolUnit: schemas.PoolUnit,
    wire.ListingPool: schemas.ListingPool,
    wire.TicketBuyer: schemas.TicketBuyer,
    wire.TicketLine: schemas.TicketLine,
    wire.HeldTicket: schemas.HeldTicket,
    wire.TicketQuote: schemas.TicketQuote,
    wire.TicketDraw: schemas.TicketDraw,
    wire.TicketUse: schemas.TicketUse,
    wire.TicketProgrammes: schemas.TicketProgrammes,
}
# the client's own fields, never sent (so each has a default): how an answer came (U7)
CLIENT_ONLY = {
    (wire.Redemption, "replayed"),
    (wire.Redemption, "recovered"),
    (wire.TicketUse, "replayed"),
    (wire.TicketUse, "recovered"),
}


def shape(t: mi.Type) -> Any:
    """A type as the wire sees it: an array is an array (list or tuple), a Literal of strings
    a string, a Struct its class, constraints and descriptions aside."""
    if isinstance(t, mi.Metadata):
        return shape(t.type)
    if isinstance(t, mi.LiteralType):
        return {str: "StrType", int: "IntType"}[type(t.values[0])]
    if isinstance(t, mi.ListType | mi.VarTupleType):
        return ("array", shape(t.item_type))
    if isinstance(t, mi.DictType):
        return ("object", shape(t.key_type), shape(t.value_type))
    if isinstance(t, mi.StructType):
        return t.cls
    if isinstance(t, mi.UnionType):
        return frozenset(shape(x) for x in t.types)  # UNSET is no type: a field left out
    return type(t).__name__


def same(client: Any, server: Any) -> bool:
    if isinstance(client, type) and issubclass(client, msgspec.Struct):
        return ANSWERS.get(client) is server
    if client == ("object", "StrType", "AnyType"):  # a campaign, read by shared.campaign,
        # or a programme's file as JSON (issue 13), sent as such
        return server == client or (isinstance(server, type) and issubclass(server, msgspec.Struct))
    if isinstance(client, tuple) and isinstance(server, tuple):
        return len(client) == len(server) and all(map(same, client, server))
    if isinstance(client, frozenset) and isinstance(server, frozenset):
        return len(client) == len(server) and all(any(same(c, s) for s in server) for c in client)
    return bool(client == server)


@pytest.mark.parametrize("client", list(ANSWERS), ids=lambda c: c.__name__)
def test_every_field_the_client_reads_is_the_servers_of_the_same_type(
    client: type[msgspec.Struct],
) -> None:
    info = mi.type_info(client)
    assert isinstance(info, mi.StructType)
    served = mi.type_info(ANSWERS[client])
    assert isinstance(served, mi.StructType)
    server_fields = {f.encode_name: f for f in served.fields}
    for f in info.fields:
        if (client, f.name) in CLIENT_ONLY:
            assert not f.required, f"{client.__name__}.{f.name} is the client's: a default"
            assert f.encode_name not in server_fields, f"{f.name} is sent now: read it"
            continue
        assert f.encode_name in server_fields, f"the server sends no {client.__name__}.{f.name}"
        theirs = shape(server_fields[f.encode_name].type)
        assert same(shape(f.type), theirs), (client.__name__, f.name, shape(f.type), theirs)


def test_every_answer_the_client_decodes_is_compared() -> None:
    decoded = {
        v
        for v in vars(wire).values()
        if isinstance(v, type) and issubclass(v, msgspec.Struct) and v.__module__ == wire.__name__
    }
    assert decoded == set(ANSWERS)


QUOTE = {
    "citizen": {"masked_id": "3715**********1234"},
    "campaign_id": "liaocheng-2024",
    "bill_fen": 45_000,
    "face_value_fen": 10_000,
    "spend_threshold_fen": 20_000,
    "available_count": 10,
    "max_by_bill": 2,
    "usable_count": 2,
    "value_fen": 20_000,
    "remaining_fen": 25_000,
    "merchant": {"id": 1, "name": "示范超市"},
    "token_expires_at": "2024-09-10T10:01:00+08:00",
}


def test_an_answer_is_decoded_into_its_struct_and_extra_fields_are_ignored() -> None:
    quote = Answer(200, msgspec.json.encode({**QUOTE, "new_field": 1})).into(wire.Quote)
    assert quote.usable_count == 2 and quote.merchant.name == "示范超市"
    assert quote.to_pay_fen(2) == 25_000  # rule U3


@pytest.mark.parametrize("amount", [450.5, 45_000.0, "45000", True, None])
def test_money_that_is_not_whole_fen_is_a_bad_answer(amount: object) -> None:
    # shared/money.py: an amount is an integer number of fen, never a float or text
    with pytest.raises(BadAnswer, match="bill_fen"):
        Answer(200, msgspec.json.encode({**QUOTE, "bill_fen": amount})).into(wire.Quote)


def test_an_answer_that_is_not_json_is_a_bad_answer() -> None:
    with pytest.raises(BadAnswer, match="HTTP 200"):
        Answer(200, b"<html>proxy page</html>").into(wire.Quote)


def test_a_refusal_carries_the_servers_code_message_and_details() -> None:
    body = {"error": {"code": "bill_too_small", "message": "too small", "details": {"n": 1}}}
    error = Answer(422, msgspec.json.encode(body)).refusal()
    assert isinstance(error, ApiError)
    assert (error.code, error.message, error.status, error.details) == (
        "bill_too_small",
        "too small",
        422,
        {"n": 1},
    )
    assert str(error) == "422 bill_too_small: too small"
    assert error.error_class is BillTooSmall and error.error_class.category is Category.REFUSED


def test_a_refusal_without_the_error_body_is_named_by_its_status() -> None:
    error = Answer(502, b"Bad Gateway").refusal()
    assert (error.code, error.message) == ("http_502", "Bad Gateway")
    assert error.error_class is None
