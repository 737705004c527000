"""The terminal against the real server (create_app over a real port, real PostgreSQL and
Redis, the suite's pinned clock). Only tests import ``server``; ``terminal`` never does."""

from __future__ import annotations

import asyncio
import socket
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from textual import events
from textual._time import get_time
from textual.app import App
from textual.dom import DOMNode
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key
from textual.pilot import Pilot
from textual.widgets import Input, Static

from ops import demo as seed
from server.app import create_app
from server.settings import Settings
from terminal.app import TerminalApp
from terminal.config import TerminalConfig
from terminal.screens.approval import ManagerApproval
from terminal.widgets.amount import Amount
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Citizen, Clock, Till, World, shanghai
from tests.terminal.keyboard import PERSON_GAP

# the e2e fixtures, shared: the real app's settings, its pinned clock, and the World helpers
settings = e2e.settings
clock = e2e.clock
client = e2e.client
world = e2e.world

__all__ = ["Clock", "World", "shanghai"]

PASSWORD = "a long password"
FAST_CLIENT: dict[str, Any] = {"retries": 2, "backoff": 0.05, "timeout": 3.0}


@pytest.fixture(autouse=True)
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Screens must not change between two looks (snapshots, tmux captures)."""
    original = Input.__init__

    def init(self: Input, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cursor_blink = False

    monkeypatch.setattr(Input, "__init__", init)


@pytest.fixture(autouse=True)
def press_waits_for_the_scan_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app holds a key back for up to its scanner gap (terminal/scanning.py) before it
    knows it was typed by a person: ``pilot.press`` returns once its keys have landed.

    Printable characters in a row (a bill, a username, a password) are typed as a person
    types them: posted at once, stamped ``PERSON_GAP`` apart with the last one typed just now
    (tests/terminal/keyboard.py), so the scan gate sees a person, as it did when Textual
    pressed them one by one. Textual's own ``press`` waits for the CPU to go idle twice
    after every key (at least 40 ms each, in 20 ms steps): that was most of the terminal
    tests' time. Every other key (Enter, Tab, Esc, F-keys, ``wait:``) still goes through
    Textual's ``press``, one at a time, with those waits."""
    original = Pilot.press

    async def landed(pilot: Pilot[Any]) -> None:
        for _ in range(400):
            if not getattr(pilot.app, "keys_held", 0):
                break
            await pilot.pause(0.005)

    async def typed_by_a_person(pilot: Pilot[Any], chars: list[str]) -> None:
        await landed(pilot)  # nothing held: these keys start a run of their own
        app = pilot.app
        now = get_time()
        for n, key in enumerate(chars):
            event = events.Key(*textual_key(key))
            event.time = now - (len(chars) - 1 - n) * PERSON_GAP
            event.set_sender(app)
            app.post_message(event)
        await pilot._wait_for_screen()  # the app has fed them all to its scan gate
        await landed(pilot)

    async def press(self: Pilot[Any], *keys: str) -> None:
        run: list[str] = []
        for key in keys:
            if len(key) == 1 and key.isprintable():
                run.append(key)
                continue
            if run:
                await typed_by_a_person(self, run)
                run = []
            await original(self, key)
        if run:
            await typed_by_a_person(self, run)
        await landed(self)
        await self.pause()

    monkeypatch.setattr(Pilot, "press", press)


def textual_key(key: str) -> tuple[str, str | None]:
    """(key, character) of a one-character key, named as Textual's ``App._press_keys``
    names it for ``pilot.press``."""
    if not key.isalnum():
        key = _character_to_key(key)
    original_key = REPLACED_KEYS.get(key, key)
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(original_key))
    except KeyError:
        char = key if len(key) == 1 else None
    return key, char


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real app on a real port; it can be stopped and started again on the same port,
    like a server that goes away mid-checkout."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.port = free_port()
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = TestServer(create_app(self.settings, clock=self.clock), port=self.port)
        await server.start_server()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None


@pytest.fixture
async def live(settings: Settings, clock: Clock) -> AsyncIterator[LiveServer]:
    server = LiveServer(settings, clock)
    await server.start()
    yield server
    await server.stop()


class LossyProxy:
    """A real hop in front of the real server that can lose answers on the way back, like a
    flaky shop network: the request reaches the server and is done there, the terminal never
    hears it. ``lose`` decides, per request, whether to drop the answer."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lose: Callable[[web.Request], bool] = lambda request: False
        self.forwarded: list[str] = []
        self.dropped: list[str] = []
        self.server: TestServer | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._http = aiohttp.ClientSession()
        self.server = TestServer(app, port=free_port())
        await self.server.start_server()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        label = f"{request.method} {request.path_qs}"
        async with self._http.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            status = upstream.status
            kept = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() in ("content-type", "idempotent-replay")
            }
        self.forwarded.append(label)
        if self.lose(request):
            self.dropped.append(label)
            assert request.transport is not None
            request.transport.abort()  # done on the server; the answer never arrives
            raise web.HTTPServiceUnavailable()
        return web.Response(body=payload, status=status, headers=kept)


class HangingProxy(LossyProxy):
    """A hop that, while ``hang`` says so for a request, passes it to the real server (so
    it is done there) and then never answers, like a frozen server or a dead link."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.hang: Callable[[web.Request], bool] = lambda request: False
        self.hung: list[str] = []
        self.released = asyncio.Event()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if not self.hang(request):
            return await super()._forward(request)
        answer = await super()._forward(request)
        self.hung.append(f"{request.method} {request.path_qs}")
        await self.released.wait()  # set only when the proxy stops
        assert request.transport is not None
        request.transport.abort()
        return answer

    async def stop(self) -> None:
        self.released.set()
        await super().stop()


