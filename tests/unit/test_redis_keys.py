"""Issue 14: every key one Lua script touches lies in one hash slot of a Redis Cluster, every
key of one redemption in its citizen's, and keys of different owners are not tied to one
slot (server/redis_keys.py)."""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from server import redis_keys
from server.guard import _keys


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_a_citizens_keys_share_one_slot_whatever_the_token_the_till_or_the_key() -> None:
    citizen = str(uuid.uuid4())
    one, other = _keys("jti-1", citizen, 7, "key-1"), _keys("jti-2", citizen, 8, "key-2")
    keys = [  # the guard's begin and end (rules U5, U7), the claim and QR-minting throttles
        *one,
        *other,
        redis_keys.claim_counter(citizen),
        redis_keys.mint_rate(citizen),
    ]
    assert len({slot(k) for k in keys}) == 1
    assert one[0] != other[0] and one[1] != other[1]  # two tokens, two keys at work
    assert one[2] == other[2]  # one lock


def test_an_accounts_sign_in_counters_and_back_offs_share_one_slot() -> None:
    per_client, per_account = redis_keys.sign_in_counters("terminal:42", "203.0.113.7")
    # the throttle's TAKE script touches each counter and its back-off key
    keys = [per_client, per_client + ":backoff", per_account, per_account + ":backoff"]
    assert len({slot(k) for k in keys}) == 1
    other, _ = redis_keys.sign_in_counters("terminal:42", "198.51.100.1")
    assert slot(other) == slot(per_client)


def test_a_key_at_work_is_its_citizens_and_the_citizens_spread_over_the_slots() -> None:
    # one terminal's keys, of two citizens, are two keys in two slots; a key names its
    # terminal, so two tills' keys of one citizen are apart (rule U7: a key is a terminal's)
    one, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert slot(redis_keys.key_at_work(one, 7, "k")) == slot(redis_keys.citizen_lock(one))
    assert redis_keys.key_at_work(one, 7, "k") != redis_keys.key_at_work(one, 8, "k")
    assert redis_keys.key_at_work(one, 7, "k") != redis_keys.key_at_work(other, 7, "k")
    citizens = {slot(redis_keys.citizen_lock(str(uuid.uuid4()))) for _ in range(200)}
    assert len(citizens) > 150  # spread: no hot slot by design


def test_every_key_carries_a_hash_tag() -> None:
    names = [
        *_keys("jti", "c", 1, "k"),
        *redis_keys.sign_in_counters("staff:alice", "::1"),
        redis_keys.claim_counter("c"),
        redis_keys.mint_rate("c"),
    ]
    for name in names:
        tag = name[name.index("{") + 1 : name.index("}")]
        assert tag, name
