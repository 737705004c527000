"""The three stories of issue 12 in Chromium: the citizen's, the merchant's, the operator's.
Each state is screenshotted (``.data/screenshots``) and checked with axe-core."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

# Without playwright the browser fixture skips (or, under CI, fails) saying what to install, so
# no test here runs and none reaches for ``expect``.
with contextlib.suppress(ImportError):
    from playwright.async_api import expect

from ops import demo as seed
from tests.browser.conftest import axe_check
from tests.e2e.conftest import World, new_id_number, shanghai

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


def base(world: World) -> str:
    return str(world.client.make_url("")).rstrip("/")


async def staff_account(world: World, role: str, **kw: Any) -> str:
    username = f"br-{role.split('_')[0]}-{new_id_number()[-8:]}".lower()
    async with world.pool.acquire() as conn:
        await seed.account(conn, username=username, password="a long password", role=role, **kw)
    return username


async def wallet_page(browser: Any, world: World, id_number: str) -> Any:
    """A citizen's wallet, on a phone of their own, signed in by the development sign-in."""
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base(world) + "/wallet")
    await page.fill("#id_number", id_number)
    await page.click("button[type=submit].big")
    return page


async def sign_in_staff(page: Any, url: str, username: str) -> None:
    await page.goto(url)
    await page.fill("#username", username)
    await page.fill("#password", "a long password")
    await page.click("button[type=submit].big")


async def test_the_citizens_story(world: World, browser: Any, shots: Path) -> None:
    """Sign in, claim, show the code at 360x740 and 1280x800; a till redeems it through the
    API; within 2 s the page says where it was used and how many vouchers."""
    person = new_id_number()
    cert = await world.certificate([person])
    till = await world.till()
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base(world) + "/wallet")
    assert "/wallet/signin" in page.url  # no session: to the real-name sign-in
    await expect(page.locator("body")).to_contain_text("实名认证 App")
    await page.screenshot(path=str(shots / "wallet-sign-in.png"), full_page=True)
    await axe_check(page, "wallet sign-in")
    await page.fill("#id_number", person)
    await page.click("button[type=submit].big")
    await expect(page.locator("h1")).to_have_text("我的消费券")
    assert person not in await page.content()  # rule X3: masked only
    await axe_check(page, "wallet empty")
    await page.fill("#certificate_no", cert)
    await page.click("form[action='/wallet/claim'] button")
    await expect(page.locator("#claim-result")).to_contain_text("领取成功：48 张消费券")
    await page.screenshot(path=str(shots / "wallet-claimed.png"), full_page=True)
    qr = page.locator("#qr")
    await expect(qr).to_be_visible()
    size = await qr.bounding_box()
    assert size is not None and size["width"] >= 300  # large on a 360 px phone
    assert await qr.evaluate("i => i.complete && i.naturalWidth > 0")
    await expect(page.locator("#countdown")).to_contain_text("秒后自动刷新")
    await page.screenshot(path=str(shots / "wallet-code-360x740.png"))
    await axe_check(page, "wallet with code (360x740)")
    await page.set_viewport_size(DESKTOP)
    await page.screenshot(path=str(shots / "wallet-code-1280x800.png"))
    await axe_check(page, "wallet with code (1280x800)")

    token = await qr.get_attribute("data-token")
    assert token
    r = await world.redeem(till, token, bill_fen=45_000, count=2)
    assert r.status == 201, await r.text()
    banner = page.locator("#used-banner")
    await expect(banner).to_be_visible(timeout=2_000)  # issue 12: within 2 s
    async with world.pool.acquire() as conn:
        shop = await conn.fetchval("SELECT name FROM merchants WHERE id = $1", till.merchant_id)
    await expect(banner).to_contain_text(f"已核销：{shop}，2 张")
    await expect(page.locator("#count-used")).to_have_text("2")
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=str(shots / "wallet-used.png"))
    await axe_check(page, "wallet after redemption")
    await context.close()


