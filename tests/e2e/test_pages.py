"""The web pages over real HTTP, without a browser (issue 12, item 1): sessions in secure
cookies, CSRF on every form, the API's roles and object checks, no ID number on a page, the
secure headers. The browser's own stories are tests/browser/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.pages import PAGE_ROUTES, SECURITY_HEADERS
from server.pages.i18n import WORDS
from shared.idnumber import mask_id_number
from tests.e2e.conftest import World, new_id_number

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


class Browser:
    """Keeps the pages' cookies by hand: aiohttp's client jar, rightly, sends no Secure cookie
    over plain HTTP, and the pages set only Secure ones."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.jar: dict[str, str] = {}

    def _keep(self, response: Any) -> None:
        for name, morsel in response.cookies.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.jar.pop(name, None)
            else:
                self.jar[name] = morsel.value

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        return {**({"Cookie": cookie} if cookie else {}), **(extra or {})}

    async def get(self, path: str, **kw: Any) -> Any:
        r = await self.client.get(
            path, headers=self._headers(kw.pop("headers", None)), allow_redirects=False, **kw
        )
        self._keep(r)
        return r

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> Any:
        r = await self.client.post(
            path,
            data=data,
            headers=self._headers(kw.pop("headers", None)),
            allow_redirects=False,
            **kw,
        )
        self._keep(r)
        return r

    async def csrf(self, path: str) -> str:
        r = await self.get(path)
        assert r.status == 200, await r.text()
        found = CSRF.search(await r.text())
        assert found, path
        return found.group(1)


async def signed_in_citizen(world: World, id_number: str) -> Browser:
    b = Browser(world.client)
    token = await b.csrf("/wallet/signin")
    r = await b.post("/wallet/signin/dev", {"csrf": token, "id_number": id_number})
    assert r.status == 303, await r.text()
    assert r.headers["Location"] == "/wallet"
    return b


async def signed_in_staff(world: World, role: str, **kw: Any) -> tuple[Browser, str]:
    username = f"pg-{role.split('_')[0]}-{new_id_number()[-8:]}".lower()
    from ops import demo as seed

    async with world.pool.acquire() as conn:
        await seed.account(conn, username=username, password="a long password", role=role, **kw)
    b = Browser(world.client)
    token = await b.csrf("/signin")
    r = await b.post(
        "/signin", {"csrf": token, "username": username, "password": "a long password"}
    )
    assert r.status == 303, await r.text()
    return b, username


def test_every_page_states_who_may_open_it() -> None:
    # rule X2: a page is public only where it must be (the front page and signing in)
    public = {path for method, path, h in PAGE_ROUTES if vars(h)["page_roles"] is None}
    assert public == {
        "/",
        "/signin",
        "/wallet/signin",
        "/wallet/signin/dev",
        "/wallet/signin/assertion",
    }


