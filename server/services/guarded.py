"""A till's write under Redis's guard, for every kind the till takes: a voucher redemption
(``server/services/redemption.py``, rules U1-U7) and a house ticket's use at a developer's
sales office (``server/services/ticket_uses.py``, rules T5-T8 with U5 and U7).

Both go the same way once the citizen's QR code is verified:

1. Ask the guard (``server/guard.py``) to refuse a used code, mark the key in flight and take
   the citizen's lock. A used code or a key in flight gets the key's first answer, or a
   refusal. Redis only makes contention cheap; the ledger decides (U7).
2. The work itself, the citizen's lock held (Redis's, or this process's while Redis is
   unavailable), or not had in time (``BUSY``: the ledger's fences alone decide).
3. A refusal of the request is kept under the key (U7), so a retry gets the same answer even
   after the ledger changed; a refusal about the key itself is never kept.
4. Tell the guard the outcome, after the answer is on its way.

And for a till that lost the answer and asks by its key (``still_at_work``): "still at work"
is known only in the citizen's Redis slot, where the guard marks the key (issue 14), so the
till names the citizen by sending the request's QR code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from server.db import Conn
from server.db import redemptions as db
from server.guard import Outcome
from server.services.ports import TillPorts
from shared.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    TokenReplayed,
    VoucherCodeRequired,
    VoucherError,
)
from shared.tokens import QrClaims


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal kept under the key (rule U7): the status and body of its first answer."""

    status: int
    answer: dict[str, Any]
    replay: bool = False

    @property
    def code(self) -> str:
        return str(self.answer.get("error", {}).get("code", ""))


@dataclass(frozen=True, slots=True)
class Keyed:
    """A till's request under its Idempotency-Key: the terminal, the key, the body's digest."""

    terminal_id: int
    key: str
    digest: bytes


R = TypeVar("R")
# the key's first answer (a success of its kind, or a kept refusal), as of now; None if none
StoredAnswer = Callable[[Conn, datetime], Awaitable[R | Refused | None]]


def holder_of(ports: TillPorts, code: str | None) -> str | None:
    """The citizen a request's QR code names (as the guard names it), or None without a code.
    Its MAC is checked, not its times: the till may ask after the code expired. A forged or
    garbled code is refused (``token_invalid``) and nothing else is answered."""
    if code is None:
        return None
    return str(ports.qr_verifier.read(code).holder)


async def still_at_work(ports: TillPorts, terminal_id: int, key: str, holder: str | None) -> None:
    """Rule U7, for a till asking by ``key`` while the ledger has nothing under it: raises
    ``IdempotencyKeyInUse`` while the request is at work, so the till does not hear "never
    happened" too early; returns when it is not (then nothing was written). Without the
    request's citizen (``holder``, from its code) the guard's mark cannot be found, so the
    answer is ``VoucherCodeRequired``: not "not found", which could be false, and not "in
    use", which a till would ask again forever."""
    if holder is None:
        raise VoucherCodeRequired(
            "nothing is kept under this key: send the request's QR code (Voucher-Code) to "
            "tell whether it is still at work"
        )
    if await ports.guard.in_flight(holder, terminal_id, key):
        raise IdempotencyKeyInUse("the request with this key is still in progress")


async def kept_refusal(conn: Conn, asked: Keyed) -> Refused | None:
    """Rule U7: the refusal kept under the key, if any; another body under the same key is
    refused ``idempotency_key_reused``."""
    refused = await db.refusal_by_key(conn, asked.terminal_id, asked.key)
    if refused is None:
        return None
    if refused.request_hash != asked.digest:
        raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
    return Refused(refused.status, refused.answer, replay=True)


async def stored_now(ports: TillPorts, stored: StoredAnswer[R]) -> R | Refused | None:
    """The key's first answer, read on a connection of its own."""
    async with ports.pool.acquire() as conn:
        return await stored(conn, ports.clock())


async def keep_refusal(
    ports: TillPorts, asked: Keyed, exc: VoucherError, stored: StoredAnswer[R]
) -> R | Refused:
    """Rule U7, as payment APIs do it: a request that began and was refused keeps its answer
    under its key, and a retry with the same key and body gets that answer even if the
    ledger changed since. A success written under the same key by a concurrent request
    (Redis down) comes first."""
    status, answer = ports.refusal_answer(exc)
    async with ports.pool.acquire() as conn:
        found = await stored(conn, ports.clock())
        if found is not None:
            return found
        kept = await db.keep_refusal(
            conn,
            terminal_id=asked.terminal_id,
            key=asked.key,
            request_hash=asked.digest,
            status=status,
            answer=answer,
            now=ports.clock(),
        )
        if not kept:  # a concurrent request with this key kept its refusal first
            found = await stored(conn, ports.clock())
            if found is not None:
                return found
    return Refused(status, answer)


async def under_guard(
    ports: TillPorts,
    asked: Keyed,
    claims: QrClaims,
    *,
    work: Callable[[bool], Awaitable[R]],
    stored: StoredAnswer[R],
    succeeded: Callable[[R], bool],
    count: Callable[[str], None],
) -> R | Refused:
    """Steps 1-4 above. ``work(locked)`` does the request (``locked``: the citizen's lock is
    held) and raises a domain error to refuse it; ``succeeded`` says whether its result used
    the QR code (not when it is the key's first answer, a refusal); ``count`` is told each
    refusal's code. Raises the errors about the key (never kept)."""
    guard, citizen = ports.guard, str(claims.holder)
    jti = str(claims.jti)
    outcome, lock = await guard.begin(
        jti=jti, citizen=citizen, terminal_id=asked.terminal_id, key=asked.key
    )
    if outcome is Outcome.UNAVAILABLE:
        ports.metrics.redis_failures.inc()  # Redis failed or skipped; not a lock wait (BUSY)
    used = False
    try:
        if outcome in (Outcome.REPLAYED, Outcome.IN_FLIGHT):
            found = await stored_now(ports, stored)
            if found is not None:
                return found
            if outcome is Outcome.IN_FLIGHT:
                raise IdempotencyKeyInUse("a request with this Idempotency-Key is in progress")
            raise TokenReplayed("this QR code was already used; ask the citizen to refresh it")
        if outcome is Outcome.UNAVAILABLE:
            # item 11: Redis down or skipped: the citizen's lock in this process instead (the
            # ledger's own fences still decide, rule U7)
            async with guard.local_lock(citizen) as held:
                result = await work(held)
        else:
            result = await work(outcome is Outcome.OK)
        used = succeeded(result)  # not when the key's first answer was a refusal
        return result
    except (IdempotencyKeyInUse, IdempotencyKeyReused) as exc:
        count(exc.code)
        raise  # about the key, not the request: nothing to keep
    except VoucherError as exc:
        count(exc.code)
        return await keep_refusal(ports, asked, exc, stored)
    finally:
        if outcome not in (Outcome.UNAVAILABLE, Outcome.BUSY):  # else nothing of ours there
            ttl = int((claims.expires_at - ports.clock()).total_seconds() * 1000) + 5000
            guard.end_soon(
                token=lock,
                jti=jti,
                citizen=citizen,
                terminal_id=asked.terminal_id,
                key=asked.key,
                used=used,
                jti_ttl_ms=ttl,
            )
