"""The top line: merchant, district, terminal, and whether the server answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from terminal.documents import terminal_name
from terminal.i18n import district_name, tr

if TYPE_CHECKING:
    from terminal.app import TerminalApp


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar { height: 1; dock: top; }
    StatusBar #who { width: 1fr; }
    StatusBar #net { width: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="who", markup=False)
        yield Static(id="net", markup=False)

    def on_mount(self) -> None:
        app = cast("TerminalApp", self.app)
        self.watch(app, "session", self._refresh, init=False)
        self.watch(app, "online", self._refresh, init=False)
        self.watch(app, "district_names", self._refresh, init=False)
        self._refresh()

    def _refresh(self, *_: object) -> None:
        app = cast("TerminalApp", self.app)
        lang = app.lang
        session = app.session
        who = self.query_one("#who", Static)
        net = self.query_one("#net", Static)
        if session is None:
            if app.config is None:
                who.update(f" {tr('app.title', lang)} · {tr('status.unpaired', lang)}")
            else:
                who.update(
                    f" {tr('app.title', lang)} · {terminal_name(app.config.terminal_id, '', lang)}"
                )
        else:
            district = district_name(session.merchant.district, lang, app.district_names)
            name = terminal_name(session.terminal.id, session.terminal.label, lang)
            who.update(f" {session.merchant.name} · {district} · {name}")
        if app.config is None:
            state, cls = "", "-unpaired"
        elif app.online is None:
            state, cls = tr("status.checking", lang), "-checking"
        elif app.online:
            state, cls = tr("status.online", lang), "-online"
        else:
            state, cls = tr("status.offline", lang), "-offline"
        net.update(f"{state} ")
        net.set_classes(cls)
