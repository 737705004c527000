"""Issue 15: the till's JSON goes through msgspec, in and out, without changing a byte that
matters: the request hash a redemption or refund is kept under (rule U7) is the one the
``json.dumps`` form gave, so a retry across an upgrade still finds its first answer; an answer
decodes to the same value as ``json_response`` wrote."""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from server.handlers.till import _iso, _iso_date, request_hash
from server.schemas import RedeemRequest, RefundRequest
from server.web import JSON_CONTENT_TYPE, json_answer, struct_fields

# any text but lone surrogates (the decoder refuses those before a hash is made)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
FEN = st.integers(min_value=0, max_value=10**12)


def _before(method: str, path: str, fields: dict[str, Any]) -> bytes:
    """The request hash as it was made before issue 15 (json.dumps)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).digest()


@given(token=TEXT, bill=FEN, receipt=TEXT, count=st.integers(min_value=1, max_value=100_000))
def test_a_redemption_keeps_its_hash(token: str, bill: int, receipt: str, count: int) -> None:
    body = RedeemRequest(token=token, bill_fen=bill, receipt_no=receipt, voucher_count=count)
    request = make_mocked_request("POST", "/v1/redemptions")
    assert request_hash(request, body) == _before("POST", "/v1/redemptions", struct_fields(body))


@given(remaining=FEN)
def test_a_refund_keeps_the_hash_it_had(remaining: int) -> None:
    body = RefundRequest(remaining_bill_fen=remaining)
    request = make_mocked_request("POST", "/v1/redemptions/7/refunds")
    assert request_hash(request, body) == _before(
        "POST", "/v1/redemptions/7/refunds", struct_fields(body)
    )


def test_the_hash_tells_bodies_and_routes_apart() -> None:
    one = RedeemRequest(token="t", bill_fen=500, receipt_no="R-1", voucher_count=1)
    other = RedeemRequest(token="t", bill_fen=500, receipt_no="R-1", voucher_count=2)
    at = make_mocked_request("POST", "/v1/redemptions")
    elsewhere = make_mocked_request("POST", "/v1/redemptions/1/refunds")
    assert request_hash(at, one) != request_hash(at, other)
    assert request_hash(at, one) != request_hash(elsewhere, one)


@pytest.mark.parametrize(
    "body",
    [
        {"citizen": {"masked_id": "3715********1234"}, "merchant": {"id": 1, "name": "面馆"}},
        {"error": {"code": "token_invalid", "message": 'a "quoted" \\ path', "details": {}}},
        [1, "二", None, True],
    ],
)
def test_an_answer_decodes_to_what_json_response_wrote(body: Any) -> None:
    answer = json_answer(body, status=201, headers={"Idempotent-Replay": "true"})
    assert answer.status == 201
    assert answer.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert answer.headers["Idempotent-Replay"] == "true"
    assert isinstance(answer.body, bytes)
    assert json.loads(answer.body) == json.loads(json.dumps(body))
    assert msgspec.json.decode(answer.body) == body


_ZONES = sorted(zoneinfo.available_timezones())


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.sampled_from([*_ZONES, "UTC"]),
)
def test_times_are_written_as_isoformat_writes_them(moment: datetime, zone: str) -> None:
    # issue 15: msgspec writes the answers' times; the text is isoformat's to the byte,
    # offsets of zero ("+00:00", not "Z") and of seconds (local mean time) included
    tz = zoneinfo.ZoneInfo(zone)
    assert _iso(moment, tz) == moment.astimezone(tz).isoformat()


def test_every_zone_since_1973_is_written_as_isoformat_writes_it() -> None:
    # the cut-over of ``_iso``: every zone's offsets from 1973 to 2040, sampled every 97
    # days and some (both seasons, any time of day), a microsecond apart
    for zone in _ZONES:
        tz = zoneinfo.ZoneInfo(zone)
        moment = datetime(1973, 1, 1, tzinfo=UTC)
        while moment.year < 2040:
            for at in (moment, moment + timedelta(days=180), moment + timedelta(microseconds=1)):
                assert _iso(at, tz) == at.astimezone(tz).isoformat(), (zone, at)
            moment += timedelta(days=97, hours=5, minutes=7, seconds=11, microseconds=13)


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_dates_are_written_as_isoformat_writes_them(day: date) -> None:
    assert _iso_date(day) == day.isoformat()
