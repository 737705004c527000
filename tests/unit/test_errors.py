"""The one error hierarchy: stable, unique, snake_case codes; JSON-able details."""

import json
import re
from datetime import date

import pytest

from shared import errors
from shared.errors import (
    CampaignConfigInvalid,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidAmount,
    InvalidIdNumber,
    InvalidInput,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
    VoucherError,
    error_classes,
)

REQUIRED_CODES = {
    "invalid_id_number",
    "invalid_amount",
    "invalid_request",
    "certificate_not_yours",
    "certificate_not_eligible",
    "certificate_already_claimed",
    "no_vouchers_due",
    "campaign_not_started",
    "campaign_ended",
    "voucher_expired",
    "wrong_district",
    "merchant_not_permitted",
    "merchant_suspended",
    "terminal_disabled",
    "bill_too_small",
    "too_many_vouchers",
    "not_enough_vouchers",
    "bill_already_redeemed",
    "token_invalid",
    "token_expired",
    "token_replayed",
    "already_settled",
    "refund_invalid",
    "participation_revoked",
    "campaign_config_invalid",
    "idempotency_key_in_use",
    "idempotency_key_reused",
}

CATEGORIES = (
    InvalidInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Refused,
    ConfigError,
    Unavailable,
)


def test_every_code_the_spec_needs_exists() -> None:
    assert set(error_classes()) >= REQUIRED_CODES


def test_every_error_class_defines_its_own_unique_snake_case_code() -> None:
    classes = [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, VoucherError) and obj is not VoucherError
    ]
    codes = [cls.__dict__.get("code") for cls in classes]
    assert None not in codes, "a subclass inherits its parent's code"
    assert len(codes) == len(set(codes))
    for code in codes:
        assert isinstance(code, str)
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code), code
    assert set(error_classes()) == set(codes)


def test_error_classes_maps_each_code_to_its_class() -> None:
    for code, cls in error_classes().items():
        assert cls.code == code


def test_every_concrete_error_belongs_to_exactly_one_category() -> None:
    for cls in error_classes().values():
        if cls in CATEGORIES:
            continue
        assert sum(issubclass(cls, cat) for cat in CATEGORIES) == 1, cls


def test_rule_bearing_errors_cite_their_rule_id_in_the_docstring() -> None:
    for code in REQUIRED_CODES - {
        "invalid_amount",
        "invalid_request",
        "campaign_not_started",
    }:
        doc = error_classes()[code].__doc__ or ""
        assert re.search(r"Rules? [A-Z][0-9]", doc), code


def test_errors_know_nothing_of_http() -> None:
    # issue 10: a category, never a status; one table at the HTTP edge maps them
    assert [c.category for c in CATEGORIES] == [
        "invalid_input",
        "unauthenticated",
        "forbidden",
        "not_found",
        "conflict",
        "refused",
        "config",
        "unavailable",
    ]
    for cls in error_classes().values():
        assert not any("http_status" in vars(k) for k in cls.__mro__), cls


def test_the_edge_maps_categories_to_the_documented_http_statuses() -> None:
    from server.web import status_of

    assert [status_of(c()) for c in CATEGORIES] == [400, 401, 403, 404, 409, 422, 500, 503]
    overrides = {"token_invalid": 422, "token_replayed": 409, "body_too_large": 413}
    overrides |= {"too_many_attempts": 429, "rate_limited": 429, "idempotency_key_reused": 422}
    for code, status in overrides.items():
        assert status_of(error_classes()[code]()) == status, code


def test_invalid_input_is_a_value_error() -> None:
    assert issubclass(InvalidIdNumber, ValueError)
    assert issubclass(InvalidAmount, ValueError)


def test_an_error_without_message_uses_its_default_message() -> None:
    err = InvalidAmount()
    assert err.message == InvalidAmount.default_message
    assert str(err) == InvalidAmount.default_message
    assert err.details == {}


def test_details_are_normalised_to_plain_json() -> None:
    err = CampaignConfigInvalid(
        "bad", day=date(2024, 8, 16), codes=frozenset({"b", "a"}), pair=(1, 2)
    )
    body = err.to_dict()
    assert body == {
        "code": "campaign_config_invalid",
        "message": "bad",
        "details": {"day": "2024-08-16", "codes": ["a", "b"], "pair": [1, 2]},
    }
    json.dumps(body)


def test_a_detail_that_is_not_json_able_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        InvalidAmount("x", blob=object())
