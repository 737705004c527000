"""The till's decision on typed values (shared/redemption.py): rules U1, U2, U4, U5, U6, V2,
X1 for a bill, F1-F3 for a refund. No database, no request: a ``TillContext`` is all it needs."""

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.campaign_files import load_bundled_campaign, load_campaign
from shared.campaign import RefundReturns, campaign_to_dict, load_campaign_dict
from shared.errors import (
    AlreadyRefunded,
    AlreadySettled,
    BillAlreadyRedeemed,
    CampaignConfigInvalid,
    MerchantNotPermitted,
    MerchantSuspended,
    NotEnoughVouchers,
    ParticipationRevoked,
    RefundInvalid,
    TerminalDisabled,
    TokenInvalid,
    TokenReplayed,
    TooManyVouchers,
    VoucherExpired,
    WrongDistrict,
)
from shared.redemption import (
    HeldVoucher,
    SpentVoucher,
    TillContext,
    choose,
    decide,
    quote,
    vouchers_left,
    vouchers_returned,
)

SH = ZoneInfo("Asia/Shanghai")
LC = load_bundled_campaign("liaocheng-2024")
CHIPING = load_campaign(Path(__file__).parent / "data" / "chiping-2025.toml")
CAMPAIGNS = {LC.id: LC, CHIPING.id: CHIPING}
NOW = datetime(2024, 10, 1, 12, 0, tzinfo=SH)


def held(vid: int, days: int, campaign: str = LC.id, face: int = 10_000) -> HeldVoucher:
    return HeldVoucher(
        id=vid, campaign_id=campaign, expires_at=NOW + timedelta(days=days), face_value_fen=face
    )


def till(*vouchers: HeldVoucher, **changes: object) -> TillContext:
    """A cashier's till at an admitted, permitted, active merchant in dongchangfu, and a
    citizen in good standing holding ``vouchers`` (earliest expiry first, as the read gives)."""
    ctx = TillContext(
        terminal_status="active",
        terminal_label="till 1",
        merchant_id=7,
        merchant_name="a shop",
        district="dongchangfu",
        admitted=True,
        permitted=True,
        merchant_status="active",
        citizen_id=42,
        citizen_status="active",
        id_masked="3715**********0011",
        expired_count=0,
        token_used=False,
        held=tuple(vouchers),
    )
    return replace(ctx, **changes)  # type: ignore[arg-type]


def test_a_citizen_in_good_standing_at_a_good_merchant_redeems_their_campaign() -> None:
    decision = decide(till(held(1, 10), held(2, 20)), CAMPAIGNS)
    assert decision.campaign is LC
    assert [v.id for v in decision.views] == [1, 2]
    assert decision.citizen_id == 42


def test_no_such_terminal_or_a_revoked_one_is_refused_first() -> None:
    # rule U1
    with pytest.raises(TerminalDisabled):
        decide(None, CAMPAIGNS)
    with pytest.raises(TerminalDisabled):
        decide(till(held(1, 10), terminal_status="revoked", citizen_id=None), CAMPAIGNS)


def test_a_qr_code_of_nobody_in_the_programme_is_an_invalid_token() -> None:
    with pytest.raises(TokenInvalid):
        decide(till(citizen_id=None), CAMPAIGNS)


def test_a_used_qr_code_is_refused_when_replays_count() -> None:
    # rule U5
    ctx = till(held(1, 10), token_used=True)
    with pytest.raises(TokenReplayed):
        decide(ctx, CAMPAIGNS)
    assert decide(ctx, CAMPAIGNS, replay=False).campaign is LC


def test_a_receipt_number_the_read_found_taken_today_is_refused_before_the_write() -> None:
    # rule U4 (issue 11 item 3): the quote says so, not only the ledger's unique index
    ctx = till(held(1, 10), receipt_no="0002", receipt_used=True)
    with pytest.raises(BillAlreadyRedeemed) as refused:
        decide(ctx, CAMPAIGNS, receipt_no="0002")
    assert refused.value.details == {"receipt_no": "0002"}
    assert "next receipt" in refused.value.message  # tells the cashier what to do next
    # a read about another number (the cashier changed it since) says nothing about this one
    assert decide(ctx, CAMPAIGNS, receipt_no="0003").campaign is LC
    assert decide(ctx, CAMPAIGNS).campaign is LC  # no receipt number asked about
    free = till(held(1, 10), receipt_no="0002", receipt_used=False)
    assert decide(free, CAMPAIGNS, receipt_no="0002").campaign is LC


def test_the_vouchers_left_count_the_campaigns_unexpired_ones_after_the_bill() -> None:
    ctx = till(held(1, 10), held(2, 20), held(3, 30), held(4, 40, CHIPING.id))
    assert vouchers_left(ctx, LC.id, 2, NOW) == 1
    assert vouchers_left(ctx, LC.id, 0, NOW + timedelta(days=15)) == 2  # one expired (V2)
    assert vouchers_left(ctx, CHIPING.id, 1, NOW) == 0


def test_a_revoked_citizen_redeems_nothing() -> None:
    # rule X1
    with pytest.raises(ParticipationRevoked):
        decide(till(held(1, 10), citizen_status="revoked"), CAMPAIGNS)