async def test_the_merchants_story(world: World, browser: Any, shots: Path) -> None:
    """The manager sees the bill in the day, downloads the CSV, and cannot reach another
    merchant's day by changing the URL."""
    till = await world.till()
    other = await world.till()
    person = await world.citizen_with_vouchers()
    r = await world.redeem(till, await world.qr(person), bill_fen=64_000, count=3)
    assert r.status == 201, await r.text()
    receipt = (await r.json())["receipt_no"]
    username = await staff_account(world, "merchant_manager", merchant_id=till.merchant_id)
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    page = await context.new_page()
    await sign_in_staff(page, base(world) + "/merchant", username)
    await expect(page).to_have_url(f"{base(world)}/merchant/{till.merchant_id}/day")
    await expect(page.locator("#bills")).to_contain_text(receipt)
    await expect(page.locator("#total-bills")).to_have_text("1")
    await expect(page.locator("#per-till")).to_contain_text("收银台 1")
    await page.screenshot(path=str(shots / "merchant-day.png"), full_page=True)
    await axe_check(page, "merchant day")

    async with page.expect_download() as waiting:
        await page.click("#download-day")
    download = await waiting.value
    saved = Path(await download.path())
    text = await asyncio.to_thread(saved.read_text, encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    # the page's language, in the till's export's layout (shared.day_csv)
    assert rows[0][:5] == ["类型", "时间", "核销单号", "退款单号", "小票号"]
    assert rows[0][9:11] == ["用券(张)", "券金额(元)"]
    assert any(row[4] == receipt and row[9] == "3" and row[10] == "300.00" for row in rows)

    await page.click("text=当月")
    await expect(page.locator("#month-days")).to_contain_text("2024-09-10")
    await page.screenshot(path=str(shots / "merchant-month.png"), full_page=True)
    await axe_check(page, "merchant month")
    await page.click("nav.tabs >> text=收银台")
    await expect(page.locator("#tills")).to_contain_text("收银台 1")
    await axe_check(page, "merchant tills")

    answer = await page.goto(f"{base(world)}/merchant/{other.merchant_id}/day")
    assert answer is not None and answer.status == 404
    await expect(page.locator("body")).to_contain_text("页面不存在")
    assert receipt not in await page.content()
    await page.screenshot(path=str(shots / "merchant-other-404.png"))
    await context.close()


async def test_the_manager_changes_the_shops_settings(
    world: World, browser: Any, shots: Path
) -> None:
    """Issue 11 items 3 and 5: the settings tab, a choice, a reason, saved; the server holds
    it at once (the API reads it back)."""
    till = await world.till()
    username = await staff_account(world, "merchant_manager", merchant_id=till.merchant_id)
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    page = await context.new_page()
    await sign_in_staff(page, base(world) + "/merchant", username)
    await page.click("nav.tabs >> text=设置")
    await expect(page).to_have_url(f"{base(world)}/merchant/{till.merchant_id}/settings")
    await expect(page.locator("#refund_needs_manager-off")).to_be_checked()
    await axe_check(page, "merchant settings")
    await page.check("#refund_needs_manager-on")
    await page.click("#save-settings")  # no reason yet: the browser asks for one
    await expect(page.locator("#settings-saved")).to_have_count(0)
    await page.fill("#reason", "退款须经理授权")
    await page.click("#save-settings")
    await expect(page.locator("#settings-saved")).to_contain_text("设置已保存")
    await expect(page.locator("#refund_needs_manager-on")).to_be_checked()
    await expect(page.locator("#receipts_per_till-off")).to_be_checked()
    await page.screenshot(path=str(shots / "merchant-settings-saved.png"), full_page=True)
    await axe_check(page, "merchant settings saved")
    r = await world.client.get(f"/v1/merchants/{till.merchant_id}/settings", headers=till.headers)
    assert (await r.json())["refund_needs_manager"] is True
    await context.close()


async def test_the_operators_story(world: World, browser: Any, shots: Path) -> None:
    """The city's ranking chart renders, in Chinese with district names; the English page
    on request."""
    till = await world.till()
    person = await world.citizen_with_vouchers()
    r = await world.redeem(till, await world.qr(person), bill_fen=40_000, count=2)
    assert r.status == 201, await r.text()
    username = await staff_account(world, "city_operator")
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = await context.new_page()
    await sign_in_staff(page, base(world) + "/ops", username)
    await page.goto(base(world) + "/ops?month=2024-09&campaign=liaocheng-2024")
    chart = page.locator("#ranking-chart")
    await expect(chart).to_be_visible()
    await expect(chart).to_have_attribute("alt", "各区累计核销率柱状图")
    await expect(page.locator("#ranking-table")).to_contain_text("东昌府区")
    activity = page.locator("#activity-chart")
    await expect(activity).to_be_visible()
    for image in (chart, activity):  # the browser decoded the SVG the page points at
        assert await image.evaluate("i => i.complete && i.naturalWidth > 0")
    # the chart's own document, as the browser draws it (its CSP lets its inline styles work)
    drawn = await context.new_page()
    answer = await drawn.goto(base(world) + (await chart.get_attribute("src") or ""))
    assert answer is not None and answer.status == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    svg = drawn.locator("svg")
    assert await svg.locator('g[id^="bar-"]').count() == 4  # the four issuing districts
    await expect(svg).to_contain_text("东昌府区")
    assert "dongchangfu" not in (await svg.text_content() or "")
    await drawn.screenshot(path=str(shots / "ops-ranking-chart.png"))
    await drawn.close()
    await page.screenshot(path=str(shots / "ops-dashboard.png"), full_page=True)
    await axe_check(page, "ops dashboard")
    await page.click("a.lang")
    await expect(page.locator("#ranking-h")).to_have_text("District ranking (S3)")
    await axe_check(page, "ops dashboard (en)")
    await context.close()


async def test_the_accessibility_check_can_fail(browser: Any) -> None:
    """The axe figures above mean something: grey on grey and an unlabelled field are found."""
    page = await browser.new_page()
    await page.set_content(
        '<html lang="en"><body><main><p style="color:#bbb;background:#ccc">faint</p>'
        '<input id="x"></main></body></html>'
    )
    try:
        await axe_check(page, "a page made to fail", record=False)
    except AssertionError as exc:
        assert "color-contrast" in str(exc) and "label" in str(exc)
    else:
        raise AssertionError("axe found nothing on a page made to fail")
    finally:
        await page.close()


async def test_the_house_ticket_holders_story(
    world: World, clock: Any, browser: Any, shots: Path
) -> None:
    """Issue 13 (rules T2, T5-T9): a holder with a Shangqiu ticket and no voucher still gets
    the code; the sales office uses 95% of the ticket with it; on reloading, the wallet shows
    the use, the subsidy, the balance and the cash-out now due."""
    from tests.e2e.test_ticket_till import WAN, contract, sales_office, ticket_for

    clock.now = shanghai(2025, 7, 10, 10)
    person = await world.citizen()
    ticket = await ticket_for(world, person)
    office = await sales_office(world)
    page = await wallet_page(browser, world, person.id_number)
    card = page.locator("#tickets article.ticket")
    await expect(card).to_contain_text(ticket.number)
    await expect(card.locator(".ticket-balance")).to_have_text("1,000,000.00 元")
    await expect(card).to_contain_text("使用期限至 2026-12-20")
    await expect(card).to_contain_text("累计使用达到票面金额的 90% 后")
    qr = page.locator("#qr")
    await expect(qr).to_be_visible()  # rule U5: the same code, for the sales office
    await page.screenshot(path=str(shots / "wallet-ticket.png"), full_page=True)
    await axe_check(page, "wallet with a house ticket")

    token = await qr.get_attribute("data-token")
    assert token
    body = contract(token, amounts_fen=[95 * WAN], price_fen=120 * WAN)
    r = await world.client.post(
        "/v1/ticket-uses",
        json=body,
        headers={**office.headers, "Idempotency-Key": "browser-story"},
    )
    assert r.status == 201, await r.text()
    await page.reload()
    await expect(card.locator(".ticket-balance")).to_have_text("50,000.00 元")
    uses = card.locator(".ticket-uses")
    await expect(uses).to_contain_text(body["contract_no"].upper())  # T5: normalised
    await expect(uses).to_contain_text("购房补贴 95,000.00 元")
    await expect(card).to_contain_text("可向核发单位申请兑付结余 50,000.00 元")
    assert person.id_number not in await page.content()  # rule X3
    await page.screenshot(path=str(shots / "wallet-ticket-used.png"), full_page=True)
    await axe_check(page, "wallet after a ticket use")
    await page.set_viewport_size(DESKTOP)
    await page.goto(base(world) + "/wallet?lang=en")
    await expect(card).to_contain_text("Balance")
    await expect(card).to_contain_text("You may ask the issuer to pay out ¥50,000.00")
    await axe_check(page, "wallet with a house ticket (en)")
    await page.context.close()


def yuan(fen: int) -> str:
    """A figure as the pages print it (``T.money``): exact to the fen."""
    return f"{fen // 100:,}.{fen % 100:02d} 元"


async def report_row(page: Any, scope: str, name: str) -> list[str]:
    """The cells of the /ops/tickets report line of ``scope`` named ``name``."""
    rows = page.locator("#report-table tbody tr").filter(has=page.locator("th", has_text=name))
    row = rows.filter(has=page.locator("td", has_text=scope)).first
    cells: list[str] = await row.locator("th, td").all_inner_texts()
    return [c.strip() for c in cells]


async def test_the_house_ticket_reports_story(
    aiohttp_client: Any,
    settings: Any,
    clock: Any,
    db_pool: Any,
    tmp_path: Path,
    browser: Any,
    shots: Path,
) -> None:
    """Issue 13, rule T14 (with T7, T9, T12, X2): the city operator goes from the dashboard
    to the house tickets' reports, reads a month of Shangqiu in Chinese — issued, used,
    cashed out, returned, the balance left, subsidies, what is due to and paid to the sellers
    — moves the report's date past the deadline to see the balance expire, switches the
    programme, downloads the CSV and finds the same figures to the fen. The district's issuer
    lands on its own district only; a district operator is refused and shown nothing."""
    from tests.e2e.test_ticket_reports import a_month_of_shangqiu
    from tests.e2e.tickets_world import WAN, isolated

    t = await isolated(aiohttp_client, settings, clock, db_pool, tmp_path)
    await a_month_of_shangqiu(t)
    url = base(t.world)
    username = await staff_account(t.world, "city_operator")
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    page = await context.new_page()
    await sign_in_staff(page, url + "/ops", username)
    await expect(page).to_have_url(url + "/ops")
    await page.click("#to-tickets")  # the dashboard leads to the tickets' reports
    await expect(page).to_have_url(url + "/ops/tickets")
    await page.select_option("#campaign", t.sq.id)
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("h1")).to_have_text(f"房票看板 · {t.sq.name}")
    head = await page.locator("#report-table thead th").all_inner_texts()
    assert head[:5] == ["范围", "名称", "核发张数", "票面金额", "已使用金额"]
    assert "结余金额" in head
    # 梁园区 100万 (uses 60万 + 35万, cash-out 5万) and 50万 (voided); 睢阳区 80万 (uses 40万)
    whole = await report_row(page, "全市", t.sq.name)
    balance_at = head.index("结余金额")
    assert whole[2:8] == [
        "3",
        yuan(230 * WAN),
        yuan(135 * WAN),
        yuan(5 * WAN),
        yuan(50 * WAN),
        yuan(0),  # nothing expired on the day
    ]
    assert whole[balance_at] == yuan(40 * WAN)  # 230 - 135 - 5 - 50
    at = {name: i for i, name in enumerate(head)}
    assert whole[at["购房补贴"]] == yuan(135 * WAN // 10)  # T7: month 1, 10%
    assert whole[at["应结算金额"]] == yuan(135 * WAN * 11 // 10)  # with the subsidies
    assert whole[at["已结算金额"]] == yuan(66 * WAN)  # T12: 60万 and its subsidy, paid
    liangyuan = await report_row(page, "区", "梁园区")
    assert liangyuan[2:5] == ["2", yuan(150 * WAN), yuan(95 * WAN)]
    assert liangyuan[balance_at] == yuan(0)
    assert (await report_row(page, "区", "睢阳区"))[balance_at] == yuan(40 * WAN)
    settled = page.locator("#settlements-table tbody tr").first
    await expect(settled).to_contain_text("2024-09-10")
    await expect(settled).to_contain_text("梁园区")
    await expect(settled).to_contain_text(yuan(66 * WAN))
    await page.screenshot(path=str(shots / "ops-tickets.png"), full_page=True)
    await axe_check(page, "ops tickets")

    # T2, T14: as of the day after Shangqiu's 18 months, 睢阳区's 40万 left is expired
    await page.fill("#on", "2026-03-11")
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("#on")).to_have_value("2026-03-11")
    whole = await report_row(page, "全市", t.sq.name)
    assert whole[at["过期未用金额"]] == yuan(40 * WAN)
    assert whole[at["票面金额"]] == yuan(230 * WAN)
    await axe_check(page, "ops tickets (as of a later day)")

    async with page.expect_download() as waiting:
        await page.click("#download-report")
    download = await waiting.value
    assert download.suggested_filename == f"house-tickets-{t.sq.id}-2026-03-11.csv"
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == [h for h in head]  # the page's columns, in the page's order
    lines = {(row[0], row[1]): row for row in table[1:]}
    assert lines[("全市", t.sq.name)] == [
        "全市",
        t.sq.name,
        "3",
        "2300000.00",
        "1350000.00",
        "50000.00",
        "500000.00",
        "400000.00",
        "400000.00",
        "135000.00",
        "0.00",
        "0.00",
        "1485000.00",
        "660000.00",
    ]
    assert lines[("区", "睢阳区")][3:5] == ["800000.00", "400000.00"]

    # another programme: Suining's copy has nothing yet
    await page.select_option("#campaign", t.sn.id)
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("h1")).to_have_text(f"房票看板 · {t.sn.name}")
    await expect(page.locator("#report-table tbody")).to_have_text("暂无记录。")
    await context.close()

    # X2: the issuer of 梁园区 lands on the reports and sees its district only
    issuer = await staff_account(t.world, "ticket_issuer", district="liangyuan")
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    page = await context.new_page()
    await sign_in_staff(page, url + f"/ops/tickets?campaign={t.sq.id}", issuer)
    await expect(page.locator("main")).to_contain_text("仅显示本区 梁园区")
    mine = await report_row(page, "全市", t.sq.name)
    assert mine[2:4] == ["2", yuan(150 * WAN)]
    await expect(page.locator("#report-table")).not_to_contain_text("睢阳区")
    await expect(page.locator("#to-vouchers")).to_have_count(0)
    await page.screenshot(path=str(shots / "ops-tickets-issuer-360x740.png"), full_page=True)
    await axe_check(page, "ops tickets (issuer, 360x740)")
    await context.close()

    # X2: a district operator reads the vouchers' dashboard, not the tickets': refused
    district = await staff_account(t.world, "district_operator", district="dongchangfu")
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = await context.new_page()
    await sign_in_staff(page, url + "/ops", district)
    await expect(page.locator("#to-tickets")).to_have_count(0)
    answer = await page.goto(url + f"/ops/tickets?campaign={t.sq.id}")
    assert answer is not None and answer.status == 403
    await expect(page.locator("[role=alert]")).to_have_text("您无权查看此页面。")
    await expect(page.locator("table")).to_have_count(0)
    assert t.sq.name not in await page.content()
    answer = await page.goto(url + f"/ops/tickets.csv?campaign={t.sq.id}")
    assert answer is not None and answer.status == 403
    assert "2300000.00" not in await page.content()
    await page.screenshot(path=str(shots / "ops-tickets-refused.png"))
    await axe_check(page, "ops tickets refused")
    await context.close()


