"""Every Redis key the server uses, each with a hash tag (issue 14, Redis Cluster).

In a cluster a key lives in the slot of its tag (the part in braces), and a Lua script may
only touch keys of one slot. So each key is named after what it belongs to, and each script
touches the keys of one owner only:

- a citizen ``{c:<subject>}``: the QR token ids used (a token names its citizen, rule U5),
  the citizen's redemption lock, and the citizen's claim and QR-minting throttles;
- a terminal ``{t:<terminal id>}``: the Idempotency-Keys at work (rule U7; a till asks by
  key alone what became of a request, ``Guard.in_flight``);
- an account ``{a:<account>}``: its sign-in counters (``server/throttle.py``).

A redemption therefore touches two slots, the citizen's and the terminal's, with one
single-slot script each, sent in the same pipeline (``server/guard.py``). On a single Redis
the tags change nothing.
"""

from __future__ import annotations


def citizen_tag(citizen: str) -> str:
    return f"{{c:{citizen}}}"


def used_token(citizen: str, jti: str) -> str:
    """A QR token id already redeemed (a filter in front of the ledger's consumed_tokens)."""
    return f"qr:used:{citizen_tag(citizen)}:{jti}"


def citizen_lock(citizen: str) -> str:
    return f"lock:citizen:{citizen_tag(citizen)}"


def key_at_work(terminal_id: int, key: str) -> str:
    """An Idempotency-Key whose request is at work now."""
    return f"idem:{{t:{terminal_id}}}:{key}"


def sign_in_counters(account: str, client: str) -> tuple[str, str]:
    """The (account, client address) count and the account's own count of sign-in guesses."""
    tag = f"{{a:{account}}}"
    return f"throttle:signin:{tag}:client:{client}", f"throttle:signin:{tag}:account"


def claim_counter(citizen: str) -> str:
    return f"throttle:claim:{citizen_tag(citizen)}"


def mint_rate(citizen: str) -> str:
    return f"throttle:qr:{citizen_tag(citizen)}"
