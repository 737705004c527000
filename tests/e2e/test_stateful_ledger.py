"""A stateful property test of the ledger (issue 9, "The proofs, kept").

Hypothesis drives the real app (create_app over HTTP, aiohttp test client) against the real
PostgreSQL and Redis through random sequences of claim, quote, redeem (and its retry with the
same key), full and partial refund, revoking a citizen, suspending and lifting a merchant,
building a month's settlement and advancing the clock. After every step it checks the
ledger's invariants (server/db/invariants.py, rules U3, U7, F1, F2) and a small model: each
citizen's available / redeemed / revoked vouchers, each bill's live vouchers, and what a
settlement batch adds up to.

Each example gets a fresh copy of the liaocheng-2024 campaign under its own id, so its
settlement batches count this example's bills only. Every citizen claims once and few QR
codes are minted per citizen, so the claim and QR throttles are not what is tested here.

Hypothesis rules are synchronous; they run in a worker thread and hand each request to the
test's event loop (where the app, its pools and Redis client live).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from server.app import create_app
from server.campaign_files import bundled_campaigns_dir
from server.db.invariants import check_ledger
from server.settings import Settings
from shared.idnumber import hash_id_number, make_id_number
from tests.e2e.conftest import Citizen, Clock, Till, World, shanghai

T = TypeVar("T")
_system = random.SystemRandom()


THRESHOLD_FEN = 20_000  # rule U3: 200 元 per voucher
FACE_FEN = 10_000
VOUCHERS = 5  # rule A3: 250,000 元 housing in phase 1 at 20 bp -> 500 元 -> 5 vouchers
PRICE_FEN = 25_000_000
CITIZENS = 8
LAST_DAY = shanghai(2024, 12, 8, 12, 0)  # before the first claim's vouchers expire (rule V1)


@dataclass
class Person:
    who: Citizen
    id_hash: bytes
    claimed: bool = False
    revoked: bool = False
    available: int = 0
    redeemed: int = 0
    revoked_vouchers: int = 0
    signed_in_at: datetime | None = None


@dataclass
class Shop:
    till: Till
    suspended: bool = False
    signed_in_at: datetime | None = None


@dataclass
class Bill:
    id: int
    shop: Shop
    person: Person
    live: int
    bill_fen: int
    month: str


@dataclass
class Example:
    loop: asyncio.AbstractEventLoop
    settings: Settings
    pool: asyncpg.Pool
    tmp: Path
    staff_cache: dict[str, dict[str, str]] = field(default_factory=dict)


class LedgerMachine(RuleBasedStateMachine):
    env: Example  # set by the test before Hypothesis makes instances
    seen: Counter[str]  # what the examples did, so that the test cannot pass doing nothing

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock(shanghai(2024, 9, 10, 10, 0))
        self.campaign_id = f"sm-{uuid.uuid4().hex[:10]}"
        self.bills: list[Bill] = []
        self.built: set[str] = set()
        self.staff: dict[str, tuple[dict[str, str], datetime]] = {}
        self.world, self.client = self.run(self._start())
        self.people = [self.run(self._person()) for _ in range(CITIZENS)]
        self.shops = [Shop(self.run(self.world.till())) for _ in range(2)]
        for shop in self.shops:
            shop.signed_in_at = self.clock.now

    # -- plumbing ---------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.env.loop).result(timeout=120)

    async def _start(self) -> tuple[World, TestClient[Any, Any]]:
        text = (bundled_campaigns_dir() / "liaocheng-2024.toml").read_text(encoding="utf-8")
        path = self.env.tmp / f"{self.campaign_id}.toml"
        text = text.replace('id = "liaocheng-2024"', f'id = "{self.campaign_id}"', 1)
        path.write_text(text, encoding="utf-8")
        app = create_app(replace(self.env.settings, campaign_files=(path,)), clock=self.clock)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        return World(client, self.env.settings, self.env.pool), client

    async def _person(self) -> Person:
        # Hypothesis seeds the random module alike in every example: draw ID numbers from
        # the system's generator, or two examples would share their citizens
        birth = date(1960, 1, 1) + timedelta(days=_system.randrange(365 * 40))
        who = await self.world.citizen(
            make_id_number("371502", birth, f"{_system.randrange(1000):03d}")
        )
        who.certificates.append(await self.world.certificate([who.id_number], price_fen=PRICE_FEN))
        key = self.env.settings.id_hash_key
        return Person(who, hash_id_number(who.id_number, key), signed_in_at=self.clock.now)

    def teardown(self) -> None:
        self.run(self.client.close())

    def fresh(self, moment: datetime | None) -> bool:
        """Access tokens live 15 minutes; the clock moves by hours and days."""
        return moment is not None and self.clock.now - moment < timedelta(minutes=10)

    def citizen_headers(self, p: Person) -> dict[str, str]:
        if not self.fresh(p.signed_in_at):
            p.who = replace(p.who, headers=self.run(self.world.citizen(p.who.id_number)).headers)
            p.signed_in_at = self.clock.now
        return p.who.headers

    def till_headers(self, s: Shop) -> dict[str, str]:
        if not self.fresh(s.signed_in_at):
            s.till = self.run(self.world.sign_in(s.till))
            s.signed_in_at = self.clock.now
        return s.till.headers

    def staff_headers(self, role: str) -> dict[str, str]:
        held = self.staff.get(role)
        if held is None or not self.fresh(held[1]):
            district = "dongchangfu" if role == "district_operator" else None
            held = (self.run(self.world.staff(role, district=district)), self.clock.now)
            self.staff[role] = held
        return held[0]

    def call(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        async def go() -> tuple[int, Any]:
            r = await self.client.request(method, path, json=body, headers=headers)
            return r.status, await r.json()

        return self.run(go())

    def qr(self, p: Person) -> str | None:
        """A QR code, or None for a revoked citizen, who may mint none (rule X1)."""
        status, body = self.call("POST", "/v1/wallet/qr", self.citizen_headers(p))
        if p.revoked:
            assert status == 403 and self.code(body) == "participation_revoked", body
            self.seen["qr refused to a revoked citizen"] += 1
            return None
        assert status == 200, body
        return str(body["token"])

    @staticmethod
    def code(body: Any) -> str:
        return str(body["error"]["code"]) if isinstance(body, dict) and "error" in body else ""

    def pick(self, items: list[T], i: int) -> T:
        return items[i % len(items)]

    def claimed(self) -> list[Person]:
        return [p for p in self.people if p.claimed]

    def refundable(self) -> list[Bill]:
        return [b for b in self.bills if b.live > 0]

    # -- rules ------------------------------------------------------------------------------

    @precondition(lambda self: any(not p.claimed for p in self.people))
    @rule(i=st.integers(0, 99))
    def claim(self, i: int) -> None:
        p = self.pick([p for p in self.people if not p.claimed], i)
        status, body = self.call(
            "POST", "/v1/claims", self.citizen_headers(p), {"certificate_no": p.who.certificates[0]}
        )
        assert status == 201, body  # rules E3, A1-A3
        assert body["voucher_count"] == VOUCHERS
        p.claimed, p.available = True, VOUCHERS
        self.seen["claim"] += 1

    @precondition(lambda self: any(p.claimed for p in self.people))
    @rule(i=st.integers(0, 99), s=st.integers(0, 1), hundreds=st.integers(1, 12))
    def quote(self, i: int, s: int, hundreds: int) -> None:
        p, shop = self.pick(self.claimed(), i), self.shops[s]
        token = self.qr(p)
        if token is None:
            return
        bill = hundreds * 10_000
        status, body = self.call(
            "POST", "/v1/quote", self.till_headers(shop), {"token": token, "bill_fen": bill}
        )
        if shop.suspended or p.revoked:  # rules U1, X1: refused, or nothing usable
            assert (400 <= status < 500) or body["usable_count"] == 0, body
            return
        due = min(p.available, bill // THRESHOLD_FEN)  # rule U3
        if due == 0 and status == 422:  # nothing usable: refused, as a redemption would be
            return
        assert status == 200, body
        assert body["usable_count"] == due
        self.seen["quote"] += 1

    @precondition(lambda self: any(p.claimed for p in self.people))
    @rule(
        i=st.integers(0, 99),
        s=st.integers(0, 1),
        hundreds=st.integers(2, 12),
        count=st.integers(1, 4),
        retry=st.booleans(),
    )
    def redeem(self, i: int, s: int, hundreds: int, count: int, retry: bool) -> None:
        """Any claimed citizen at any shop: often refused, and then nothing changes."""
        self.redeem_at(self.pick(self.claimed(), i), self.shops[s], hundreds, count, retry)

    def eligible(self) -> list[Person]:
        return [p for p in self.people if p.claimed and not p.revoked and p.available > 0]

    @precondition(lambda self: bool(self.eligible()) and any(not s.suspended for s in self.shops))
    @rule(i=st.integers(0, 99), s=st.integers(0, 1), count=st.integers(1, 3), retry=st.booleans())
    def redeem_what_is_due(self, i: int, s: int, count: int, retry: bool) -> None:
        """A citizen with vouchers at an open shop, a bill that allows them: accepted."""
        p = self.pick(self.eligible(), i)
        shop = self.pick([x for x in self.shops if not x.suspended], s)
        count = min(count, p.available)
        self.redeem_at(p, shop, 2 * count + s, count, retry)

    def redeem_at(self, p: Person, shop: Shop, hundreds: int, count: int, retry: bool) -> None:
        token = self.qr(p)
        if token is None:
            return
        bill = hundreds * 10_000
        body_in = {
            "token": token,
            "bill_fen": bill,
            "receipt_no": f"SM{uuid.uuid4().hex[:12]}",
            "voucher_count": count,
        }
        headers = {**self.till_headers(shop), "Idempotency-Key": uuid.uuid4().hex}
        status, body = self.call("POST", "/v1/redemptions", headers, body_in)
        refusals = set()
        if shop.suspended:
            refusals.add("merchant_suspended")  # rule U1
        if p.revoked:
            refusals.add("participation_revoked")  # rule X1
        if count > bill // THRESHOLD_FEN:
            refusals.add("too_many_vouchers")  # rule U3
        if count > p.available:
            refusals.add("not_enough_vouchers")
        if refusals:
            assert status < 500 and self.code(body) in refusals, (refusals, status, body)
            self.seen["redeem refused"] += 1
            self.seen["refused " + self.code(body)] += 1
        else:
            assert status == 201, body
            assert body["voucher_count"] == count
            p.available -= count
            p.redeemed += count
            self.seen["redeem"] += 1
            month = self.clock.now.strftime("%Y-%m")
            self.bills.append(Bill(body["redemption_id"], shop, p, count, bill, month))
        if retry:  # rule U7: the same request with the same key gets the first answer
            again, body2 = self.call("POST", "/v1/redemptions", headers, body_in)
            assert again == status, (status, body, again, body2)
            if status == 201:
                assert body2["redemption_id"] == body["redemption_id"]
            else:
                assert self.code(body2) == self.code(body)

    @precondition(lambda self: any(b.live > 0 for b in self.bills))
    @rule(
        i=st.integers(0, 99), full=st.booleans(), keep=st.integers(0, 3), extra=st.integers(0, 199)
    )
    def refund(self, i: int, full: bool, keep: int, extra: int) -> None:
        b = self.pick(self.refundable(), i)
        remaining = 0
        if not full:  # rule F2: keeps min(live, floor(remaining / 200 元)), returns the rest
            remaining = min(keep, b.live - 1) * THRESHOLD_FEN + extra * 100
            if remaining >= b.bill_fen:
                remaining = 0
        returned = b.live - min(b.live, remaining // THRESHOLD_FEN)
        p = b.person
        before = self.counts()[p.id_hash]
        headers = {**self.till_headers(b.shop), "Idempotency-Key": uuid.uuid4().hex}
        status, body = self.call(
            "POST", f"/v1/redemptions/{b.id}/refunds", headers, {"remaining_bill_fen": remaining}
        )
        if b.shop.suspended:
            # rule X1: a suspended merchant is refused on every route, whatever token it holds,
            # before anything of the bill is looked at (a settled bill too)
            assert status == 403 and self.code(body) == "merchant_suspended", body
            return
        if b.month in self.built:
            assert status == 409 and self.code(body) == "already_settled", body  # rule F3
            self.seen["refund of a settled bill"] += 1
            return
        assert status == 201, body
        assert body["voucher_count"] - body["refunded_count"] == b.live - returned
        b.live -= returned
        b.bill_fen = remaining
        self.seen["refund" if remaining == 0 else "partial refund"] += 1
        p.redeemed -= returned
        if not p.revoked:
            p.available += returned  # rule F1
            return
        self.seen["refund to a revoked citizen"] += 1
        after = self.counts()[p.id_hash]
        # rule X1: vouchers a refund returns to a revoked citizen come back revoked
        assert after.get("revoked", 0) - before.get("revoked", 0) == returned
        p.revoked_vouchers += returned

    @precondition(
        lambda self: (
            sum(p.revoked for p in self.people) < CITIZENS // 3
            and any(p.claimed and not p.revoked for p in self.people)
        )
    )
    @rule(i=st.integers(0, 99))
    def revoke_citizen(self, i: int) -> None:
        p = self.pick([p for p in self.people if p.claimed and not p.revoked], i)
        status, body = self.call(
            "POST",
            "/v1/citizens/revocation",
            self.staff_headers("city_operator"),
            {"id_number": p.who.id_number, "reason": "倒卖消费券"},
        )
        assert status == 200, body
        assert body["vouchers_clawed_back"] == p.available  # rule X1: unused ones only
        p.revoked, p.revoked_vouchers, p.available = True, p.revoked_vouchers + p.available, 0
        self.seen["revoke"] += 1

    @rule(s=st.integers(0, 1))
    def suspend_or_lift(self, s: int) -> None:
        """Suspends an open shop while the other is open, else lifts a suspension."""
        shop = self.shops[s]
        if not shop.suspended and self.shops[1 - s].suspended:
            shop = self.shops[1 - s]
        status, body = self.call(
            "POST",
            f"/v1/merchants/{shop.till.merchant_id}/suspension",
            self.staff_headers("district_operator"),
            {"suspended": not shop.suspended, "reason": "核查"},
        )
        assert status == 200, body
        shop.suspended = not shop.suspended
        self.seen["suspend" if shop.suspended else "lift"] += 1
        assert body["status"] == ("suspended" if shop.suspended else "active")

    def months_over(self) -> list[str]:
        this = self.clock.now.strftime("%Y-%m")
        return [m for m in ("2024-09", "2024-10", "2024-11") if m < this and m not in self.built]

    @precondition(lambda self: bool(self.months_over()))
    @rule(i=st.integers(0, 2))
    def build_settlement(self, i: int) -> None:
        month = self.pick(self.months_over(), i)
        batch = {"campaign_id": self.campaign_id, "district": "dongchangfu", "month": month}
        status, body = self.call(
            "POST", "/v1/settlements", self.staff_headers("district_operator"), batch
        )
        expected = sum(b.live for b in self.bills if b.month == month)
        if expected == 0 and status != 201:
            assert 400 <= status < 500, body  # an empty month may be refused
            self.built.add(month)
            return
        assert status == 201, body
        assert body["voucher_count"] == expected  # rule S1: live vouchers x 100 元
        assert body["amount_fen"] == expected * FACE_FEN
        self.built.add(month)
        self.seen["settlement"] += 1

    @precondition(lambda self: self.clock.now < LAST_DAY)
    @rule(hours=st.sampled_from([1, 5, 30, 24 * 9, 24 * 20]))
    def advance_clock(self, hours: int) -> None:
        self.clock.now = min(self.clock.now + timedelta(hours=hours), LAST_DAY)
        self.seen["clock"] += 1

    # -- checks after every step ------------------------------------------------------------

    def counts(self) -> dict[bytes, dict[str, int]]:
        async def go() -> dict[bytes, dict[str, int]]:
            rows = await self.env.pool.fetch(
                """
                SELECT c.id_hash, v.status, count(*) AS n
                  FROM vouchers v JOIN citizens c ON c.id = v.citizen_id
                 WHERE c.id_hash = ANY($1::bytea[]) GROUP BY 1, 2
                """,
                [p.id_hash for p in self.people],
            )
            out: dict[bytes, dict[str, int]] = {p.id_hash: {} for p in self.people}
            for r in rows:
                out[bytes(r["id_hash"])][r["status"]] = r["n"]
            return out

        return self.run(go())

    @invariant()
    def ledger_holds(self) -> None:
        violations = self.run(_check(self.env.pool))
        assert violations == [], violations

    @invariant()
    def balances_match_the_model(self) -> None:
        counts = self.counts()
        for p in self.people:
            want = {"available": p.available, "redeemed": p.redeemed, "revoked": p.revoked_vouchers}
            got = {k: counts[p.id_hash].get(k, 0) for k in want}
            assert got == want, (p.who.id_number[-4:], got, want)

    @invariant()
    def bills_match_the_model(self) -> None:
        if not self.bills:
            return

        async def go() -> dict[int, int]:
            rows = await self.env.pool.fetch(
                "SELECT id, voucher_count - refunded_count AS live FROM redemptions "
                "WHERE id = ANY($1::bigint[])",
                [b.id for b in self.bills],
            )
            return {r["id"]: r["live"] for r in rows}

        live = self.run(go())
        assert live == {b.id: b.live for b in self.bills}


async def _check(pool: asyncpg.Pool) -> list[Any]:
    async with pool.acquire() as conn:
        return await check_ledger(conn)


async def test_the_ledger_holds_under_random_sequences(
    settings: Settings, fresh_database_url: str
) -> None:
    # a database of its own: every server start loads the ledger's campaigns, and the shared
    # test database holds hundreds by now (one per test that made one)
    settings = replace(settings, database_url=fresh_database_url)
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=4)
    assert pool is not None
    with tempfile.TemporaryDirectory(prefix="stateful-") as tmp:
        LedgerMachine.env = Example(asyncio.get_running_loop(), settings, pool, Path(tmp))
        LedgerMachine.seen = Counter()
        config = settings_for_ci()
        try:
            await asyncio.to_thread(run_state_machine_as_test, LedgerMachine, settings=config)
        finally:
            await pool.close()
    seen = LedgerMachine.seen
    print("steps taken:", dict(seen))
    for kind in ("claim", "quote", "redeem", "redeem refused", "refund", "partial refund"):
        assert seen[kind] > 0, f"no {kind} in any example: {dict(seen)}"


def settings_for_ci() -> Any:
    """Small enough for well under a minute on 2 cores; every step checks everything.

    The suite draws the same 15 sequences each run (``derandomize``): drawn afresh, one run in
    a few dozen took no full refund in any of them and failed the coverage check below for want
    of exploring, not for a fault. ``VOUCHER_STATEFUL_EXPLORE=1`` draws new ones each run."""
    return hypothesis_settings(
        derandomize=os.environ.get("VOUCHER_STATEFUL_EXPLORE") != "1",
        max_examples=15,
        stateful_step_count=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        # no shrinking in the suite: every example starts a server, and shrinking a failure
        # took over five minutes; the failing sequence is printed whole instead
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
