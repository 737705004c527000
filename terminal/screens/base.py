"""What every till screen shares: the status line, the footer, words in the cashier's
language, and failures turned into notifications (never a traceback)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from textual.message import Message
from textual.screen import Screen

from client.till import TillClient
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


class Pending(Protocol):
    @property
    def key(self) -> str: ...


class WaitingScreen(TillScreen):
    """A till screen that sends one request at a time and may stop waiting for its answer
    (Esc, issue 11 item 4): its worker group is cancelled and the outcome is unknown, the
    request's key kept so that the same request can go again (rule U7)."""

    WORKER_GROUP: ClassVar[str]
    busy: bool
    pending: Pending | None

    def outcome_unknown(self) -> Message:
        """The message that says the answer for ``self.pending`` will not be waited for."""
        raise NotImplementedError

    def action_stop_waiting(self) -> None:
        if not self.busy or self.pending is None:
            return
        self.workers.cancel_group(self, self.WORKER_GROUP)
        self.post_message(self.outcome_unknown())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_waiting":  # Esc shows in the footer only while waiting
            return self.busy and self.pending is not None
        return True
