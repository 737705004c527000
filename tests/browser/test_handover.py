"""Rule X2 in Chromium: the real-name app's handover is a cross-site form POST, and it signs
in only the browser that began it (login CSRF). A page of ``https://idp.test`` (served by
Playwright's router) stands in for the city's app: it auto-posts an assertion of the
development identity provider, whose key the server trusts as it does the app's."""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

with contextlib.suppress(ImportError):
    from playwright.async_api import expect

from server.app import create_app
from server.handlers.people import dev_assertion
from server.settings import Settings
from shared.idnumber import mask_id_number
from tests.browser.conftest import axe_check
from tests.browser.test_stories import PHONE, base
from tests.e2e.conftest import SHANGHAI, Clock, World, new_id_number

IDP = "https://idp.test/sign-in"


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, clock: Clock
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(replace(settings, idp_sign_in_url=IDP), clock=clock)
    yield await aiohttp_client(app)


def app_page(action: str, assertion: str) -> str:
    """The city's app handing the assertion back: a form that posts itself."""
    return (
        "<!doctype html><html lang=en><title>idp</title><body>"
        f'<form id=f method=post action="{html.escape(action)}">'
        f'<input type=hidden name=assertion value="{html.escape(assertion)}"></form>'
        "<script>document.getElementById('f').submit()</script></body></html>"
    )


async def nonce_of(page: Any) -> str:
    href = await page.locator(f"a[href^='{IDP}']").get_attribute("href")
    assert href
    (nonce,) = parse_qs(urlsplit(href).query)["nonce"]
    return nonce


async def test_the_app_hands_over_to_the_browser_that_began(
    world: World, browser: Any, clock: Clock
) -> None:
    person = new_id_number()
    context = await browser.new_context(viewport=PHONE, locale="zh-CN")

    async def the_app(route: Any) -> None:
        # the app checks the face, then signs the nonce it was sent into its assertion
        (nonce,) = parse_qs(urlsplit(route.request.url).query)["nonce"]
        signed = dev_assertion(world.settings, person, clock(), SHANGHAI, nonce=nonce)
        await route.fulfill(
            content_type="text/html",
            body=app_page(base(world) + "/wallet/signin/assertion", signed),
        )

    await context.route(f"{IDP}**", the_app)
    page = await context.new_page()
    await page.goto(base(world) + "/wallet/signin")
    await axe_check(page, "wallet sign-in (production link)", record=False)
    await page.click(f"a[href^='{IDP}']")
    await expect(page.locator("h1")).to_have_text("我的消费券")  # via the handover page
    assert mask_id_number(person) in await page.content()
    cookies = {c["name"] for c in await context.cookies()}
    assert "vs_session" in cookies and "__Host-vs_nonce" not in cookies  # used up
    await context.close()


async def test_an_attackers_handover_does_not_sign_the_victim_in(
    world: World, browser: Any, clock: Clock
) -> None:
    attacker, victim = new_id_number(), new_id_number()
    # the attacker begins a sign-in in their own browser and gets an assertion for it
    theirs = await browser.new_context()
    their_page = await theirs.new_page()
    await their_page.goto(base(world) + "/wallet/signin")
    signed = dev_assertion(
        world.settings, attacker, clock(), SHANGHAI, nonce=await nonce_of(their_page)
    )
    await theirs.close()
    # the victim, who opened the sign-in page too, visits the attacker's page
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    await page.goto(base(world) + "/wallet/signin")

    async def evil(route: Any) -> None:
        await route.fulfill(
            content_type="text/html",
            body=app_page(base(world) + "/wallet/signin/assertion", signed),
        )

    await context.route("https://evil.test/**", evil)
    await page.goto("https://evil.test/cats")
    await expect(page.locator("[role=alert]")).to_contain_text(
        "这次登录不是从本浏览器的登录页发起的"
    )
    cookies = {c["name"] for c in await context.cookies()}
    assert "vs_session" not in cookies
    await page.goto(base(world) + "/wallet")
    assert "/wallet/signin" in page.url  # still signed out
    assert mask_id_number(attacker) not in await page.content()
    assert mask_id_number(victim) not in await page.content()
    await context.close()