async def test_the_session_cookie_is_secure_httponly_and_strict(world: World) -> None:
    b = Browser(world.client)
    token = await b.csrf("/wallet/signin")
    r = await b.post("/wallet/signin/dev", {"csrf": token, "id_number": new_id_number()})
    assert r.status == 303
    cookie = r.cookies["vs_session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    page = await b.get("/wallet")
    assert page.status == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    world: World,
) -> None:
    person = new_id_number()
    b = await signed_in_citizen(world, person)
    cert = await world.certificate([person])
    for bad in ({}, {"csrf": "0" * 64}):
        r = await b.post("/wallet/claim", {**bad, "certificate_no": cert})
        assert r.status == 403
        assert "表单已过期" in await r.text()
    # from another site, even with the right token
    token = await b.csrf("/wallet")
    r = await b.post(
        "/wallet/claim",
        {"csrf": token, "certificate_no": cert},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status == 403
    async with world.pool.acquire() as conn:
        claimed = await conn.fetchval(
            "SELECT count(*) FROM claims k JOIN certificates c ON c.id = k.certificate_id "
            "WHERE c.cert_no = $1",
            cert,
        )
    assert claimed == 0
    # the sign-in form too: no pre-session token, no session
    fresh = Browser(world.client)
    r = await fresh.post("/wallet/signin/dev", {"id_number": new_id_number()})
    assert r.status == 403
    assert "vs_session" not in fresh.jar


async def test_the_wallet_claims_in_plain_words_and_shows_no_id_number(world: World) -> None:
    person = new_id_number()
    b = await signed_in_citizen(world, person)
    cert = await world.certificate([person])
    token = await b.csrf("/wallet")
    r = await b.post("/wallet/claim", {"csrf": token, "certificate_no": cert})
    text = await r.text()
    assert r.status == 200
    assert "领取成功：48 张消费券" in text  # rule A3: 1,200,000 元 in phase 1
    assert person not in text and mask_id_number(person) in text  # rule X3
    assert 'id="qr"' in text and "data:image/svg+xml;base64," in text
    r = await b.post("/wallet/claim", {"csrf": token, "certificate_no": cert})
    assert "已经领取过了" in await r.text()  # rule E4, in plain words
    r = await b.get("/wallet?lang=en")
    assert "Available" in await r.text()


async def test_a_manager_reaches_only_their_own_merchant(world: World) -> None:
    mine = await world.till()
    other = await world.till()
    b, _ = await signed_in_staff(world, "merchant_manager", merchant_id=mine.merchant_id)
    for mine_page in ("day", "month", "terminals", "day.csv", "month.csv"):
        r = await b.get(f"/merchant/{mine.merchant_id}/{mine_page}")
        assert r.status == 200, mine_page
    for path in (
        f"/merchant/{other.merchant_id}/day",
        f"/merchant/{other.merchant_id}/day.csv",
        f"/merchant/{other.merchant_id}/month",
        f"/merchant/{other.merchant_id}/terminals",
        "/merchant/abc/day",
    ):
        r = await b.get(path)
        assert r.status == 404, path
    token = await b.csrf(f"/merchant/{mine.merchant_id}/terminals")
    r = await b.post(
        f"/merchant/{other.merchant_id}/terminals/{other.terminal_id}/revocation-request",
        {"csrf": token, "reason": "丢失"},
    )
    assert r.status == 404
    # a till of another merchant under the manager's own id is not found either
    r = await b.post(
        f"/merchant/{mine.merchant_id}/terminals/{other.terminal_id}/revocation-request",
        {"csrf": token, "reason": "丢失"},
    )
    assert r.status == 404
    # a manager sees no dashboard, a citizen no merchant page
    assert (await b.get("/ops")).status == 403


async def test_a_managers_revoke_request_is_audited_and_revokes_nothing(world: World) -> None:
    mine = await world.till()
    b, username = await signed_in_staff(world, "merchant_manager", merchant_id=mine.merchant_id)
    path = f"/merchant/{mine.merchant_id}/terminals"
    token = await b.csrf(path)
    r = await b.post(
        f"{path}/{mine.terminal_id}/revocation-request", {"csrf": token, "reason": "收银机丢失"}
    )
    assert r.status == 200
    assert "已提交停用申请" in await r.text()
    async with world.pool.acquire() as conn:
        entry = await conn.fetchrow(
            "SELECT actor, reason FROM audit_log WHERE action = 'terminal.revoke_request' "
            "AND subject = $1",
            f"terminal:{mine.terminal_id}",
        )
        status = await conn.fetchval("SELECT status FROM terminals WHERE id = $1", mine.terminal_id)
    assert entry is not None and entry["actor"] == f"merchant_manager:{username}"
    assert entry["reason"] == "收银机丢失"
    assert status == "active"  # rule U1: the district revokes


async def test_a_disabled_account_is_refused_on_the_next_page(world: World) -> None:
    # rule X1: whatever cookie it holds
    b, username = await signed_in_staff(world, "auditor")
    assert (await b.get("/ops")).status == 200
    city = await world.staff("city_operator")
    async with world.pool.acquire() as conn:
        account_id = await conn.fetchval("SELECT id FROM accounts WHERE username = $1", username)
    r = await world.client.post(
        f"/v1/accounts/{account_id}/status",
        json={"status": "disabled", "reason": "离职"},
        headers=city,
    )
    assert r.status == 200, await r.text()
    r = await b.get("/ops")
    assert r.status == 403
    assert "vs_session" not in b.jar  # the cookie is dropped


async def test_a_district_operator_sees_only_their_district(world: World) -> None:
    b, _ = await signed_in_staff(world, "district_operator", district="gaoxin")
    r = await b.get("/ops?district=dongchangfu&month=2024-09&campaign=liaocheng-2024")
    text = await r.text()
    assert r.status == 200, text
    assert "仅显示本区：高新区" in text
    table = text.split('id="ranking-table"')[1].split("</table>")[0]
    assert "高新区" in table and "东昌府区" not in table


async def test_the_chart_images_keep_the_pages_visibility(world: World) -> None:
    # rule X2: the chart route answers for the same filters as /ops, so a district operator's
    # ranking chart has their district's bar only, whatever district the URL names
    b, _ = await signed_in_staff(world, "district_operator", district="gaoxin")
    r = await b.get("/ops/charts/ranking.svg?district=dongchangfu&month=2024-09")
    svg = await r.text()
    assert r.status == 200, svg
    assert r.headers["Content-Type"].startswith("image/svg+xml")
    assert "script-src" not in r.headers["Content-Security-Policy"]  # default-src 'none'
    assert 'id="bar-gaoxin"' in svg and 'id="bar-dongchangfu"' not in svg
    r = await b.get("/ops/charts/activity.svg?month=2024-09")
    assert r.status == 200 and (await r.text()).lstrip().startswith("<?xml")
    r = await b.get("/ops/charts/other.svg")
    assert r.status == 404


async def test_without_a_session_a_page_sends_you_to_sign_in(world: World) -> None:
    b = Browser(world.client)
    r = await b.get("/merchant/1/day")
    assert r.status == 303
    assert r.headers["Location"].startswith("/signin?next=")
    r = await b.get("/wallet")
    assert r.headers["Location"].startswith("/wallet/signin?next=")
    r = await b.get("/signin?next=//evil.example")
    token = CSRF.search(await r.text())
    assert token


def test_the_ranking_png_speaks_chinese_where_a_cjk_font_is_installed() -> None:
    # issue 12: the PNG's labels were English with "dongchangfu"; with a CJK font they are the
    # districts' names (a glyph missing from the font would warn, and warnings fail the suite)
    import glob
    from datetime import date

    from server.charts import cjk_family, ranking_png
    from shared.settlement import DistrictFigures, Ranked

    if not glob.glob("/usr/share/fonts/**/*CJK*", recursive=True):
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    assert cjk_family() is not None
    figures = DistrictFigures("dongchangfu", "东昌府区", 1, 48, 12, 120_000, 48, 12)
    png = ranking_png(date(2024, 9, 1), [Ranked(1, figures, 2500)])
    assert png.startswith(b"\x89PNG")


def test_the_wallet_calls_our_code_a_voucher_code_never_a_payment_code() -> None:
    # issue 11 item 8: 付款码 is WeChat's and Alipay's; ours is 消费券码, on the till and here
    words = WORDS["zh"]
    chinese = [words.word(key) for key in ("your_code", "code_alt", "refresh_now", "expired_code")]
    assert not any("付款码" in text for text in chinese)
    assert all("消费券码" in text for text in chinese)


async def settings_of(world: World, merchant_id: int) -> tuple[bool, bool]:
    async with world.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT receipts_per_till, refund_needs_manager FROM merchants WHERE id = $1",
            merchant_id,
        )
    assert row is not None
    return row["receipts_per_till"], row["refund_needs_manager"]