def test_vouchers_of_no_campaign_usable_here_are_the_wrong_district() -> None:
    # rule U2: chiping's vouchers are not usable in dongchangfu
    with pytest.raises(WrongDistrict):
        decide(till(held(1, 10, CHIPING.id, CHIPING.face_value_fen)), CAMPAIGNS)
    # nor are vouchers of a campaign this server no longer has
    with pytest.raises(WrongDistrict):
        decide(till(held(1, 10, "gone-2023")), CAMPAIGNS)


def test_nothing_held_is_expired_vouchers_or_simply_none() -> None:
    # rule V2
    with pytest.raises(VoucherExpired):
        decide(till(expired_count=3), CAMPAIGNS)
    with pytest.raises(NotEnoughVouchers):
        decide(till(), CAMPAIGNS)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"merchant_status": "suspended"}, MerchantSuspended),
        ({"admitted": False}, MerchantNotPermitted),
        ({"permitted": False}, MerchantNotPermitted),
    ],
)
def test_the_merchant_must_be_in_good_standing(
    changes: dict[str, object], error: type[Exception]
) -> None:
    # rule U1
    with pytest.raises(error):
        decide(till(held(1, 10), **changes), CAMPAIGNS)


def test_a_bill_redeems_one_campaign_the_one_expiring_first() -> None:
    # rules U4, U6: with vouchers of two campaigns usable here, the earliest decides
    other = replace(LC, id="liaocheng-2024-bis")
    campaigns = {**CAMPAIGNS, other.id: other}
    decision = decide(till(held(1, 5, other.id), held(2, 10), held(3, 20, other.id)), campaigns)
    assert decision.campaign is other
    assert [v.id for v in decision.views] == [1, 3]


def test_the_bill_uses_the_earliest_expiring_vouchers_in_ascending_ids() -> None:
    # rules U3, U6
    decision = decide(till(held(9, 10), held(4, 11), held(1, 30)), CAMPAIGNS)
    assert choose(decision, 2, 40_000, NOW) == (4, 9)
    with pytest.raises(TooManyVouchers):
        choose(decision, 3, 40_000, NOW)
    allowed = quote(decision, 100_000, NOW)
    assert (allowed.usable_count, allowed.max_by_bill, allowed.value_fen) == (3, 5, 30_000)


def spent(*days: int) -> list[SpentVoucher]:
    return [SpentVoucher(100 + n, NOW + timedelta(days=d)) for n, d in enumerate(days)]


def test_a_partial_refund_returns_the_latest_expiring_vouchers_by_default() -> None:
    # rule F2 [choice]: 3 vouchers on a 600 元 bill refunded down to 250 元 keep 1, return 2
    assert LC.refund_returns is RefundReturns.LATEST_EXPIRY_FIRST
    live = spent(30, 10, 50)  # ids 100, 101, 102
    assert vouchers_returned(LC, live, 25_000, bill_fen=60_000, settled=False) == [102, 100]


def test_a_campaign_may_return_the_earliest_expiring_vouchers_instead() -> None:
    # rule F2 [choice] as a campaign parameter
    earliest = replace(LC, refund_returns=RefundReturns.EARLIEST_EXPIRY_FIRST)
    live = spent(30, 10, 50)
    assert vouchers_returned(earliest, live, 25_000, bill_fen=60_000, settled=False) == [101, 100]


def test_ties_in_expiry_go_by_id() -> None:
    live = spent(10, 10, 10)
    assert vouchers_returned(LC, live, 20_000, bill_fen=60_000, settled=False) == [102, 101]
    earliest = replace(LC, refund_returns=RefundReturns.EARLIEST_EXPIRY_FIRST)
    assert vouchers_returned(earliest, live, 20_000, bill_fen=60_000, settled=False) == [100, 101]


def test_a_refund_refuses_a_settled_an_emptied_or_an_unchanged_bill() -> None:
    # rules F2, F3, in this order
    with pytest.raises(AlreadySettled):
        vouchers_returned(LC, [], 60_000, bill_fen=60_000, settled=True)
    with pytest.raises(AlreadyRefunded):
        vouchers_returned(LC, [], 0, bill_fen=60_000, settled=False)
    with pytest.raises(RefundInvalid):
        vouchers_returned(LC, spent(10), 60_000, bill_fen=60_000, settled=False)
    assert vouchers_returned(LC, spent(10, 20), 0, bill_fen=60_000, settled=False) == [101, 100]


def test_the_refund_order_is_read_from_the_campaign_and_written_back() -> None:
    # rule C1: an optional key; the bundled campaigns name it; a wrong value is a clear error
    config = campaign_to_dict(LC)
    assert config["refund_returns"] == "latest_expiry_first"
    assert load_campaign_dict(
        {**config, "refund_returns": "earliest_expiry_first"}
    ).refund_returns is (RefundReturns.EARLIEST_EXPIRY_FIRST)
    without = {k: v for k, v in config.items() if k != "refund_returns"}
    assert load_campaign_dict(without).refund_returns is RefundReturns.LATEST_EXPIRY_FIRST
    with pytest.raises(CampaignConfigInvalid) as refused:
        load_campaign_dict({**config, "refund_returns": "random"})
    problems = refused.value.details["problems"]
    assert isinstance(problems, list) and isinstance(problems[0], dict)
    assert problems[0]["path"] == "refund_returns"
