"""Small in-process memories for the hot path (see docs/BENCHMARKS.md for what they save).

Nothing here decides correctness: a remembered quote only spares the redeem its read; the
redeem's single write statement re-checks everything it relies on (rule U7).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

from shared.tokens import QrClaims, QrKey, check_qr_times, decode_qr_token

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

    def take(self, key: K, now: datetime) -> V | None:
        """``get`` and forget: the value, if there is one and it has not expired."""
        found = self._items.pop(key, None)
        if found is None or now >= found[0]:
            return None
        return found[1]

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class QrVerifier:
    """Rule U5: the citizen's code, checked against the server's QR keys (the current and the
    previous one) at ``now``.

    What a code says does not depend on the time (``decode_qr_token``: shape, key, MAC,
    lifetime), so a code read once is remembered as read, and its redeem after its quote only
    checks the times again (``check_qr_times``). A read (a regular expression, two HMACs, a
    SHA-256, a UUID, two datetimes) was about 100k instructions, a look-up here is a few
    hundred (issue 15, docs/BENCHMARKS.md). Only codes that verified are remembered; at
    most ``size``, forgotten all at once when full."""

    def __init__(self, keys: Mapping[str, QrKey], size: int = 20_000) -> None:
        self.keys = dict(keys)
        self.size = size
        self._read: dict[str, QrClaims] = {}

    def verify(self, token: str, now: datetime) -> QrClaims:
        return check_qr_times(self.read(token), now)

    def read(self, token: str) -> QrClaims:
        """What the code says, its MAC checked but not its times: a till asking by key what
        became of a request names the request's citizen by its code, which may have expired
        since (``server/services/guarded.py`` ``holder_of``)."""
        claims = self._read.get(token)
        if claims is None:
            claims = decode_qr_token(token, keys=self.keys)
            if len(self._read) >= self.size:
                self._read.clear()
            self._read[token] = claims
        return claims
