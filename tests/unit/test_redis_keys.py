"""Issue 14: every key one Lua script touches lies in one hash slot of a Redis Cluster, and
keys of different owners are not tied to one slot (server/redis_keys.py)."""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from server import redis_keys
from server.guard import _citizen_keys


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_a_citizens_keys_share_one_slot_whatever_the_token_or_the_throttle() -> None:
    citizen = str(uuid.uuid4())
    one, other = _citizen_keys("jti-1", citizen), _citizen_keys("jti-2", citizen)
    keys = [  # the guard's begin and end (rule U5), the claim and QR-minting throttles
        *one,
        *other,
        redis_keys.claim_counter(citizen),
        redis_keys.mint_rate(citizen),
    ]
    assert len({slot(k) for k in keys}) == 1
    assert one[0] != other[0] and one[1] == other[1]  # two tokens, one lock


def test_an_accounts_sign_in_counters_and_back_offs_share_one_slot() -> None:
    per_client, per_account = redis_keys.sign_in_counters("terminal:42", "203.0.113.7")
    # the throttle's TAKE script touches each counter and its back-off key
    keys = [per_client, per_client + ":backoff", per_account, per_account + ":backoff"]
    assert len({slot(k) for k in keys}) == 1
    other, _ = redis_keys.sign_in_counters("terminal:42", "198.51.100.1")
    assert slot(other) == slot(per_client)


def test_a_key_at_work_is_the_terminals_and_spreads_over_the_slots() -> None:
    # found by terminal and key alone (Guard.in_flight); one terminal's keys share a slot
    assert slot(redis_keys.key_at_work(7, "a")) == slot(redis_keys.key_at_work(7, "b"))
    terminals = {slot(redis_keys.key_at_work(t, "k")) for t in range(1, 200)}
    citizens = {slot(redis_keys.citizen_lock(str(uuid.uuid4()))) for _ in range(200)}
    assert len(terminals) > 150 and len(citizens) > 150  # spread: no hot slot by design


def test_every_key_carries_a_hash_tag() -> None:
    names = [
        *_citizen_keys("jti", "c"),
        redis_keys.key_at_work(1, "k"),
        *redis_keys.sign_in_counters("staff:alice", "::1"),
        redis_keys.claim_counter("c"),
        redis_keys.mint_rate("c"),
    ]
    for name in names:
        tag = name[name.index("{") + 1 : name.index("}")]
        assert tag, name
