"""Rule C1: a campaign is data, loaded from a file and validated with clear errors."""

import json
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from server.campaign_files import (
    bundled_campaigns_dir,
    load_bundled_campaign,
    load_campaign,
    load_campaign_files,
)
from shared.campaign import (
    Campaign,
    District,
    PartialRefundPolicy,
    Phase,
    TierBasis,
    ValidityCounting,
    campaign_to_dict,
    load_campaign_dict,
    load_campaign_text,
)
from shared.errors import CampaignConfigInvalid

DATA = Path(__file__).parent / "data"
LIAOCHENG_FILE = bundled_campaigns_dir() / "liaocheng-2024.toml"


def liaocheng_doc() -> dict[str, Any]:
    return tomllib.loads(LIAOCHENG_FILE.read_text(encoding="utf-8"))


def problems_of(doc: dict[str, Any]) -> CampaignConfigInvalid:
    with pytest.raises(CampaignConfigInvalid) as info:
        load_campaign_dict(doc, source="bad.toml")
    assert info.value.message.startswith("bad.toml: ")
    return info.value


def test_liaocheng_2024_ships_exactly_as_the_spec_says() -> None:
    # rules C1, C2, E2, A2, A3, U3, V1, S1
    c = load_campaign(LIAOCHENG_FILE)
    assert c.id == "liaocheng-2024"
    assert c.timezone == "Asia/Shanghai"
    assert dict(c.districts) == {
        "dongchangfu": District("dongchangfu", "东昌府区", "东昌府区"),
        "jingkai": District("jingkai", "经开区", "聊城经济技术开发区"),
        "gaoxin": District("gaoxin", "高新区", "聊城高新技术产业开发区"),
        "dujia": District("dujia", "度假区", "江北水城旅游度假区"),
    }
    four = frozenset({"dongchangfu", "jingkai", "gaoxin", "dujia"})
    assert c.issuing_districts == four
    assert c.usable_districts == four
    assert c.face_value_fen == 10_000
    assert c.spend_threshold_fen == 20_000
    assert c.claim_opens == date(2024, 8, 16)
    assert c.certificate_issued_from == date(2024, 8, 16)
    assert c.certificate_issued_to == date(2025, 1, 31)
    assert c.validity_days == 90
    assert c.validity_counting is ValidityCounting.CIVIL_CODE
    assert c.hard_end == date(2025, 4, 30)
    assert c.phases == (
        Phase(date(2024, 8, 16), date(2024, 11, 30), 20, 40, 40),
        Phase(date(2024, 12, 1), date(2025, 1, 31), 10, 20, 20),
    )
    assert c.tier_threshold_fen == 100_000_000
    assert c.tier_basis is TierBasis.TOTAL_PRICE
    assert c.tier_threshold_inclusive is True
    assert c.partial_refund_policy is PartialRefundPolicy.KEEP_FLOOR
    assert c.settlement_payment_day == 15
    assert c.last_payment_due == date(2025, 5, 15)
    assert c.qr_token_ttl_seconds == 60
    assert c.idempotency_retention_hours == 24


def test_every_choice_of_the_spec_is_a_commented_parameter_citing_its_rule() -> None:
    text = LIAOCHENG_FILE.read_text(encoding="utf-8")
    for rule in ("A2", "V1", "F2", "C1", "U5"):
        assert f"rule {rule} [choice]" in text.replace("Rule", "rule"), rule


def test_the_demo_campaign_has_the_same_rules_two_years_later() -> None:
    real = load_bundled_campaign("liaocheng-2024")
    demo = load_bundled_campaign("liaocheng-demo")
    assert demo.id == "liaocheng-demo"
    assert demo.claim_opens == date(2026, 8, 16)
    assert (demo.certificate_issued_from, demo.certificate_issued_to) == (
        date(2026, 8, 16),
        date(2027, 1, 31),
    )
    assert [(p.starts, p.ends) for p in demo.phases] == [
        (date(2026, 8, 16), date(2026, 11, 30)),
        (date(2026, 12, 1), date(2027, 1, 31)),
    ]
    assert demo.hard_end == date(2027, 4, 30)
    assert demo.last_payment_due == date(2027, 5, 15)
    same = (
        "districts",
        "issuing_districts",
        "usable_districts",
        "face_value_fen",
        "spend_threshold_fen",
        "validity_days",
        "tier_threshold_fen",
        "tier_basis",
        "tier_threshold_inclusive",
        "partial_refund_policy",
    )
    for name in same:
        assert getattr(demo, name) == getattr(real, name), name
    assert [(p.housing_low_bp, p.housing_high_bp, p.non_housing_bp) for p in demo.phases] == [
        (20, 40, 40),
        (10, 20, 20),
    ]


