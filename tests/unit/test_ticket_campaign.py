"""Rule C1 for house tickets: the two programmes are data (T1-T14), loaded and validated like
voucher campaigns, side by side with them by their ``kind``."""

import json
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from server.campaign_files import (
    bundled_campaigns_dir,
    bundled_ticket_campaigns_dir,
    load_bundled_ticket_campaign,
    load_campaign,
    load_ticket_campaign,
)
from shared.campaign import CampaignKind, load_campaign_text
from shared.errors import CampaignConfigInvalid
from shared.ticket_campaign import (
    BonusTier,
    PropertyType,
    Relation,
    SettlementCondition,
    SplitMode,
    SubsidyBand,
    TicketCampaign,
    TransferRequirement,
    load_any_campaign_dict,
    load_any_campaign_text,
    load_ticket_campaign_dict,
    load_ticket_campaign_text,
    ticket_campaign_to_dict,
)

SHANGQIU_FILE = bundled_ticket_campaigns_dir() / "shangqiu-2025.toml"
SUINING_FILE = bundled_ticket_campaigns_dir() / "suining-chuanshan-2025.toml"
TICKET_FILES = (SHANGQIU_FILE, SUINING_FILE)


def doc_of(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def problems_of(doc: dict[str, Any]) -> list[str]:
    """The key paths a broken document is refused for (and a message naming the file)."""
    with pytest.raises(CampaignConfigInvalid) as info:
        load_ticket_campaign_dict(doc, source="bad.toml")
    assert info.value.message.startswith("bad.toml")
    problems = info.value.details["problems"]
    assert isinstance(problems, list)
    return [p["path"] for p in problems if isinstance(p, dict)]  # type: ignore[misc]


def test_both_programmes_ship_and_load_by_id() -> None:
    shangqiu = load_bundled_ticket_campaign("shangqiu-2025")
    suining = load_bundled_ticket_campaign("suining-chuanshan-2025")
    assert (shangqiu.id, suining.id) == ("shangqiu-2025", "suining-chuanshan-2025")
    assert shangqiu.kind is suining.kind is CampaignKind.HOUSE_TICKET
    assert shangqiu.timezone == suining.timezone == "Asia/Shanghai"


def test_shangqiu_reads_as_the_spec_says() -> None:
    c = load_ticket_campaign(SHANGQIU_FILE)
    # T1: three districts issue, and a ticket buys across them (T4)
    assert c.issuing_districts == c.usable_districts == {"liangyuan", "suiyang", "shifanqu"}
    assert (c.issuance_opens, c.issuance_closes) == (date(2023, 7, 1), date(2025, 6, 30))
    assert set(c.face_items) == {"compensation", "policy_reward"}
    # T2: per-ticket validity, 18 months by default
    assert (c.validity_months, c.validity_months_max) == (18, 36)
    # T3: no transfer, an heir may take it
    assert (c.transfer.max_transfers, c.transfer.heir) == (0, True)
    # T4: the five types
    assert set(c.property_types) == {
        PropertyType.RESIDENTIAL,
        PropertyType.COMMERCIAL,
        PropertyType.COMMERCIAL_OFFICE,
        PropertyType.PARKING,
        PropertyType.STORAGE,
    }
    assert c.home_kept_for == frozenset()
    # T5: spouse, parents, children
    assert c.may_serve == {Relation.HOLDER, Relation.SPOUSE, Relation.PARENT, Relation.CHILD}
    # T6: any number of contracts, 90% in total
    assert (c.split.mode, c.split.min_use_bp, c.split.max_splits) == (
        SplitMode.CUMULATIVE,
        9000,
        0,
    )
    # T7: the month table
    assert c.subsidy == (
        SubsidyBand(1, 3, 1000),
        SubsidyBand(4, 6, 800),
        SubsidyBand(7, 12, 500),
        SubsidyBand(13, 18, 200),
    )
    assert [c.subsidy_bp(m) for m in (1, 3, 4, 6, 7, 12, 13, 18, 19)] == [
        1000,
        1000,
        800,
        800,
        500,
        500,
        200,
        200,
        0,
    ]
    # T8, T10: no reward, no bonus
    assert c.reward.fen_per_m2 == 0
    assert c.bonus is None
    # T9: cash-out from 90%
    assert c.cashout.min_used_bp == 9000
    # T12: no holdback, no settlement points
    assert (c.settlement.first_payment_bp, c.settlement.period_months) == (10000, 0)
    assert c.settlement.requires == {SettlementCondition.FILED}


def test_suining_reads_as_the_spec_says() -> None:
    c = load_ticket_campaign(SUINING_FILE)
    assert c.issuing_districts == c.usable_districts == {"chuanshan"}
    # T1: one year from its start; household and ticket area on the ticket
    assert (c.issuance_opens, c.issuance_closes) == (date(2025, 9, 1), date(2026, 8, 31))
    assert c.household_required and c.ticket_area_required
    # T2: 12 months
    assert (c.validity_months, c.validity_months_max) == (12, 12)
    # T3: once, on three conditions; heirs
    assert c.transfer.max_transfers == 1
    assert c.transfer.requires == set(TransferRequirement)
    assert c.transfer.heir
    # T4: four types; a home kept for the non-housing ones; 3 months' notice to leave
    assert set(c.property_types) == {
        PropertyType.RESIDENTIAL,
        PropertyType.COMMERCIAL,
        PropertyType.OFFICE,
        PropertyType.PARKING,
    }
    assert c.home_kept_for == {PropertyType.COMMERCIAL, PropertyType.OFFICE, PropertyType.PARKING}
    assert c.exit_notice_months == 3
    # T5: the household
    assert c.may_serve == {Relation.HOLDER, Relation.HOUSEHOLD_MEMBER}
    # T6: split once into at most 3, each use 90% of its piece, combine
    assert (c.split.mode, c.split.min_use_bp) == (SplitMode.PER_USE, 9000)
    assert (c.split.max_splits, c.split.max_pieces, c.split.combine) == (1, 3, True)
    # T7, T8: no month table; 400 元 per m²
    assert c.subsidy == ()
    assert c.reward.fen_per_m2 == 40_000
    assert c.reward.property_types == set(c.property_types)
    # T9, T10
    assert (c.cashout.min_used_bp, c.cashout.pay_within_months) == (9000, 6)
    assert c.bonus is not None
    assert (c.bonus.review_months, c.bonus.pay_within_months) == (12, 6)
    assert c.bonus.tiers == (BonusTier(10000, 500), BonusTier(8500, 300))
    # T12: 90/10 every 6 months, after four conditions
    assert c.settlement.requires == set(SettlementCondition)
    assert (c.settlement.period_months, c.settlement.first_payment_bp) == (6, 9000)
    # T13: 10 working days, with the make-up days as data
    assert c.notice_working_days == 10
    assert c.calendar is not None
    assert date(2025, 10, 8) in c.calendar.holidays
    assert date(2025, 9, 28) in c.calendar.workdays  # a Sunday worked (调休)


def test_every_difference_between_the_programmes_is_a_parameter() -> None:
    # issue 13: validity, transfer, split, subsidy, reward, cash-out and bonus, holdback
    a, b = (load_ticket_campaign(p) for p in TICKET_FILES)
    differs = (
        "validity_months",
        "transfer",
        "split",
        "subsidy",
        "reward",
        "cashout",
        "bonus",
        "settlement",
        "may_serve",
        "property_types",
        "notice_working_days",
    )
    for name in differs:
        assert getattr(a, name) != getattr(b, name), name


@pytest.mark.parametrize("path", TICKET_FILES, ids=lambda p: p.stem)
def test_every_reading_of_ours_is_a_choice_comment_citing_its_rule(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    choices = re.findall(r"[Rr]ule (T[0-9]+) \[choice", text)
    assert len(choices) >= 5
    assert "T1" in choices and "T3" in choices


@pytest.mark.parametrize("path", TICKET_FILES, ids=lambda p: p.stem)
def test_the_programme_as_json_loads_back_to_the_same_programme(path: Path) -> None:
    c = load_ticket_campaign(path)
    as_json = json.dumps(ticket_campaign_to_dict(c), ensure_ascii=False)
    again = load_ticket_campaign_dict(json.loads(as_json), source="ledger")
    assert again == c
    assert isinstance(load_any_campaign_dict(json.loads(as_json)), TicketCampaign)


def test_either_kind_loads_by_its_kind_key() -> None:
    voucher_text = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text(encoding="utf-8")
    loaded = load_any_campaign_text(voucher_text, "liaocheng-2024.toml")
    assert loaded.kind is CampaignKind.VOUCHER
    ticket = load_any_campaign_text(SHANGQIU_FILE.read_text(encoding="utf-8"), "sq.toml")
    assert isinstance(ticket, TicketCampaign)


def test_a_voucher_file_without_kind_is_still_a_voucher_campaign() -> None:
    path = Path(__file__).parent / "data" / "chiping-2025.toml"
    assert not re.search(r"^kind", path.read_text(encoding="utf-8"), re.M)
    assert load_campaign(path).kind is CampaignKind.VOUCHER


def test_each_loader_refuses_the_other_kind_with_a_clear_message() -> None:
    with pytest.raises(CampaignConfigInvalid, match="kind: a house-ticket campaign is loaded"):
        load_campaign_text(SHANGQIU_FILE.read_text(encoding="utf-8"), "sq.toml")
    voucher = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text(encoding="utf-8")
    with pytest.raises(CampaignConfigInvalid, match='kind = "house_ticket"'):
        load_ticket_campaign_text(voucher, "lc.toml")
    with pytest.raises(CampaignConfigInvalid, match="'coupon' is not supported"):
        load_any_campaign_dict({**doc_of(SHANGQIU_FILE), "kind": "coupon"})


def test_the_voucher_glob_does_not_take_the_house_tickets() -> None:
    assert {p.stem for p in bundled_campaigns_dir().glob("*.toml")} == {
        "liaocheng-2024",
        "liaocheng-demo",
    }
    assert {p.stem for p in bundled_ticket_campaigns_dir().glob("*.toml")} == {
        "shangqiu-2025",
        "shangqiu-demo",
        "suining-chuanshan-2025",
    }


def test_the_demo_programme_is_shangqiu_with_its_issuance_two_years_later() -> None:
    # issue 13's demo (rule T1 [choice]): Shangqiu issued its last tickets on 2025-06-30
    real = ticket_campaign_to_dict(load_bundled_ticket_campaign("shangqiu-2025"))
    demo = ticket_campaign_to_dict(load_bundled_ticket_campaign("shangqiu-demo"))
    moved = {"id", "name", "issuance_opens", "issuance_closes", "settlement"}
    assert {k: v for k, v in demo.items() if k not in moved} == {
        k: v for k, v in real.items() if k not in moved
    }
    assert (demo["id"], demo["issuance_opens"], demo["issuance_closes"]) == (
        "shangqiu-demo",
        "2025-07-01",
        "2027-06-30",
    )
    real_settlement, demo_settlement = real["settlement"], demo["settlement"]
    assert isinstance(real_settlement, dict) and isinstance(demo_settlement, dict)
    assert {**demo_settlement, "anchor": real_settlement["anchor"]} == real_settlement


def test_a_gap_in_the_subsidy_table_is_refused() -> None:
    # T7: the bands run on from month 1
    doc = doc_of(SHANGQIU_FILE)
    doc["subsidy"][1]["from_month"] = 5
    assert problems_of(doc) == ["subsidy[1].from_month"]


def test_bonus_tiers_go_from_the_highest_usage_down() -> None:
    # T10
    doc = doc_of(SUINING_FILE)
    doc["bonus"]["tiers"].reverse()
    assert problems_of(doc) == ["bonus.tiers[1].min_used_bp"]


def test_a_make_up_working_day_is_a_weekend_day() -> None:
    # T13: 2025-09-29 is a Monday: it works anyway, it is no make-up day
    doc = doc_of(SUINING_FILE)
    doc["working_calendar"]["workdays"].append(date(2025, 9, 29))
    assert problems_of(doc) == ["working_calendar.workdays"]


def test_a_notice_in_working_days_needs_the_calendar() -> None:
    # T13
    doc = doc_of(SUINING_FILE)
    del doc["working_calendar"]
    assert problems_of(doc) == ["working_calendar"]


def test_household_members_can_be_served_only_if_the_ticket_lists_them() -> None:
    # T5 needs T1's household list
    doc = doc_of(SUINING_FILE)
    doc["household_required"] = False
    assert problems_of(doc) == ["may_serve"]


def test_reward_and_home_rules_name_only_the_programmes_types() -> None:
    # T4, T8: 商办 is a Shangqiu type, not a Suining one
    doc = doc_of(SUINING_FILE)
    doc["home_kept_for"].append("commercial_office")
    doc["reward"]["property_types"].append("storage")
    assert problems_of(doc) == ["home_kept_for", "reward.property_types"]


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    doc = doc_of(SHANGQIU_FILE)
    doc["validity_months"] = 40  # above its own max (T2)
    doc["split"]["mode"] = "halves"  # T6
    doc["issuance_closes"] = date(2023, 1, 1)  # before it opens (T1)
    doc["transfer"]["requires"] = ["bribe"]  # T3
    doc["may_serve"] = ["spouse"]  # T5: the holder always
    doc["surprise"] = 1
    assert sorted(problems_of(doc)) == [
        "issuance_closes",
        "may_serve",
        "split.mode",
        "surprise",
        "transfer.requires[0]",
        "validity_months_max",
    ]
