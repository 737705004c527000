"""Decode and validate one redeem body: msgspec (``server.web.decode_body`` with the
``RedeemRequest`` Struct, as the edge does it) against ``json.loads`` followed by the hand
checks the handler made before (issue 9). Prints ns per body for both.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_decode.py [--number 200000]
"""

from __future__ import annotations

import argparse
import json
import re
import timeit
from functools import partial
from typing import Any

from server.schemas import RedeemRequest
from server.web import decode_body, struct_fields
from shared.money import parse_fen
from shared.rules import normalise_receipt_no

BODY = json.dumps(
    {
        "token": "eyJhbGciOiJFUzI1NiIsImtpZCI6InFyLTEiLCJ0eXAiOiJKV1QifQ." + "x" * 300 + ".sig",
        "bill_fen": 40_000,
        "receipt_no": "R20240910-0001",
        "voucher_count": 2,
    }
).encode()
_CONTROL = re.compile(r"[\x00-\x1f]")
FIELDS = ("token", "bill_fen", "receipt_no", "voucher_count")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def by_hand(data: bytes) -> dict[str, Any]:
    """What read_json and the redeem handler did before: json.loads, then a check per field."""
    body = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    if set(body) - set(FIELDS):
        raise ValueError("unknown fields")
    parse_fen(body.get("bill_fen"), positive=True, field="bill_fen")
    normalise_receipt_no(body.get("receipt_no"))  # type: ignore[arg-type]
    count = body.get("voucher_count")
    if type(count) is not int or not 1 <= count <= 100_000:
        raise ValueError("voucher_count")
    token = body.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > 2048:
        raise ValueError("token")
    if _CONTROL.search(token):
        raise ValueError("token")
    return body


def with_msgspec(data: bytes) -> dict[str, Any]:
    """What the edge does now: one typed decode, and the dict handlers still get."""
    return struct_fields(decode_body(data, RedeemRequest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    assert by_hand(BODY) == with_msgspec(BODY)
    for name, fn in (("json.loads + hand checks", by_hand), ("msgspec Struct", with_msgspec)):
        best = min(timeit.repeat(partial(fn, BODY), number=args.number, repeat=5))
        print(f"{name:26} {best / args.number * 1e9:8.0f} ns per body ({len(BODY)} bytes)")


if __name__ == "__main__":
    main()