def test_the_bundled_directory_holds_both_campaigns() -> None:
    loaded = load_campaign_files(sorted(bundled_campaigns_dir().glob("*.toml")))
    assert set(loaded) == {"liaocheng-2024", "liaocheng-demo"}


def test_a_second_county_loads_its_own_parameters() -> None:
    c = load_campaign(DATA / "chiping-2025.toml")
    assert c.id == "chiping-2025"
    assert c.issuing_districts == frozenset({"chiping"})
    assert c.districts["chiping"].full_name == "茌平区"  # full_name defaults to name
    assert (c.face_value_fen, c.spend_threshold_fen, c.validity_days) == (5_000, 10_000, 30)
    assert c.tier_basis is TierBasis.BASE
    assert c.tier_threshold_inclusive is False


@pytest.mark.parametrize("path", [LIAOCHENG_FILE, DATA / "chiping-2025.toml"])
def test_campaign_to_dict_is_json_and_loads_back_to_the_same_campaign(path: Path) -> None:
    c = load_campaign(path)
    as_json = json.dumps(campaign_to_dict(c), ensure_ascii=False)
    assert load_campaign_dict(json.loads(as_json)) == c


def test_a_campaign_is_immutable_and_hashable() -> None:
    c = load_campaign(LIAOCHENG_FILE)
    with pytest.raises(AttributeError):
        c.face_value_fen = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.districts["x"] = District("x", "x", "x")  # type: ignore[index]
    assert {c: 1}[c] == 1


# --- bad campaign files: each error names the file, the key path and the problem ---------


def mutate(change: Callable[[dict[str, Any]], object]) -> CampaignConfigInvalid:
    doc = liaocheng_doc()
    change(doc)
    return problems_of(doc)


def test_a_missing_key_is_named() -> None:
    err = mutate(lambda d: d.pop("hard_end"))
    assert err.message == "bad.toml: hard_end: missing required key"


def test_an_unknown_key_is_an_error() -> None:
    err = mutate(lambda d: d.update(face_value=100))
    assert "face_value: unknown key" in err.message


def test_an_unknown_key_inside_a_phase_is_an_error() -> None:
    err = mutate(lambda d: d["phases"][1].update(housing_bp=5))
    assert "phases[1].housing_bp: unknown key" in err.message


def test_a_wrong_type_in_a_phase_names_its_index_and_key() -> None:
    err = mutate(lambda d: d["phases"][1].update(housing_low_bp="10"))
    assert err.message == "bad.toml: phases[1].housing_low_bp: must be an integer, got string"
    assert err.details["problems"] == [
        {"path": "phases[1].housing_low_bp", "problem": "must be an integer, got string"}
    ]


def test_a_negative_amount_is_refused() -> None:
    err = mutate(lambda d: d.update(face_value_fen=-100))
    assert "face_value_fen: must not be negative" in err.message


def test_a_boolean_where_an_integer_is_expected_is_refused() -> None:
    err = mutate(lambda d: d.update(validity_days=True))
    assert "validity_days: must be an integer, got boolean" in err.message


def test_a_float_amount_is_refused() -> None:
    err = mutate(lambda d: d.update(spend_threshold_fen=20000.0))
    assert "spend_threshold_fen: must be an integer, got float" in err.message


def test_an_unknown_district_in_usable_districts_is_named_with_its_index() -> None:
    err = mutate(lambda d: d.update(usable_districts=["dongchangfu", "chiping"]))
    assert "usable_districts[1]: unknown district code 'chiping'" in err.message


def test_an_empty_issuing_district_list_is_refused() -> None:
    err = mutate(lambda d: d.update(issuing_districts=[]))
    assert "issuing_districts: must name at least one district" in err.message


def test_overlapping_phases_are_refused() -> None:
    err = mutate(lambda d: d["phases"][1].update(starts=date(2024, 11, 30)))
    assert "phases[1].starts" in err.message
    assert "overlaps phases[0]" in err.message


def test_a_gap_between_phases_is_refused() -> None:
    err = mutate(lambda d: d["phases"][1].update(starts=date(2024, 12, 2)))
    assert "phases[1].starts: gap after phases[0]" in err.message


def test_phases_not_covering_the_certificate_window_are_refused() -> None:
    err = mutate(lambda d: d["phases"][1].update(ends=date(2025, 1, 30)))
    assert "phases[1].ends" in err.message
    assert "cover the certificate window" in err.message


def test_a_phase_ending_before_it_starts_is_refused() -> None:
    err = mutate(lambda d: d["phases"][0].update(ends=date(2024, 8, 1)))
    assert "phases[0].ends: 2024-08-01 is before starts 2024-08-16" in err.message