@pytest.fixture
async def hanging(live: LiveServer) -> AsyncIterator[HangingProxy]:
    hop = HangingProxy(live.url)
    await hop.start()
    yield hop
    await hop.stop()


@pytest.fixture
async def proxy(live: LiveServer) -> AsyncIterator[LossyProxy]:
    hop = LossyProxy(live.url)
    await hop.start()
    yield hop
    await hop.stop()


@pytest.fixture
async def till_config(world: World, live: LiveServer) -> TerminalConfig:
    till = await world.till()
    return TerminalConfig(live.url, till.terminal_id, till.secret)


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., TerminalApp]:
    def make(config: TerminalConfig | None, **kwargs: Any) -> TerminalApp:
        kwargs.setdefault("config_path", tmp_path / "config" / "config.json")
        kwargs.setdefault("health_interval", 0)
        kwargs.setdefault("client_options", FAST_CLIENT)
        kwargs.setdefault("catch_errors", False)  # a bug fails the test, not a message
        return TerminalApp(config, **kwargs)

    return make


async def settle(pilot: Pilot[Any]) -> None:
    """Let the workers finish and their messages land."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def shown(node: DOMNode, selector: str) -> str:
    """The text a Static shows; the big digits of an Amount."""
    widget = node.query_one(selector)
    if isinstance(widget, Amount):
        return widget.text
    assert isinstance(widget, Static), widget
    return str(widget.content)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*text)


async def keys_into_focus(pilot: Pilot[Any], text: str) -> None:
    """Characters arrive as key presses into the focused field, as fast as a scanner types
    them (pilot.press waits for idle after every key: too slow for a 400-character code)."""
    await pilot.pause()  # a focus() just asked for lands first
    focused = pilot.app.focused
    assert isinstance(focused, Input), focused
    for ch in text:
        focused.post_message(events.Key(ch, ch))
    await pilot.pause()


async def scan(pilot: Pilot[Any], code: str) -> None:
    """A USB scanner: the code, then Enter."""
    await keys_into_focus(pilot, code)
    await pilot.press("enter")


@pytest.fixture
async def shop(world: World) -> Till:
    return await world.till()


@pytest.fixture
def shop_config(shop: Till, live: LiveServer) -> TerminalConfig:
    return TerminalConfig(live.url, shop.terminal_id, shop.secret)


async def staff_account(
    world: World, role: str, merchant_id: int | None = None, district: str | None = None
) -> str:
    username = f"{role.split('_')[0]}-{uuid.uuid4().hex[:10]}"
    async with world.pool.acquire() as conn:
        await seed.account(
            conn,
            username=username,
            password=PASSWORD,
            role=role,
            merchant_id=merchant_id,
            district=district,
        )
    return username


def on_top(app: App[Any]) -> object:
    """``app.screen`` read afresh, for an identity check: mypy keeps an ``app.screen is x``
    narrowing across the awaits that change the screen, and would call a later check
    impossible (``object``, so that the check narrows nothing either)."""
    return app.screen


async def approve(pilot: Pilot[Any], username: str, password: str) -> ManagerApproval:
    modal = pilot.app.screen
    assert isinstance(modal, ManagerApproval)
    assert pilot.app.focused is modal.query_one("#manager-user")
    await type_text(pilot, username)
    await pilot.press("enter")
    await type_text(pilot, password)
    await pilot.press("enter")
    await settle(pilot)
    return modal


async def wallet_counts(world: World, person: Citizen) -> dict[str, int]:
    """The citizen's vouchers by state, as the wallet shows them."""
    r = await world.client.get("/v1/wallet", headers=person.headers)
    return dict((await r.json())["counts"])


async def redeemed(
    world: World, config: TerminalConfig, person: Citizen, bill_fen: int, count: int
) -> tuple[str, int]:
    """A bill of this till redeemed through the API: its receipt number and redemption id."""
    till = await world.sign_in(Till(config.terminal_id, 0, config.secret))
    receipt_no = f"R-{uuid.uuid4().hex[:6].upper()}"
    r = await world.redeem(
        till, await world.qr(person), bill_fen=bill_fen, count=count, receipt_no=receipt_no
    )
    assert r.status == 201, await r.text()
    return receipt_no, int((await r.json())["redemption_id"])