async def test_a_manager_changes_the_shops_settings_with_a_reason_and_a_csrf_token(
    world: World,
) -> None:
    # rule U4 [choice] and issue 11 item 5, as POST /v1/merchants/{id}/settings changes them
    mine = await world.till()
    other = await world.till()
    b, username = await signed_in_staff(world, "merchant_manager", merchant_id=mine.merchant_id)
    path = f"/merchant/{mine.merchant_id}/settings"
    r = await b.get(path)
    text = await r.text()
    assert r.status == 200, text
    assert "小票号按收银台编号" in text and "退款需经理授权" in text
    for name in ("receipts_per_till", "refund_needs_manager"):  # both off, and shown so
        assert re.search(rf'id="{name}-off" name="{name}" value="off"[^>]* checked', text)
        assert not re.search(rf'id="{name}-on" name="{name}" value="on"[^>]* checked', text)
    token = CSRF.search(text)
    assert token
    good = {
        "csrf": token.group(1),
        "receipts_per_till": "on",
        "refund_needs_manager": "off",
        "reason": "两台收银机各自编号",
    }
    refused = [
        ({**good, "csrf": "0" * 64}, 403, "表单已过期"),
        ({k: v for k, v in good.items() if k != "csrf"}, 403, "表单已过期"),
        ({**good, "receipts_per_till": "yes"}, 400, "输入内容不正确"),
        ({k: v for k, v in good.items() if k != "refund_needs_manager"}, 400, "输入内容不正确"),
        ({**good, "reason": "  "}, 400, "输入内容不正确"),
    ]
    for form, status, words in refused:
        r = await b.post(path, form)
        assert (r.status, words in await r.text()) == (status, True), form
    r = await b.post(path, good, headers={"Origin": "https://evil.example"})
    assert r.status == 403
    # another shop's settings do not exist for this manager (rule X2)
    assert (await b.get(f"/merchant/{other.merchant_id}/settings")).status == 404
    r = await b.post(f"/merchant/{other.merchant_id}/settings", good)
    assert r.status == 404
    assert await settings_of(world, mine.merchant_id) == (False, False)  # nothing changed
    assert await settings_of(world, other.merchant_id) == (False, False)

    r = await b.post(path, good)
    text = await r.text()
    assert r.status == 200, text
    assert 'id="settings-saved"' in text and "设置已保存" in text
    assert re.search(
        r'id="receipts_per_till-on" name="receipts_per_till" value="on"[^>]* checked', text
    )
    assert await settings_of(world, mine.merchant_id) == (True, False)
    async with world.pool.acquire() as conn:
        entry = await conn.fetchrow(
            "SELECT actor, reason, details FROM audit_log WHERE action = 'merchant.settings' "
            "AND subject = $1",
            f"merchant:{mine.merchant_id}",
        )
    assert entry is not None and entry["actor"] == f"merchant_manager:{username}"
    assert entry["reason"] == "两台收银机各自编号"
    # in English too
    r = await b.get(path + "?lang=en")
    text = await r.text()
    assert "Receipts numbered per till" in text and "Refunds need a manager" in text


