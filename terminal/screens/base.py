"""What every till screen shares: the status line, the footer, words in the cashier's
language, and failures turned into notifications (never a traceback)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.message import Message
from textual.screen import Screen

from terminal.client import TillClient
from terminal.config import Lang
from terminal.i18n import describe_error, tr

if TYPE_CHECKING:
    from terminal.app import TerminalApp


class TillScreen(Screen[None]):
    @property
    def till(self) -> TerminalApp:
        return cast("TerminalApp", self.app)

    @property
    def lang(self) -> Lang:
        return self.till.lang

    @property
    def client(self) -> TillClient | None:
        return self.till.client

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.lang, **values)

    def on_mount(self) -> None:
        self.till.localize_bindings(self)

    async def _on_message(self, message: Message) -> None:
        """A handler that fails says so briefly and the screen goes on (issue 11 item 8)."""
        try:
            await super()._on_message(message)
        except Exception as error:
            if not self.till.catch_errors:
                raise
            self.till.report_unexpected(error)

    def fail(self, exc: BaseException) -> str:
        """Tell the cashier, in plain words, what went wrong; return the error code."""
        code, title, text = describe_error(exc, self.lang)
        if code in ("unexpected", "bad_answer"):
            self.log.error(repr(exc))
        self.till.tell(text, title=title, severity="error")
        return code

    def need_client(self) -> TillClient | None:
        if self.client is None:
            self.till.tell(self.t("input.unpaired"), title=self.t("title.error"), severity="error")
        return self.client
