"""Rule X2, the wallet's real-name hand-over bound to its browser (login CSRF): the sign-in
page gives the browser a nonce cookie and sends the citizen to the city's app with the
nonce's HMAC; the app's assertion must carry it back to ``POST /wallet/signin/assertion``.
Without it, another browser's, a used one or an expired one, the hand-over is refused with
``sign_in_not_started_here`` and no session is started. Real server, real PostgreSQL; the
development identity provider stands in for the city's app (its key is trusted like the
app's)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.handlers.people import dev_assertion
from server.settings import Settings
from shared.idnumber import hash_id_number, mask_id_number
from tests.e2e.conftest import SHANGHAI, Clock, World, new_id_number
from tests.e2e.test_pages import Browser

IDP = "https://idp.test/start?client=vouchers"
NONCE_COOKIE = "__Host-vs_nonce"
LINK = re.compile(r'href="(https://idp\.test/start\?[^"]+)"')
REFUSED_WORDS = "这次登录不是从本浏览器的登录页发起的"


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, clock: Clock
) -> AsyncIterator[TestClient[Any, Any]]:
    # production-style: the sign-in page links to the real-name app
    app = create_app(replace(settings, idp_sign_in_url=IDP), clock=clock)
    yield await aiohttp_client(app)


def link(page: str) -> str:
    found = LINK.search(page)
    assert found, "the page links to the real-name app"
    return found.group(1).replace("&amp;", "&")


async def begin(world: World) -> tuple[Browser, str]:
    """A browser opens the wallet's sign-in page: its nonce, from the link to the app."""
    b = Browser(world.client)
    r = await b.get("/wallet/signin")
    assert r.status == 200
    query = parse_qs(urlsplit(link(await r.text())).query)
    assert query["client"] == ["vouchers"]  # the configured query is kept
    (nonce,) = query["nonce"]
    assert re.fullmatch(r"[0-9a-f]{64}", nonce)
    assert NONCE_COOKIE in b.jar and b.jar[NONCE_COOKIE] not in nonce  # the cookie stays home
    return b, nonce


def assertion(world: World, clock: Clock, id_number: str, nonce: str | None) -> str:
    return dev_assertion(world.settings, id_number, clock(), SHANGHAI, nonce=nonce)


async def hand_over(b: Browser, signed: str) -> Any:
    # the app's page posts it: a cross-site form POST, with no CSRF token of ours
    return await b.post(
        "/wallet/signin/assertion", {"assertion": signed}, headers={"Origin": "https://idp.test"}
    )


async def known_citizen(world: World, id_number: str) -> bool:
    digest = hash_id_number(id_number, world.settings.id_hash_key)
    async with world.pool.acquire() as conn:
        return bool(await conn.fetchval("SELECT count(*) FROM citizens WHERE id_hash = $1", digest))


async def refused(r: Any, b: Browser) -> None:
    assert r.status == 401, await r.text()
    assert REFUSED_WORDS in await r.text()
    assert "vs_session" not in r.cookies and "vs_session" not in b.jar
    assert (await b.get("/wallet")).headers["Location"].startswith("/wallet/signin")


