"""Settings and pairing: the credential an operator issued (server URL, terminal id,
secret), checked against the server before it is saved (0600); and the language. On a till
that is already paired, changing the server or re-pairing needs a manager of this till's
merchant first (issue 11 item 8): otherwise anyone at the counter could point the till at
another server. The first pairing of an unpaired till needs none."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Label, Static

from client.till import StaffSession, TillClient
from client.wire import Session
from terminal.config import (
    DEFAULT_SERVER,
    ConfigInvalid,
    TerminalConfig,
    keep_local_settings,
    normalise_server_url,
    parse_secret,
    parse_terminal_id,
    save_config,
)
from terminal.printing import PrinterInvalid, parse_paper, parse_printer
from terminal.screens.base import TillScreen
from terminal.widgets.status_bar import StatusBar


@dataclass
class Paired(Message):
    config: TerminalConfig
    session: Session


@dataclass
class PairFailed(Message):
    error: BaseException


class SettingsScreen(TillScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "pair", "pair", id="pair"),
        Binding("f6", "toggle_lang", "lang", id="lang"),
        Binding("f8", "save_printer", "printer", id="printer"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def compose(self) -> ComposeResult:
        config = self.till.config
        yield StatusBar()
        yield Static(self.t("settings.hint"), id="hint", markup=False)
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label(self.t("settings.server"), classes="label")
                yield Input(
                    config.server_url if config else DEFAULT_SERVER, id="server", compact=True
                )
            with Horizontal(classes="row"):
                yield Label(self.t("settings.terminal_id"), classes="label")
                yield Input(
                    str(config.terminal_id) if config else "",
                    id="terminal-id",
                    compact=True,
                    restrict=r"[0-9]*",
                    max_length=19,
                )
            with Horizontal(classes="row"):
                yield Label(self.t("settings.secret"), classes="label")
                yield Input(
                    placeholder="••••••••" if config else "",
                    id="secret",
                    password=True,
                    compact=True,
                )
            with Horizontal(classes="row"):
                yield Label(self.t("settings.printer"), classes="label")
                yield Input(
                    config.printer if config else "none",
                    placeholder=self.t("settings.printer.placeholder"),
                    id="printer",
                    compact=True,
                    max_length=120,
                )
            with Horizontal(classes="row"):
                yield Label(self.t("settings.paper"), classes="label")
                yield Input(
                    str(config.paper_mm) if config else "58",
                    id="paper",
                    compact=True,
                    max_length=2,
                    restrict=r"[0-9]*",
                )
            with Horizontal(classes="row"):
                yield Label(self.t("settings.lang"), classes="label")
                yield Static(self.t("settings.lang.now"), id="lang", markup=False)
        yield Static(
            self.t("settings.current", id=config.terminal_id, url=config.server_url)
            if config
            else "",
            id="current",
            markup=False,
        )
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        target = "#secret" if self.till.config else "#terminal-id"
        self.query_one(target, Input).focus()

    @on(Input.Submitted, "#server")
    def _server_entered(self) -> None:
        self.query_one("#terminal-id", Input).focus()

    @on(Input.Submitted, "#terminal-id")
    def _id_entered(self) -> None:
        self.query_one("#secret", Input).focus()

    @on(Input.Submitted, "#secret")
    def _secret_entered(self) -> None:
        self.action_pair()

    def read_form(self) -> TerminalConfig | None:
        """The credential typed in, or None after telling the cashier which field is wrong."""
        config = self.till.config
        field = "server"
        try:
            server = normalise_server_url(self.query_one("#server", Input).value)
            field = "terminal-id"
            terminal_id = parse_terminal_id(self.query_one("#terminal-id", Input).value)
            field = "secret"
            secret_text = self.query_one("#secret", Input).value
            if not secret_text.strip() and config is not None and config.terminal_id == terminal_id:
                secret = config.secret  # the saved secret is never shown; blank keeps it
            else:
                secret = parse_secret(secret_text)
        except ConfigInvalid:
            self.till.tell(self.t(f"input.{field}"), title=self.t("title.input"), severity="error")
            self.query_one(f"#{field}", Input).focus()
            return None
        fresh = TerminalConfig(server, terminal_id, secret, self.lang)
        return keep_local_settings(fresh, config) if config is not None else fresh

    def action_pair(self) -> None:
        if self.busy:
            return
        config = self.read_form()
        if config is None:
            return
        if self.till.config is not None:
            self._ask_manager(config)
            return
        self._start_pairing(config)

    def _start_pairing(self, config: TerminalConfig) -> None:
        self.busy = True
        self.query_one("#current", Static).update(self.t("settings.pairing"))
        self.run_pair(config)

    def _ask_manager(self, config: TerminalConfig) -> None:
        """The current server says whether a manager of this till's merchant approves."""
        from terminal.screens.approval import ManagerApproval

        client = self.client
        if client is None:
            self.till.tell(
                self.t("manager.no_session"), title=self.t("title.error"), severity="error"
            )
            return
        session = self.till.session

        def approved(staff: StaffSession | None) -> None:
            if staff is None:
                self.till.tell(self.t("manager.cancelled"), title=self.t("manager.title"))
                return
            self.till.tell(
                self.t("manager.approved", name=staff.username), title=self.t("title.ok")
            )
            self._start_pairing(config)

        self.app.push_screen(
            ManagerApproval(
                self.t("manager.pair"), client, session.merchant.id if session else None
            ),
            callback=approved,
        )

    @work(exclusive=True, group="pair", exit_on_error=False)
    async def run_pair(self, config: TerminalConfig) -> None:
        client = TillClient(
            config.server_url, config.terminal_id, config.secret, **self.till.client_options
        )
        try:
            session = await client.sign_in()
        except Exception as exc:
            self.post_message(PairFailed(exc))
            return
        finally:
            await client.close()
        self.post_message(Paired(config, session))

    @on(Paired)
    async def _paired(self, message: Paired) -> None:
        self.busy = False
        config = message.config
        self.query_one("#secret", Input).value = ""
        self.query_one("#current", Static).update(
            self.t("settings.current", id=config.terminal_id, url=config.server_url)
        )
        await self.till.pair(config, message.session)

    @on(PairFailed)
    def _pair_failed(self, message: PairFailed) -> None:
        self.busy = False
        config = self.till.config
        self.query_one("#current", Static).update(
            self.t("settings.current", id=config.terminal_id, url=config.server_url)
            if config
            else ""
        )
        self.fail(message.error)

    def action_save_printer(self) -> None:
        """F8: the receipt printer and its paper (this till's own: no manager needed)."""
        config = self.till.config
        if config is None:
            self.till.tell(self.t("input.unpaired"), title=self.t("title.error"), severity="error")
            return
        try:
            printer = parse_printer(self.query_one("#printer", Input).value)
            paper = parse_paper(self.query_one("#paper", Input).value)
        except PrinterInvalid as exc:
            self.till.tell(
                self.t("input.printer", reason=exc), title=self.t("title.input"), severity="error"
            )
            return
        updated = replace(config, printer=printer.spec, paper_mm=paper)
        try:
            save_config(self.till.config_path, updated)
        except OSError as exc:
            self.till.tell(str(exc), title=self.t("title.error"), severity="error")
            return
        self.till.config = updated
        self.query_one("#printer", Input).value = printer.spec
        self.till.tell(
            self.t("settings.printer.saved", spec=printer.spec, mm=paper), title=self.t("title.ok")
        )

    async def action_toggle_lang(self) -> None:
        await self.till.set_language("en" if self.lang == "zh" else "zh")