def test_a_rate_above_one_hundred_percent_is_refused() -> None:
    err = mutate(lambda d: d["phases"][0].update(non_housing_bp=10_001))
    assert "phases[0].non_housing_bp: must be between 0 and 10000" in err.message


def test_hard_end_before_claim_opens_is_refused() -> None:
    err = mutate(lambda d: d.update(hard_end=date(2024, 8, 1)))
    assert "hard_end: 2024-08-01 is before claim_opens 2024-08-16" in err.message


def test_a_spend_threshold_below_the_face_value_is_refused() -> None:
    err = mutate(lambda d: d.update(spend_threshold_fen=5_000))
    assert "spend_threshold_fen: 5000 is below face_value_fen 10000" in err.message


def test_an_unsupported_choice_lists_the_allowed_values() -> None:
    err = mutate(lambda d: d.update(tier_basis="area"))
    assert "tier_basis: 'area' is not supported (allowed: 'total_price', 'base')" in err.message


def test_a_datetime_where_a_date_is_expected_is_refused() -> None:
    err = mutate(lambda d: d.update(claim_opens="2024-08-16T00:00"))
    assert "claim_opens: must be a date YYYY-MM-DD" in err.message


def test_an_unknown_time_zone_is_refused() -> None:
    err = mutate(lambda d: d.update(timezone="Asia/Liaocheng"))
    assert "timezone: 'Asia/Liaocheng' is not a known IANA time zone" in err.message


def test_a_qr_code_cannot_be_made_to_live_over_a_minute() -> None:
    # rule U5 (issue 11 item 2): minting such a code failed with a 500 at every wallet
    err = mutate(lambda d: d.update(qr_token_ttl_seconds=61))
    assert "qr_token_ttl_seconds" in err.message and "60" in err.message


def test_all_problems_are_reported_at_once() -> None:
    def change(d: dict[str, Any]) -> None:
        d.pop("name")
        d["qr_token_ttl_seconds"] = 0
        d["districts"]["jingkai"].pop("name")

    err = mutate(change)
    assert err.message.startswith("bad.toml: 3 problems in campaign:")
    for path in ("name", "qr_token_ttl_seconds", "districts.jingkai.name"):
        assert f"  {path}: " in err.message


def test_invalid_toml_names_the_source_and_line(tmp_path: Path) -> None:
    with pytest.raises(CampaignConfigInvalid) as info:
        load_campaign_text('id = "x"\nname = \n', source="county.toml")
    assert info.value.message.startswith("county.toml: not valid TOML:")
    assert "line 2" in info.value.message


def test_a_bad_file_is_named_by_its_path(tmp_path: Path) -> None:
    text = LIAOCHENG_FILE.read_text(encoding="utf-8").replace(
        "face_value_fen = 10_000", 'face_value_fen = "100"'
    )
    path = tmp_path / "county.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CampaignConfigInvalid) as info:
        load_campaign(path)
    assert info.value.message == f"{path}: face_value_fen: must be an integer, got string"


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(CampaignConfigInvalid, match="cannot read campaign file"):
        load_campaign(tmp_path / "nope.toml")


def test_two_files_with_the_same_campaign_id_are_refused(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(LIAOCHENG_FILE.read_text(encoding="utf-8"), "utf-8")
    with pytest.raises(CampaignConfigInvalid, match="already defined"):
        load_campaign_files([tmp_path / "a.toml", tmp_path / "b.toml"])


def test_a_document_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(CampaignConfigInvalid, match="<root>: must be a table"):
        load_campaign_dict([], source="x")  # type: ignore[arg-type]


def test_campaign_is_a_plain_frozen_dataclass() -> None:
    assert Campaign.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_the_last_payment_must_come_after_the_hard_end() -> None:
    # rule S1
    err = mutate(lambda d: d.update(last_payment_due=date(2025, 4, 30)))
    assert "last_payment_due: 2025-04-30 must be after hard_end 2025-04-30" in err.message


def test_certificates_issued_after_the_hard_end_would_be_unclaimable() -> None:
    # rule E2/V3
    err = mutate(lambda d: d.update(hard_end=date(2025, 1, 30)))
    assert "hard_end: 2025-01-30 is before certificate_issued_to 2025-01-31" in err.message


def test_a_certificate_window_ending_before_it_starts_is_refused() -> None:
    # rule E2
    err = mutate(lambda d: d.update(certificate_issued_to=date(2024, 8, 1)))
    assert "certificate_issued_to: 2024-08-01 is before certificate_issued_from" in err.message
