"""The use cases called as the CLI, the load test or a test calls them: a typed command and
``Ports`` (a pool, the settings, a clock), no aiohttp request, against the real PostgreSQL
(issue 10: one home for each use case)."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from server.auth import Principal, Role
from server.campaign_files import bundled_campaigns_dir, load_campaign_files
from server.db import campaigns as campaign_db
from server.db.access import Change
from server.services import accounts, audit, citizens, claims, merchants, registry, sign_in
from server.services import settlement as settlements
from server.services import wallet as wallets
from server.services.ports import Ports
from server.settings import Settings
from shared.errors import (
    CertificateAlreadyClaimed,
    CertificateNotYours,
    Conflict,
    Forbidden,
    MonthNotOver,
    NotFound,
    ParticipationRevoked,
    UsernameTaken,
)
from shared.idnumber import make_id_number
from shared.tokens import QrKey
from tests.conftest import Services

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 9, 10, 10, 0, tzinfo=SHANGHAI)
HEADER = "不动产权证号,所在区,房屋类型,是否增量房,不含税价款,减免税价款,登簿日期,权利人身份证号\n"
CITY = Principal(Role.CITY_OPERATOR, "svc-test-city")
GAOXIN = Principal(Role.DISTRICT_OPERATOR, "svc-test-gaoxin", district="gaoxin")


class Published:
    """What a service told this process's access view (rule X1)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def __call__(self, changes: Iterable[Change]) -> None:
        self.changes.extend(changes)


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
async def ports(test_services: Services, db_pool: asyncpg.Pool, published: Published) -> Ports:
    bundled = sorted(bundled_campaigns_dir().glob("*.toml"))
    settings = Settings(
        database_url=test_services.database_url,
        redis_url=test_services.redis_url,
        id_hash_key=secrets.token_bytes(32),
        access_token_secret=secrets.token_bytes(32),
        qr_keys=(QrKey.generate("V"),),
        idp_issuer="https://idp.test",
        idp_keys={},
        campaign_files=tuple(bundled),
    )
    campaigns = load_campaign_files(bundled)
    async with db_pool.acquire() as conn:
        for campaign in campaigns.values():  # as the server records them when it starts
            await campaign_db.upsert(conn, campaign)
    return Ports(
        pool=db_pool,
        settings=settings,
        clock=lambda: NOW,
        tz=SHANGHAI,
        campaigns=campaigns,
        publish=published,
    )


def id_number() -> str:
    birth = date(1960, 1, 1) + timedelta(days=random.randrange(365 * 40))
    return make_id_number("371502", birth, f"{random.randrange(1000):03d}")


async def registered(ports: Ports, *owners: str) -> str:
    """A new-build home in Dongchangfu, registered through the registry import's service."""
    cert_no = f"SVC-{secrets.token_hex(6)}"
    row = f"{cert_no},东昌府区,住宅,是,1200000.00,300000,2024-09-01,{'；'.join(owners)}\n"
    done = await registry.import_file(ports, CITY, registry.ImportFile((HEADER + row).encode()))
    assert (done.inserted, done.rejects) == (1, [])
    return cert_no


async def test_a_claim_issues_vouchers_once_and_only_to_an_owner(ports: Ports) -> None:
    # rules E3, E4, A3, X3
    owner, co_owner, stranger = id_number(), id_number(), id_number()
    cert_no = await registered(ports, owner, co_owner)
    me = await sign_in.citizen(ports, owner)
    assert owner not in me.id_masked  # rule X3
    subject = str((await sign_in.citizen(ports, stranger)).subject)
    with pytest.raises(CertificateNotYours):  # rule E3
        await claims.claim(ports, claims.Claim(subject, cert_no))

    done = await claims.claim(ports, claims.Claim(str(me.subject), cert_no))
    assert done.campaign.id == "liaocheng-2024" and done.certificate_no == cert_no
    assert len(done.vouchers) == done.decision.voucher_count > 0

    co_subject = str((await sign_in.citizen(ports, co_owner)).subject)
    with pytest.raises(CertificateAlreadyClaimed):  # rule E4: one claim per certificate
        await claims.claim(ports, claims.Claim(co_subject, cert_no))
    held = await wallets.wallet(ports, me.id)
    assert held.counts["available"] == done.decision.voucher_count
    assert [c.cert_no for c in held.claims] == [cert_no]
    assert (await wallets.wallet(ports, (await sign_in.citizen(ports, co_owner)).id)).claims == []


async def test_a_revoked_citizen_loses_unused_vouchers_and_every_process_is_told(
    ports: Ports, published: Published
) -> None:
    # rule X1
    owner = id_number()
    cert_no = await registered(ports, owner)
    me = await sign_in.citizen(ports, owner)
    done = await claims.claim(ports, claims.Claim(str(me.subject), cert_no))
    revoked = await citizens.revoke(ports, CITY, citizens.RevokeCitizen(owner, "fraud"))
    assert revoked.vouchers_clawed_back == done.decision.voucher_count
    assert [(c.kind, c.key, c.blocked) for c in published.changes] == [("citizen", me.id, True)]
    held = await wallets.wallet(ports, me.id)
    assert held.counts["revoked"] == done.decision.voucher_count
    assert held.participation is not None and held.participation.revoked_reason == "fraud"
    with pytest.raises(ParticipationRevoked):
        await claims.claim(ports, claims.Claim(str(me.subject), await registered(ports, owner)))
    with pytest.raises(NotFound):  # already revoked: nothing changes twice
        await citizens.revoke(ports, CITY, citizens.RevokeCitizen(owner, "again"))


