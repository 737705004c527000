"""Every Redis key the server uses, each with a hash tag (issue 14, Redis Cluster).

In a cluster a key lives in the slot of its tag (the part in braces), and a Lua script may
only touch keys of one slot. So each key is named after what it belongs to, and each script
touches the keys of one owner only:

- a citizen ``{c:<subject>}``: the QR token ids used (a token names its citizen, rule U5),
  the citizen's redemption lock, the Idempotency-Keys at work on the citizen's requests
  (rule U7), and the citizen's claim and QR-minting throttles;
- an account ``{a:<account>}``: its sign-in counters (``server/throttle.py``).

So everything one redemption (or house ticket use) touches lives in one slot, its citizen's,
and each step is one script (``server/guard.py``), on a cluster as on a single Redis, where
the tags change nothing.

Why the key's mark is the citizen's and not the terminal's: a request and its retries under
one key carry the same QR code (the same body, rule U7), so the same citizen, and the mark
catches them there. A key sent again with another citizen's code is another body, which
the mark of the first citizen does not see: the ledger's unique ``(terminal_id,
idempotency_key)`` lets one of the two write and answers the other
``idempotency_key_reused``, as it does for every request whenever Redis cannot say (rule U7
never rested on the mark). The price: a till asking by key what became of a request
(``Guard.in_flight``) names the citizen too, by sending the request's code in the
``Voucher-Code`` header (``server/services/guarded.py`` ``holder_of``, ``still_at_work``).
"""

from __future__ import annotations


def citizen_tag(citizen: str) -> str:
    return f"{{c:{citizen}}}"


def used_token(citizen: str, jti: str) -> str:
    """A QR token id already redeemed (a filter in front of the ledger's consumed_tokens)."""
    return f"qr:used:{citizen_tag(citizen)}:{jti}"


def citizen_lock(citizen: str) -> str:
    return f"lock:citizen:{citizen_tag(citizen)}"


def key_at_work(citizen: str, terminal_id: int, key: str) -> str:
    """A terminal's Idempotency-Key whose request, for ``citizen``, is at work now."""
    return f"idem:{citizen_tag(citizen)}:{terminal_id}:{key}"


def sign_in_counters(account: str, client: str) -> tuple[str, str]:
    """The (account, client address) count and the account's own count of sign-in guesses."""
    tag = f"{{a:{account}}}"
    return f"throttle:signin:{tag}:client:{client}", f"throttle:signin:{tag}:account"


def claim_counter(citizen: str) -> str:
    return f"throttle:claim:{citizen_tag(citizen)}"


def mint_rate(citizen: str) -> str:
    return f"throttle:qr:{citizen_tag(citizen)}"