async def test_the_page_binds_a_nonce_to_the_browser_in_a_host_only_cookie(
    world: World, clock: Clock
) -> None:
    b = Browser(world.client)
    r = await b.get("/wallet/signin")
    cookie = r.cookies[NONCE_COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/"
    assert cookie["samesite"] == "None"  # the app's hand-over is a cross-site POST
    assert cookie["max-age"] == "600" and not cookie["domain"]
    first = link(await r.text())
    # shown again soon: the same nonce (a second tab does not break the first)
    clock.advance(seconds=240)
    again = await b.get("/wallet/signin")
    assert NONCE_COOKIE not in again.cookies
    assert link(await again.text()) == first
    # later, with too little time left to finish the app's check: a new one
    clock.advance(seconds=120)
    later = await b.get("/wallet/signin")
    assert NONCE_COOKIE in later.cookies
    assert link(await later.text()) != first
    # another browser gets its own
    _, other = await begin(world)
    assert other not in first


async def test_the_right_flow_signs_the_browser_in_once(world: World, clock: Clock) -> None:
    person = new_id_number()
    b, nonce = await begin(world)
    clock.advance(seconds=90)  # the face check
    r = await hand_over(b, assertion(world, clock, person, nonce))
    assert r.status == 200, await r.text()
    assert "vs_session" in b.jar
    assert NONCE_COOKIE not in b.jar  # used up
    page = await b.get("/wallet")
    assert page.status == 200
    assert mask_id_number(person) in await page.text()


async def test_an_assertion_without_the_nonce_is_refused(world: World, clock: Clock) -> None:
    person = new_id_number()
    b, _ = await begin(world)
    await refused(await hand_over(b, assertion(world, clock, person, None)), b)
    assert not await known_citizen(world, person)  # nothing written


async def test_an_attackers_assertion_does_not_sign_the_victim_in(
    world: World, clock: Clock
) -> None:
    attacker, victim = new_id_number(), new_id_number()
    _, attackers_nonce = await begin(world)  # in the attacker's own browser
    victims_browser, victims_nonce = await begin(world)
    # the attacker's page makes the victim's browser post the attacker's assertion
    r = await hand_over(victims_browser, assertion(world, clock, attacker, attackers_nonce))
    await refused(r, victims_browser)
    assert not await known_citizen(world, attacker)
    # no browser at all (a plain cross-site POST with no cookie) fares no better
    await refused(
        await hand_over(Browser(world.client), assertion(world, clock, attacker, None)),
        Browser(world.client),
    )
    # the refusal spent nothing: the victim's own sign-in still works
    r = await hand_over(victims_browser, assertion(world, clock, victim, victims_nonce))
    assert r.status == 200, await r.text()
    page = await victims_browser.get("/wallet")
    assert mask_id_number(victim) in await page.text()
    assert mask_id_number(attacker) not in await page.text()


async def test_a_hand_over_replayed_is_refused_even_with_the_cookie_kept(
    world: World, clock: Clock
) -> None:
    person = new_id_number()
    b, nonce = await begin(world)
    kept_cookie = b.jar[NONCE_COOKIE]
    signed = assertion(world, clock, person, nonce)
    assert (await hand_over(b, signed)).status == 200
    # the same post again, in a fresh browser that kept a copy of the nonce cookie
    thief = Browser(world.client)
    thief.jar[NONCE_COOKIE] = kept_cookie
    await refused(await hand_over(thief, signed), thief)
    # and a new assertion for the same nonce: one use, whatever the assertion
    await refused(await hand_over(thief, assertion(world, clock, person, nonce)), thief)


async def test_a_sign_in_begun_too_long_ago_is_refused(world: World, clock: Clock) -> None:
    person = new_id_number()
    b, nonce = await begin(world)
    clock.advance(seconds=601)  # the cookie's ten minutes are over (the browser drops it too)
    await refused(await hand_over(b, assertion(world, clock, person, nonce)), b)
    assert not await known_citizen(world, person)
    # a cookie made up with a time in the future is no better
    b.jar[NONCE_COOKIE] = b.jar[NONCE_COOKIE].split(".")[0] + f".{int(clock().timestamp()) + 3600}"
    await refused(await hand_over(b, assertion(world, clock, person, nonce)), b)


async def test_a_bad_hand_over_is_refused_and_leaves_the_nonce_for_the_real_one(
    world: World, clock: Clock
) -> None:
    person = new_id_number()
    b, nonce = await begin(world)
    for bad in ("", "x" * 5000, "not.a.jwt"):
        r = await hand_over(b, bad)
        assert r.status in (400, 401), bad
        assert "vs_session" not in b.jar
    r = await hand_over(b, assertion(world, clock, person, nonce))
    assert r.status == 200, await r.text()


async def test_the_demo_sign_in_still_works_beside_the_link(world: World) -> None:
    b = Browser(world.client)
    r = await b.get("/wallet/signin")
    text = await r.text()
    assert LINK.search(text) and 'action="/wallet/signin/dev' in text
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', text)
    assert token
    r = await b.post("/wallet/signin/dev", {"csrf": token.group(1), "id_number": new_id_number()})
    assert r.status == 303 and r.headers["Location"] == "/wallet"
    # a mistyped number shows the page again, link and all
    b2 = Browser(world.client)
    token2 = await b2.csrf("/wallet/signin")
    r = await b2.post("/wallet/signin/dev", {"csrf": token2, "id_number": "123"})
    assert r.status == 400 and LINK.search(await r.text())
