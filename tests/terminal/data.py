"""Fixed answers, as the server gives them, for tests that need no server (receipt, CSV,
snapshots): nothing in them varies from run to run."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

from msgspec.structs import replace

from client.till import TicketContract
from client.wire import (
    Citizen,
    DayRedemption,
    DayRefund,
    DayReport,
    DayTotals,
    HeldTicket,
    MerchantRef,
    PoolUnit,
    Quote,
    Redemption,
    RefundEntry,
    Session,
    TerminalMerchant,
    TerminalRef,
    TicketBuyer,
    TicketDraw,
    TicketLine,
    TicketQuote,
    TicketUse,
)
from shared.campaign import load_campaign_text
from terminal.config import TerminalConfig

CONFIG = TerminalConfig("http://127.0.0.1:9", 3, "fixed-secret")
SESSION = Session(
    terminal=TerminalRef(3, "收银台 1"),
    merchant=TerminalMerchant(1, "东昌府区示范超市", "dongchangfu"),
    expires_in=900,
)
DISTRICT_NAMES = {"dongchangfu": "东昌府区"}

QUOTE = Quote(
    citizen=Citizen("3715**********1234"),
    campaign_id="liaocheng-2024",
    bill_fen=45_000,
    face_value_fen=10_000,
    available_count=48,
    max_by_bill=2,
    usable_count=2,
    value_fen=20_000,
    remaining_fen=25_000,
    merchant=MerchantRef(1, "东昌府区示范超市"),
    token_expires_at="2024-09-10T10:01:00+08:00",
)

REDEMPTION = Redemption(
    redemption_id=1234,
    receipt_no="R-0001",
    campaign_id="liaocheng-2024",
    merchant=MerchantRef(1, "东昌府区示范超市"),
    terminal=TerminalRef(3, "收银台 1"),
    citizen=Citizen("3715**********1234"),
    bill_fen=45_000,
    current_bill_fen=45_000,
    face_value_fen=10_000,
    voucher_count=2,
    value_fen=20_000,
    remaining_fen=25_000,
    refunded_count=0,
    live_voucher_count=2,
    voucher_ids=(11, 12),
    returned_voucher_ids=(),
    status="redeemed",
    settled=False,
    created_at="2024-09-10T02:00:05+00:00",
)

TILL_1 = TerminalRef(3, "收银台 1")
DAY = DayReport(
    date="2024-09-10",
    redemptions=(
        DayRedemption(1, "2024-09-10T10:00:05+08:00", "R-0001", TILL_1, 45_000, 2, 1, 20_000),
        DayRedemption(2, "2024-09-10T10:05:00+08:00", "R,2", TILL_1, 20_000, 1, 0, 10_000),
    ),
    # the bill of 450 元 left at 250 元: one voucher back, 100 元 of the 250 paid handed back
    refunds=(DayRefund(9, "2024-09-10T11:00:00+08:00", 1, "R-0001", TILL_1, 1, 10_000, 10_000),),
    totals=DayTotals(
        bills=2,
        vouchers=3,
        value_fen=30_000,
        bill_fen=65_000,
        refunds=1,
        returned_vouchers=1,
        returned_value_fen=10_000,
        net_value_fen=20_000,
    ),
)

PARTLY_REFUNDED = replace(  # rule F2: the bill became 250 元, one voucher stays
    REDEMPTION,
    current_bill_fen=25_000,
    refunded_count=1,
    live_voucher_count=1,
    returned_voucher_ids=(12,),
    status="partially_refunded",
    refunds=(RefundEntry(9, 25_000, 1, 10_000, (12,), "2024-09-10T03:00:00+00:00"),),
)

_CAMPAIGN_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "campaigns" / "liaocheng-2024.toml"
)
CAMPAIGN = load_campaign_text(_CAMPAIGN_FILE.read_text(encoding="utf-8"), str(_CAMPAIGN_FILE))

BIG_BILL = replace(  # the example: 1,000 元 paid with 5 vouchers and 500 元 cash
    REDEMPTION,
    redemption_id=1240,
    receipt_no="R-0007",
    bill_fen=100_000,
    current_bill_fen=100_000,
    voucher_count=5,
    value_fen=50_000,
    remaining_fen=50_000,
    live_voucher_count=5,
    voucher_ids=(21, 22, 23, 24, 25),
)


# --- a developer's sales office (issue 13) ----------------------------------------------------

DEVELOPER = Session(
    terminal=TerminalRef(7, "售楼处 1"),
    merchant=TerminalMerchant(2, "商丘示范置业有限公司", "liangyuan", kind="developer"),
    expires_in=900,
)
DEVELOPER_DISTRICTS = {"liangyuan": "梁园区"}
UNIT = PoolUnit("1-101", "shangqiu-2025", "liangyuan", "residential", 12_000, 200_000_000)
POOL = (UNIT, replace(UNIT, unit="2-502", area_dm2=14_350, listed_price_fen=245_000_000))
CONTRACT = TicketContract("WQ-2025-0001", "1-101", date(2025, 7, 10), 150_000_000)
TICKET_QUOTE = TicketQuote(
    holder=Citizen("4114**********0275"),
    buyer=TicketBuyer("holder"),
    campaign_id="shangqiu-2025",
    merchant=MerchantRef(2, "商丘示范置业有限公司"),
    contract_no="WQ-2025-0001",
    signed_on="2025-07-10",
    price_fen=150_000_000,
    unit=UNIT,
    lines=(
        TicketLine(
            number="FP-2025-000001",
            face_value_fen=100_000_000,
            balance_fen=100_000_000,
            deadline="2026-12-20",
            min_fen=1,
            max_fen=100_000_000,
            amount_fen=60_000_000,
            month=1,
            subsidy_bp=1000,
            subsidy_fen=6_000_000,
            still_to_use_fen=30_000_000,
        ),
    ),
    amount_fen=60_000_000,
    subsidy_fen=6_000_000,
    reward_fen=0,
    seller_due_fen=66_000_000,
    buyer_pays_fen=84_000_000,
    tickets=(),
    token_expires_at="2025-07-10T10:01:00+08:00",
)

# rule T6: the holder's two tickets combined on one 150 万 contract, 120 万 asked: the first
# (earliest expiry) pays all it holds, the other 20 万, each with its month-1 subsidy (T7)
HELD_TICKETS = (
    HeldTicket("FP-2025-000001", "active", 100_000_000, 100_000_000, "2026-12-20"),
    HeldTicket("FP-2025-000002", "active", 50_000_000, 50_000_000, "2026-12-25"),
    HeldTicket("FP-2024-000900", "returned", 30_000_000, 0, "2026-06-30"),
)
FIRST_LINE = TICKET_QUOTE.lines[0]
COMBINED_QUOTE = replace(
    TICKET_QUOTE,
    lines=(
        replace(FIRST_LINE, amount_fen=100_000_000, subsidy_fen=10_000_000, still_to_use_fen=0),
        replace(
            FIRST_LINE,
            number="FP-2025-000002",
            face_value_fen=50_000_000,
            balance_fen=50_000_000,
            deadline="2026-12-25",
            max_fen=36_363_637,
            amount_fen=20_000_000,
            subsidy_fen=2_000_000,
            still_to_use_fen=25_000_000,
        ),
    ),
    amount_fen=120_000_000,
    subsidy_fen=12_000_000,
    seller_due_fen=132_000_000,
    buyer_pays_fen=18_000_000,
    tickets=HELD_TICKETS,
)
COMBINED_CONTRACT = dataclasses.replace(CONTRACT, tickets=("FP-2025-000001", "FP-2025-000002"))
TICKET_USE = TicketUse(
    use_id=42,
    campaign_id="shangqiu-2025",
    merchant_id=2,
    holder=Citizen("4114**********0275"),
    relation="spouse",
    contract_no="WQ-2025-0001",
    signed_on="2025-07-10",
    price_fen=150_000_000,
    unit="1-101",
    district="liangyuan",
    property_type="residential",
    area_dm2=12_000,
    draws=(
        TicketDraw("FP-2025-000001", 100_000_000, 1000, 10_000_000, 0),
        TicketDraw("FP-2025-000002", 20_000_000, 1000, 2_000_000, 30_000_000),
    ),
    amount_fen=120_000_000,
    subsidy_fen=12_000_000,
    reward_fen=0,
    seller_due_fen=132_000_000,
    buyer_pays_fen=18_000_000,
    used_at="2025-07-10T02:03:04Z",
    cancelled=False,
)
BUYER_ID = "371502199001011234"  # the spouse's number as entered; masked on paper (X3)