async def test_merchant_changes_are_scoped_audited_and_published(
    ports: Ports, published: Published
) -> None:
    # rules U1, X1, X2
    name = f"svc-shop-{secrets.token_hex(4)}"
    shop = await merchants.add_merchant(ports, CITY, merchants.AddMerchant(name, "东昌府区"))
    assert (shop.district, shop.admitted, shop.permitted) == ("dongchangfu", False, False)
    with pytest.raises(Forbidden):  # another district's operator
        await merchants.change_merchant(
            ports, GAOXIN, merchants.ChangeMerchant(shop.id, "permitted", True, "ok")
        )
    suspended = await merchants.change_merchant(
        ports, CITY, merchants.ChangeMerchant(shop.id, "suspended", True, "inspection")
    )
    assert suspended.status == "suspended"
    issued = await merchants.issue_terminal(ports, CITY, merchants.IssueTerminal(shop.id, "till"))
    await merchants.revoke_terminal(ports, CITY, merchants.RevokeTerminal(issued.terminal_id, "x"))
    assert [(c.kind, c.key, c.blocked) for c in published.changes] == [
        ("merchant", shop.id, True),
        ("terminal", issued.terminal_id, True),
    ]
    found = await audit.entries(ports, audit.AuditFilter(actor=CITY.actor, limit=10))
    subjects = {(e.action, e.subject) for e in found}
    assert {
        ("merchant.add", f"merchant:{shop.id}"),
        ("merchant.suspend", f"merchant:{shop.id}"),
        ("terminal.issue", f"terminal:{issued.terminal_id}"),
        ("terminal.revoke", f"terminal:{issued.terminal_id}"),
    } <= subjects


async def test_the_tools_rules_live_in_the_services(ports: Ports) -> None:
    # issue 10, kept in the services when they landed: a shop already registered under the
    # same name in the same district is refused (rule U1), whatever name the district is
    # given by; revoking an owner before their claim makes their row, revoked (rule X1)
    name = f"svc-dup-{secrets.token_hex(4)}"
    shop = await merchants.add_merchant(ports, CITY, merchants.AddMerchant(name, "东昌府区"))
    with pytest.raises(Conflict) as refused:
        await merchants.add_merchant(ports, CITY, merchants.AddMerchant(name, "dongchangfu"))
    assert refused.value.details == {"reason": "merchant_exists", "merchant_id": shop.id}
    async with ports.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM merchants WHERE name = $1", name) == 1
    elsewhere = await merchants.add_merchant(ports, CITY, merchants.AddMerchant(name, "高新区"))
    assert elsewhere.id != shop.id

    owner = id_number()
    cert_no = await registered(ports, owner)
    revoked = await citizens.revoke(ports, CITY, citizens.RevokeCitizen(owner, "fraud"))
    assert (revoked.vouchers_clawed_back, revoked.masked_id[-4:]) == (0, owner[-4:])
    me = await sign_in.citizen(ports, owner)
    with pytest.raises(ParticipationRevoked):
        await claims.claim(ports, claims.Claim(str(me.subject), cert_no))


async def test_a_taken_username_is_a_domain_error_and_changes_nothing(ports: Ports) -> None:
    # rule X2: the adapter translates the unique violation
    username = f"svc-{secrets.token_hex(4)}"
    cmd = accounts.AddAccount(username, accounts.Scope("auditor"), "new auditor")
    first = await accounts.add(ports, CITY, cmd)
    assert first.password is not None  # generated, shown once
    with pytest.raises(UsernameTaken):
        await accounts.add(ports, CITY, cmd)
    found = await accounts.accounts(ports, CITY, role=None, username=username)
    assert [a.id for a in found] == [first.account.id]
    creations = await audit.entries(ports, audit.AuditFilter(action="account.create", limit=500))
    assert [e.subject for e in creations].count(f"account:{username}") == 1


async def test_settlement_waits_for_the_month_and_the_ranking_reads_the_ledger(
    ports: Ports,
) -> None:
    # rules S1, S3
    with pytest.raises(MonthNotOver):
        await settlements.build(
            ports, CITY, settlements.BuildBatch("liaocheng-2024", "dongchangfu", "2024-09")
        )
    ranking = await settlements.ranking(ports, "2024-09", "liaocheng-2024")
    assert ranking.campaign_ids == ["liaocheng-2024"]
    assert {r.figures.district for r in ranking.ranked} >= {"dongchangfu"}
    assert sorted(r.rank for r in ranking.ranked)[0] == 1


def test_the_qr_code_lives_as_long_as_the_shortest_campaign_allows(ports: Ports) -> None:
    # rule U5
    code = wallets.mint_qr(ports, 1)
    ttl = min(c.qr_token_ttl_seconds for c in ports.campaigns.values())
    assert code.expires_at == NOW + timedelta(seconds=ttl)