async def test_a_transferred_piece_in_both_wallets(
    world: World, clock: Any, browser: Any, shots: Path
) -> None:
    """Issue 13 (rules T3, T5, T6, X3): A's Suining ticket of 90万 is split into 60万 and 30万
    and the 30万 piece transferred to B. A's wallet holds 60万 and shows the piece only as
    "已转让", B masked; B's wallet holds the piece and nothing of A's. B's code pays a
    contract with the piece at a sales office: B's balance falls to 0, A's stays."""
    from shared.idnumber import mask_id_number
    from shared.ticket_campaign import PropertyType
    from tests.e2e.test_ticket_till import contract, sales_office
    from tests.e2e.test_ticket_wallet import split_and_transfer
    from tests.e2e.tickets_world import WAN, Tickets

    clock.now = shanghai(2025, 10, 9, 10)
    s = await split_and_transfer(Tickets(world, clock))
    a, b = s["a"], s["b"]
    given, kept = s["given"][1], s["kept"][1]
    page = await wallet_page(browser, world, a.id_number)
    card = page.locator("#tickets article.ticket")
    await expect(card).to_have_count(1)
    await expect(card.locator(".ticket-numbers")).to_have_text(f"房票编号：{kept}")
    await expect(card.locator(".ticket-balance")).to_have_text("600,000.00 元")
    await expect(card.locator(".ticket-transferred-fen")).to_have_text("300,000.00 元")
    await expect(card.locator(".ticket-transfers")).to_have_text(
        f"已转让：房票 {given}，300,000.00 元，受让人 {mask_id_number(b.id_number)}"
    )
    assert b.id_number not in await page.content()  # X3
    await page.screenshot(path=str(shots / "wallet-ticket-transferred.png"), full_page=True)
    await axe_check(page, "wallet after a transfer (transferor)")

    page_b = await wallet_page(browser, world, b.id_number)
    card_b = page_b.locator("#tickets article.ticket")
    await expect(card_b).to_have_count(1)
    await expect(card_b.locator(".ticket-numbers")).to_have_text(f"房票编号：{given}")
    await expect(card_b.locator(".ticket-balance")).to_have_text("300,000.00 元")
    await expect(card_b.locator(".ticket-transfers")).to_have_count(0)
    content = await page_b.content()
    for secret in (kept, s["original"], mask_id_number(a.id_number)):
        assert secret not in content
    await page_b.screenshot(path=str(shots / "wallet-ticket-received.png"), full_page=True)
    await axe_check(page_b, "wallet after a transfer (receiver)")

    office = await sales_office(
        world,
        "suining-chuanshan-2025",
        district="chuanshan",
        units=(("B-2-1", PropertyType.RESIDENTIAL, 9_000, 100 * WAN),),
    )
    token = await page_b.locator("#qr").get_attribute("data-token")
    assert token
    body = contract(
        token, unit="B-2-1", signed_on="2025-10-09", price_fen=100 * WAN, amounts_fen=[30 * WAN]
    )
    r = await world.client.post(
        "/v1/ticket-uses", json=body, headers={**office.headers, "Idempotency-Key": given}
    )
    assert r.status == 201, await r.text()
    await page_b.reload()
    await expect(card_b.locator(".ticket-balance")).to_have_text("0.00 元")
    await expect(card_b.locator(".ticket-uses")).to_contain_text(body["contract_no"].upper())
    await expect(card_b).to_contain_text("政策性奖励 36,000.00 元")  # T8: 90 m² x 400 元
    await axe_check(page_b, "wallet after the receiver's use")
    await page.reload()
    await expect(card.locator(".ticket-balance")).to_have_text("600,000.00 元")
    await expect(card.locator(".ticket-uses")).to_have_text("暂无记录。")
    await page.context.close()
    await page_b.context.close()


