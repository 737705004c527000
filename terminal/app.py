"""The cashier terminal: a Textual app over ``client.till``. Keyboard only, 80×24,
function keys in the footer; the server's answers in the cashier's language."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual._time import get_time  # the clock Textual stamps key events with
from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from client.till import RetryWait, TillClient
from client.wire import Session
from terminal.config import Lang, TerminalConfig, data_dir, save_config
from terminal.documents import LOCAL_TZ
from terminal.i18n import describe_error, tr
from terminal.printing import PrinterFactory, PrinterInvalid
from terminal.scanning import Out, ScanGate, Scanned, ScannerSettings, Typed
from terminal.screens.base import WaitingScreen
from terminal.screens.checkout import CheckoutScreen
from terminal.screens.day import DayScreen
from terminal.screens.refund import RefundScreen
from terminal.screens.sales import SalesScreen
from terminal.screens.settings import SettingsScreen

log = logging.getLogger("terminal")

SCREENS_BY_MODE: dict[str, type[Screen[Any]]] = {
    "checkout": CheckoutScreen,
    "refund": RefundScreen,
    "day": DayScreen,
    "settings": SettingsScreen,
    "sales": SalesScreen,  # a developer's sales office: house tickets (issue 13, rule T4)
}
SHOP_ONLY = frozenset({"refund", "day"})
"""What a sales office's till does not do: voucher refunds and the shop's day list."""


@dataclass
class SignedIn(Message):
    session: Session


@dataclass
class SignInFailed(Message):
    error: BaseException


@dataclass
class DistrictNames(Message):
    names: dict[str, str]
    programmes: dict[str, str] | None = None  # a sales office's: programme id -> name


class TerminalApp(App[None]):
    CSS_PATH = "terminal.tcss"
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, Any]] = dict(SCREENS_BY_MODE)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "mode('checkout')", "checkout", id="checkout"),
        Binding("f3", "mode('refund')", "refund", id="refund"),
        Binding("f4", "mode('day')", "day", id="day"),
        Binding("f5", "mode('settings')", "settings", id="settings"),
        Binding("f10", "quit", "quit", id="quit", priority=True),
    ]

    session: reactive[Session | None] = reactive(None)
    online: reactive[bool | None] = reactive(None)
    district_names: reactive[dict[str, str]] = reactive(dict)

    def __init__(
        self,
        config: TerminalConfig | None,
        *,
        config_path: Path,
        lang: Lang | None = None,
        connect: bool = True,
        health_interval: float = 15.0,
        client_options: dict[str, Any] | None = None,
        files_dir: Path | None = None,
        catch_errors: bool = True,
        printer_factory: PrinterFactory | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.catch_errors = catch_errors
        self.printer_factory = printer_factory
        """How a printer setting becomes an ESC/POS printer (tests: python-escpos's Dummy)."""
        self.clock = clock or (lambda: datetime.now(LOCAL_TZ))
        """The till's clock: a shift's opening and closing times."""
        self.config = config
        self.config_path = config_path
        self.lang: Lang = lang or (config.lang if config else "zh")
        self.connect = connect
        self.health_interval = health_interval
        self.client_options: dict[str, Any] = dict(client_options or {})
        self.files_dir = files_dir or data_dir(config_path)
        self.client: TillClient | None = None
        self.history: deque[tuple[str, str, str]] = deque(maxlen=50)
        self.programme_names: dict[str, str] = {}
        """A sales office's house-ticket programmes by id (issue 13): its receipts name them."""
        self.title = tr("app.title", self.lang)
        self.gate: ScanGate[events.Key] = ScanGate(config.scanner if config else ScannerSettings())
        self._deliveries: deque[Out[events.Key]] = deque()
        self._let_through: dict[int, events.Key] = {}
        self._pump: asyncio.Task[None] | None = None
        self._quiet_call: asyncio.TimerHandle | None = None

    # -- life cycle -------------------------------------------------------------------

    async def on_mount(self) -> None:
        self.localize_bindings(self)
        if self.config is not None and self.connect:
            self._start_client(self.config)
        if self.connect and self.health_interval > 0:
            self.set_interval(self.health_interval, self._check_health)
        await self.switch_mode("checkout" if self.config is not None else "settings")

    async def on_unmount(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._quiet_call is not None:
            self._quiet_call.cancel()
        if self.client is not None:
            await self.client.close()

    def _start_client(self, config: TerminalConfig) -> None:
        self.client = TillClient(
            config.server_url,
            config.terminal_id,
            config.secret,
            on_status=self._set_online,
            on_wait=self._server_asks_wait,
            **self.client_options,
        )
        self.run_sign_in()

    def _set_online(self, online: bool) -> None:
        self.online = online

    def _server_asks_wait(self, wait: RetryWait) -> None:
        """Issue 14: the server shed a request (503 ``server_busy`` or ``database_unavailable``
        with Retry-After) and the client sends it again, same key, when asked: the screen
        waiting for it says so (Esc stops waiting), any other screen in a notification."""
        key = "hint.database_wait" if wait.code == "database_unavailable" else "hint.server_busy"
        text = tr(key, self.lang, s=max(1, round(wait.seconds)))
        screen = self.screen
        if isinstance(screen, WaitingScreen) and screen.busy:
            screen.server_wait(wait.seconds, text)
        else:
            self.tell(text, title=tr("title.server_busy", self.lang), severity="warning")

    @work(exclusive=True, group="sign-in", exit_on_error=False)
    async def run_sign_in(self) -> None:
        client = self.client
        if client is None:
            return
        try:
            session = await client.sign_in()
        except Exception as exc:
            self.post_message(SignInFailed(exc))
            return
        self.post_message(SignedIn(session))
        try:
            names = await client.district_names()
            if session.merchant.kind != "developer":
                self.post_message(DistrictNames(names))
                return
            programmes = await client.ticket_programmes()  # issue 13: a sales office's
        except Exception:  # names are a nicety; the code is shown without them
            return
        self.post_message(DistrictNames(names | programmes.district_names(), programmes.names()))

    @on(SignedIn)
    async def _signed_in(self, message: SignedIn) -> None:
        self.session = message.session
        await self._take_till_mode()

    @property
    def sales_office(self) -> bool:
        """Rule T4: the till of a developer's sales office (the sign-in says), which takes
        house tickets where a shop's till takes vouchers."""
        return self.session is not None and self.session.merchant.kind == "developer"

    @property
    def main_mode(self) -> str:
        """Where F2 and a scan go: the shop's checkout or the sales office's contract."""
        return "sales" if self.sales_office else "checkout"

    async def _take_till_mode(self) -> None:
        """The sign-in named the merchant's kind: its main screen, its footer's words."""
        self.localize_bindings(self)
        self.refresh_bindings()
        if self.current_mode in ("checkout", "sales") and self.current_mode != self.main_mode:
            await self.switch_mode(self.main_mode)

    @on(SignInFailed)
    def _sign_in_failed(self, message: SignInFailed) -> None:
        _, title, text = describe_error(message.error, self.lang)
        self.tell(text, title=title, severity="error")

    @on(DistrictNames)
    def _district_names(self, message: DistrictNames) -> None:
        self.district_names = message.names
        if message.programmes is not None:
            self.programme_names = message.programmes

    def _check_health(self) -> None:
        if self.client is not None:
            self.run_health()

    @work(exclusive=True, group="health", exit_on_error=False)
    async def run_health(self) -> None:
        client = self.client
        if client is None:
            return
        alive = await client.health()
        self.online = alive
        if alive and self.session is None:
            self.run_sign_in()

    # -- keys and scans (issue 11 item 1) ---------------------------------------------
    #
    # Every key from the terminal passes the scan gate (terminal/scanning.py) before Textual
    # sees it: a scanner's burst goes to checkout as one scan, a person's keys go where the
    # focus is, in the order typed. After a key that can move the focus or change the
    # screen (Enter, Tab, Esc, F-keys...) and after a scan, the next key waits until the
    # app has dealt with it, so a key typed 2 ms after Enter lands in the next field.

    @property
    def keys_held(self) -> int:
        """Keys (and scans) taken from the terminal but not yet delivered."""
        pumping = self._pump is not None and not self._pump.done()
        return len(self.gate.held) + len(self._deliveries) + int(pumping)

    async def on_event(self, event: events.Event) -> None:
        if (
            isinstance(event, events.Key)
            and not event.is_forwarded
            and self._let_through.pop(id(event), None) is None
        ):
            self._take_key(event)
            return
        await super().on_event(event)

    def _take_key(self, event: events.Key) -> None:
        self._deliver(self.gate.feed(event, event.key, event.character, event.time))
        self._wait_for_quiet()

    def _wait_for_quiet(self) -> None:
        if self._quiet_call is not None:
            self._quiet_call.cancel()
            self._quiet_call = None
        due = self.gate.due()
        if due is not None:
            delay = max(0.0, due - get_time()) + 0.001
            # through the app's queue, behind any key already waiting there
            self._quiet_call = asyncio.get_running_loop().call_later(
                delay, lambda: self.call_later(self._gate_quiet)
            )

    def _gate_quiet(self) -> None:
        self._deliver(self.gate.quiet(get_time()))
        self._wait_for_quiet()

    def _deliver(self, outs: list[Out[events.Key]]) -> None:
        if not outs:
            return
        self._deliveries.extend(outs)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_deliveries())

    async def _run_deliveries(self) -> None:
        while self._deliveries:
            out = self._deliveries.popleft()
            if isinstance(out, Typed):
                key = out.key
                copy = events.Key(key.key, key.character)
                copy.time = key.time
                copy.set_sender(self)
                self._let_through[id(copy)] = copy
                self.post_message(copy)
                if not key.is_printable:
                    await self._quiet_down()
            elif isinstance(out, Scanned):
                self.call_later(self._make_way_for_scan)
                await self._quiet_down()
                self.screen.call_later(self._hand_scan, out.text)
                await self._quiet_down()

    async def _make_way_for_scan(self) -> None:
        """A scan belongs to checkout: close the receipt, leave another screen."""
        while isinstance(self.screen, ModalScreen) and len(self.screen_stack) > 1:
            await self.screen.dismiss(None)
        if self.current_mode != self.main_mode:
            await self.switch_mode(self.main_mode)

    def _hand_scan(self, text: str) -> None:
        screen = self.screen
        if isinstance(screen, CheckoutScreen | SalesScreen):
            screen.take_scan(text)

    async def _quiet_down(self, rounds: int = 4) -> None:
        """Until the app, the screen and its widgets have handled what is queued now, and
        what that caused (a Submitted message, a focus change, a new screen's mount)."""
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            try:
                nodes: list[DOMNode] = [self, *self.screen.walk_children(with_self=True)]
            except Exception:
                return
            waits: list[asyncio.Future[None]] = []
            for node in nodes:
                done: asyncio.Future[None] = loop.create_future()

                def finish(done: asyncio.Future[None] = done) -> None:
                    if not done.done():
                        done.set_result(None)

                if node.call_later(finish):
                    waits.append(done)
            if waits:
                await asyncio.wait(waits, timeout=2.0)

    # -- actions ----------------------------------------------------------------------

    async def action_mode(self, mode: str) -> None:
        if mode == "checkout":
            mode = self.main_mode  # F2: a shop's checkout, a sales office's contract
        if self.sales_office and mode in SHOP_ONLY:
            self.tell(tr("sales.not_here", self.lang), title=tr("title.refused", self.lang))
            return
        if mode in SCREENS_BY_MODE and mode != self.current_mode:
            await self.switch_mode(mode)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A sales office's footer shows no voucher refund nor day list."""
        shop_only = action == "mode" and bool(parameters) and parameters[0] in SHOP_ONLY
        return not (shop_only and self.sales_office)

    async def pair(self, config: TerminalConfig, session: Session) -> None:
        """Keep a credential the server accepted (0600) and use it from now on."""
        config = replace(config, lang=self.lang)
        try:
            save_config(self.config_path, config)
        except OSError as exc:
            self.tell(str(exc), title=tr("title.error", self.lang), severity="error")
            return
        old = self.client
        self.config = config
        self.gate.settings = config.scanner
        self.session = session
        self.online = True
        if old is not None:
            await old.close()
        self.client = None
        if self.connect:
            self._start_client(config)
        self.tell(
            tr("settings.paired", self.lang, merchant=session.merchant.name),
            title=tr("title.ok", self.lang),
        )
        self.localize_bindings(self)
        await self.switch_mode(self.main_mode)

    async def set_language(self, lang: Lang) -> None:
        """Chinese or English, everywhere at once; saved with the pairing."""
        self.lang = lang
        self.title = tr("app.title", lang)
        if self.config is not None:
            self.config = self.config.with_lang(lang)
            try:
                save_config(self.config_path, self.config)
            except OSError as exc:
                self.tell(str(exc), title=tr("title.error", lang), severity="error")
        self.localize_bindings(self)
        current = self.current_mode
        for mode, screen in SCREENS_BY_MODE.items():
            if mode != current:  # built again, in the new language, when next shown
                await self.remove_mode(mode)
                self.add_mode(mode, screen)
        await self.screen.recompose()
        self.localize_bindings(self.screen)
        self.refresh_bindings()

    # -- helpers ----------------------------------------------------------------------

    @property
    def has_printer(self) -> bool:
        """A receipt printer is set up (F5, or ``printer`` in the config file)."""
        if self.config is None:
            return False
        try:
            return self.config.printer_settings.kind != "none"
        except PrinterInvalid:
            return True  # set, but wrong: printing says why

    def localize_bindings(self, node: DOMNode) -> None:
        """Footer words in the cashier's language: a binding's id names its label."""
        table = node._bindings.key_to_bindings
        words = {"checkout": "sales"} if self.sales_office else {}  # F2's word (issue 13)
        for key, bindings in table.items():
            table[key] = [
                replace(b, description=tr(f"key.{words.get(b.id, b.id)}", self.lang)) if b.id else b
                for b in bindings
            ]

    def get_key_display(self, binding: Binding) -> str:
        display = super().get_key_display(binding)
        return display.upper() if display[:1] == "f" and display[1:].isdigit() else display

    def tell(self, text: str, *, title: str = "", severity: SeverityLevel = "information") -> None:
        """A notification (never markup: server and cashier text is shown as is)."""
        self.history.append((severity, title, text))
        notices = self.screen.query("#notice") if self.screen_stack else None
        if notices:  # a screen with its own notice lines: nothing is drawn over it
            notice = notices.first(Static)
            notice.update(f"{title}: {text}" if title else text)
            notice.set_classes(f"-{severity}")
            return
        self.notify(text, title=title, severity=severity, markup=False, timeout=6)

    async def run_action(
        self,
        action: Any,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """A key's action that fails says so briefly and the till goes on (issue 11 item 8)."""
        try:
            return await super().run_action(action, default_namespace, namespaces)
        except Exception as error:
            if not self.catch_errors:
                raise
            self.report_unexpected(error)
            return True

    def report_unexpected(self, error: BaseException) -> None:
        """An unexpected error: a short message and the log, never Textual's traceback.
        ``catch_errors=False`` (tests) fails loudly instead."""
        log.error("unexpected error in the terminal", exc_info=error)
        self.tell(tr("error.ui", self.lang), title=tr("title.error", self.lang), severity="error")
