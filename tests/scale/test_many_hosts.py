"""Issue 14, many server hosts: three server processes (python -m server serve) against one
PostgreSQL and one Redis keep the concurrency guarantees of one (rules U5, U7)."""

from __future__ import annotations

import re
import uuid
from collections import Counter

from server.db.migrate import load_migrations
from tests.e2e.test_redis_breaker import metric
from tests.scale.conftest import Cluster, gather_answers, redeem
from tests.scale.hosts import error_code


async def test_hosts_started_together_migrated_the_ledger_once(three_hosts: Cluster) -> None:
    # issue 14: three processes migrated one empty database at once (advisory lock)
    async with three_hosts.ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in load_migrations()]


async def test_200_redemptions_of_10_vouchers_over_3_hosts_redeem_exactly_10(
    three_hosts: Cluster,
) -> None:
    # rule U7: one citizen, 10 vouchers, 200 bills at once, round-robin over the hosts
    c = three_hosts
    person = await c.ledger.citizen_with_vouchers(10)
    tills = [await c.ledger.till(c.http, c.round_robin(n)) for n in range(6)]
    answers = await gather_answers(
        *(
            redeem(
                c.http,
                c.round_robin(n),
                tills[n % len(tills)],
                c.config.qr(person.id),
                busy_retries=5,
            )
            for n in range(200)
        )
    )
    statuses = Counter(a.status for a in answers)
    assert statuses[201] == 10, statuses
    refused = Counter(error_code(a.body) for a in answers if a.status != 201)
    assert refused == {"not_enough_vouchers": 190}, refused
    assert await c.ledger.vouchers_of(person) == {"redeemed": 10}
    assert await c.ledger.redemptions_of(person) == 10
    assert await c.ledger.violations() == []


async def test_one_qr_code_sent_to_every_host_at_once_is_redeemed_once(
    three_hosts: Cluster,
) -> None:
    # rule U5: a QR code is single-use, whichever host each till reaches
    c = three_hosts
    person = await c.ledger.citizen_with_vouchers(10)
    tills = [await c.ledger.till(c.http, host) for host in c.hosts]
    token = c.config.qr(person.id)
    answers = await gather_answers(
        *(redeem(c.http, c.round_robin(n), tills[n % 3], token) for n in range(30))
    )
    assert Counter(a.status for a in answers) == {201: 1, 409: 29}
    assert {error_code(a.body) for a in answers if a.status == 409} == {"token_replayed"}
    assert await c.ledger.vouchers_of(person) == {"redeemed": 1, "available": 9}
    assert await c.ledger.violations() == []


async def test_an_idempotency_key_retried_at_another_host_gets_the_stored_answer(
    three_hosts: Cluster,
) -> None:
    # rule U7: a retry with the same key returns the first result, at any host
    c = three_hosts
    person = await c.ledger.citizen_with_vouchers(10)
    till = await c.ledger.till(c.http, c.hosts[0])
    token, key = c.config.qr(person.id), uuid.uuid4().hex
    first = await redeem(c.http, c.hosts[0], till, token, key=key, receipt_no="R-HOSTS-1")
    assert first.status == 201
    for host in c.hosts[1:]:
        again = await redeem(c.http, host, till, token, key=key, receipt_no="R-HOSTS-1")
        assert again.status == 201
        assert again.body == first.body
        assert again.headers.get("Idempotent-Replay") == "true"
    # the same key with another bill: refused at any host, and nothing changes
    other = await redeem(
        c.http, c.hosts[2], till, token, key=key, receipt_no="R-HOSTS-2", bill_fen=60_000
    )
    assert (other.status, error_code(other.body)) == (422, "idempotency_key_reused")
    assert await c.ledger.redemptions_of(person) == 1
    assert await c.ledger.violations() == []


async def test_one_key_sent_to_every_host_at_once_redeems_once(three_hosts: Cluster) -> None:
    # rule U7: concurrent retries of one request at three hosts: one bill; each answer is
    # that bill or "still in progress" (409), never a second redemption
    c = three_hosts
    person = await c.ledger.citizen_with_vouchers(10)
    till = await c.ledger.till(c.http, c.hosts[0])
    token, key = c.config.qr(person.id), uuid.uuid4().hex
    answers = await gather_answers(
        *(
            redeem(c.http, c.round_robin(n), till, token, key=key, receipt_no="R-ONCE")
            for n in range(12)
        )
    )
    done = [a for a in answers if a.status == 201]
    assert done, [a.status for a in answers]
    assert all(a.body == done[0].body for a in done)
    assert {error_code(a.body) for a in answers if a.status != 201} <= {"idempotency_key_in_use"}
    assert await c.ledger.redemptions_of(person) == 1
    assert await c.ledger.violations() == []


async def test_every_host_asked_redis_and_redis_always_answered(three_hosts: Cluster) -> None:
    # issue 14: the guarantees above held with Redis (or every master of the cluster) doing
    # its filtering, not because every host fell back to the ledger alone
    c = three_hosts
    person = await c.ledger.citizen_with_vouchers(10)
    till = await c.ledger.till(c.http, c.hosts[0])
    for host in c.hosts:
        assert (await redeem(c.http, host, till, c.config.qr(person.id))).status == 201
        async with c.http.get(f"{host.url}/metrics") as r:
            text = await r.text()
        assert metric(text, "voucher_redis_failures_total") == 0
        assert metric(text, "voucher_redis_skipped_total") == 0
        assert metric(text, "voucher_throttle_fail_open_total") == 0
        assert metric(text, re.escape('voucher_batch_size_count{kind="redis"}')) > 0
    if c.redis_cluster is not None:  # the citizens' keys are spread over every master
        assert all(n > 0 for n in c.redis_cluster.keys_per_master())