async def test_the_day_shows_the_cash_refunds_handed_back_with_gross_and_net_apart(
    world: World,
) -> None:
    # issue 11 items 5 and 7, on the manager's page and its CSV as in the till's export: a
    # bill of 1,000 元 paid with 5 vouchers (500 元) and 500 元 cash, refunded in three steps
    import csv
    import io
    import uuid
    from decimal import Decimal

    from shared.day_csv import COLUMNS

    till = await world.till()
    person = await world.citizen_with_vouchers()
    r = await world.redeem(till, await world.qr(person), bill_fen=100_000, count=5)
    assert r.status == 201, await r.text()
    bill = await r.json()
    for remaining in (95_000, 55_000, 0):  # 50 元 (no voucher back), 400 元, the rest
        r = await world.client.post(
            f"/v1/redemptions/{bill['redemption_id']}/refunds",
            json={"remaining_bill_fen": remaining},
            headers={**till.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status == 201, await r.text()
    b, _ = await signed_in_staff(world, "merchant_manager", merchant_id=till.merchant_id)
    r = await b.get(f"/merchant/{till.merchant_id}/day")
    text = await r.text()
    assert r.status == 200, text
    assert re.search(r'id="total-cash">500\.00 元<', text)  # collected on the bill
    assert re.search(r'id="total-cash-back">500\.00 元<', text)  # handed back: 0 + 150 + 350
    refunds = text.split('id="refunds"')[1].split("</table>")[0]
    cash_backs = re.findall(r"<td>(\d+\.\d\d) 元</td></tr>", refunds)
    assert cash_backs == ["0.00", "150.00", "350.00"]
    assert refunds.count("<td>收银台 1</td>") == 3  # each refund names its till

    for lang in ("zh", "en"):
        r = await b.get(f"/merchant/{till.merchant_id}/day.csv?lang={lang}")
        rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        assert tuple(rows[0]) == COLUMNS[lang]  # the till's export's layout
        body, total = rows[1:-1], rows[-1]
        assert [row[8] for row in body] == ["", "0.00", "150.00", "350.00"]  # cash back
        # gross 5 vouchers, 5 returned, net 0: each in its own column, none beside the other
        assert (total[9], total[11], total[13]) == ("5", "5", "0")
        assert (total[10], total[12], total[14]) == ("500.00", "500.00", "0.00")
        for column in range(6, 15):  # every amount column sums to its total
            cells = [row[column] for row in body if row[column]]
            assert sum(Decimal(c) for c in cells) == Decimal(total[column]), rows[0][column]
    assert rows[1][0] == "redemption" and rows[-1][0] == "total"
