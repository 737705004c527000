"""Small in-process memories for the hot path (see docs/BENCHMARKS.md for what they save).

Nothing here decides correctness: a cached QR verification still has its times checked on
every use, and a remembered quote only spares the redeem its read; the redeem's single write
statement re-checks everything it relies on (rule U7).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

from shared.tokens import QrClaims, VerifyingKey, check_qr_times, decode_qr_token

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringLru(Generic[K, V]):
    """At most ``size`` entries, each forgotten at its own expiry instant."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, tuple[datetime, V]] = OrderedDict()

    def get(self, key: K, now: datetime) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        expires, value = found
        if now >= expires:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V, expires: datetime) -> None:
        self._items[key] = (expires, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class QrVerifier:
    """Rule U5. The till sends the same token to quote and then to redeem: its signature is
    checked once; its times are checked against ``now`` on every use."""

    def __init__(
        self, keys: Mapping[str, VerifyingKey], issuer: str, audience: str, size: int = 20_000
    ) -> None:
        self.keys = dict(keys)
        self.issuer = issuer
        self.audience = audience
        self._verified: ExpiringLru[str, QrClaims] = ExpiringLru(size)

    def verify(self, token: str, now: datetime) -> QrClaims:
        claims = self._verified.get(token, now)
        if claims is None:
            claims = decode_qr_token(
                token, keys=self.keys, issuer=self.issuer, audience=self.audience
            )
            self._verified.put(token, claims, claims.expires_at)
        return check_qr_times(claims, now)