async def test_a_suining_settlement_shows_its_first_payment_and_holdback(
    aiohttp_client: Any,
    settings: Any,
    clock: Any,
    db_pool: Any,
    tmp_path: Path,
    browser: Any,
    shots: Path,
) -> None:
    """Issue 13, rules T8, T12, T14: a Suining use of 95万 + 0.33 元 with its 4万 reward is
    settled at most 90% at the 2026-03-01 point and the rest at 2026-09-01 once the property
    certificate is recorded; the city operator reads both parts on /ops/tickets, to the fen."""
    from tests.e2e.test_ticket_after_use import CONDITIONS, post, record_all
    from tests.e2e.tickets_world import WAN, isolated

    t = await isolated(aiohttp_client, settings, clock, db_pool, tmp_path)
    clock.now = shanghai(2025, 10, 9, 10)
    office = await t.office(t.sn, [("B-1", "住宅", "100", "1500000")])
    issuer = await t.issuer("chuanshan")
    holder = new_id_number()
    ticket_id = (await t.issue(issuer, t.agreement(t.sn, holder=holder)))["ticket"]["id"]
    use_id = await t.use(
        office, [ticket_id], "B-1", buyer=holder, price=150 * WAN, signed_on=date(2025, 10, 9),
        amounts=[95 * WAN + 33],
    )  # fmt: skip
    clock.now = shanghai(2026, 3, 2, 9)
    issuer = await t.issuer("chuanshan")
    await record_all(t, use_id, issuer, "2026-02-28", CONDITIONS)
    build = {"campaign_id": t.sn.id, "district": "chuanshan", "point": "2026-03-01"}
    await post(t, "/v1/ticket-settlements", build, issuer, 201)
    clock.now = shanghai(2026, 9, 2, 9)
    issuer = await t.issuer("chuanshan")
    await record_all(t, use_id, issuer, "2026-06-15", ("certificate",))
    await post(t, "/v1/ticket-settlements", build | {"point": "2026-09-01"}, issuer, 201)
    due = 95 * WAN + 33 + 4 * WAN  # T8: 100 m² x 400 元
    first = due * 9 // 10  # at most 90%, rounded down to the fen

    username = await staff_account(t.world, "city_operator")
    context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = await context.new_page()
    await sign_in_staff(page, base(t.world) + f"/ops/tickets?campaign={t.sn.id}", username)
    rows = page.locator("#settlements-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("2026-09-01")
    await expect(rows.nth(0).locator(".batch-parts")).to_have_text(
        f"留存款（产权证办妥后） {yuan(due - first)}"
    )
    await expect(rows.nth(1)).to_contain_text("2026-03-01")
    await expect(rows.nth(1).locator(".batch-parts")).to_have_text(f"首付 {yuan(first)}")
    whole = await report_row(page, "全市", t.sn.name)
    head = await page.locator("#report-table thead th").all_inner_texts()
    assert whole[head.index("应结算金额")] == yuan(due)
    assert whole[head.index("政策性奖励")] == yuan(4 * WAN)
    await page.screenshot(path=str(shots / "ops-tickets-suining-holdback.png"), full_page=True)
    await axe_check(page, "ops tickets (Suining settlements)")
    await context.close()
