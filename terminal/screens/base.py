"""What every till screen shares: the status line, the footer, words in the cashier's
language, and failures turned into notifications (never a traceback)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar, cast

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from client.http import OutcomeUnknown
from client.till import TillClient
from terminal.config import Lang
from terminal.i18n import describe_error, tr
from terminal.scanning import classify_scan

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


P = TypeVar("P", bound=Pending)
T = TypeVar("T")


class WaitingScreen(TillScreen):
    """A till screen that sends one request at a time and may stop waiting for its answer
    (Esc, issue 11 item 4): its worker group is cancelled and the outcome is unknown, the
    request's key kept so that the same request can go again (rule U7). Its ``#result``
    line says where things stand (``say``)."""

    WORKER_GROUP: ClassVar[str]
    busy: bool
    pending: Pending | None
    outcome: str = ""  # the last result's kind, for tests and the next cashier action

    _deadline: float = 0.0  # loop time: when the answer being waited for is given up

    def say(self, text: str, outcome: str) -> None:
        self.outcome = outcome
        result = self.query_one("#result", Static)
        result.update(text)
        result.set_classes(f"-{outcome}" if outcome else "")
        self.refresh_bindings()

    @property
    def result_text(self) -> str:
        return str(self.query_one("#result", Static).content)

    @property
    def answer_wait(self) -> float:
        config = self.till.config
        return config.answer_wait_s if config is not None else 10.0

    async def answer_within(self, call: Awaitable[T]) -> T:
        """``call``'s answer within ``answer_wait_s``, or ``TimeoutError``; a wait the server
        asked for (``server_wait``) moves the deadline on by as much (issue 14)."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.answer_wait
        task = asyncio.ensure_future(call)
        try:
            while not task.done():
                left = self._deadline - loop.time()
                if left <= 0:
                    raise TimeoutError
                await asyncio.wait({task}, timeout=left)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        return task.result()

    def server_wait(self, seconds: float, text: str) -> None:
        """Issue 14: the server refused for now (503 + Retry-After) and the client sends the
        same request (same key) again after ``seconds``: the cashier reads so, the wait for
        the answer starts afresh then, and Esc still stops waiting."""
        loop = asyncio.get_running_loop()
        self._deadline = max(self._deadline, loop.time() + seconds + self.answer_wait)
        self.say(text, "server_busy")

    async def within_wait(
        self,
        pending: P,
        call: Awaitable[T],
        done: Callable[[T, P], Message],
        failed: Callable[[BaseException, P], Message],
    ) -> None:
        """Rule U7 and issue 11 item 4: at most ``answer_wait_s``, then the outcome is
        unknown (the same key asks or sends again later); never a success not received."""
        try:
            answer = await self.answer_within(call)
        except TimeoutError:
            self.post_message(failed(OutcomeUnknown(pending.key, "no answer in time"), pending))
            return
        except Exception as exc:
            self.post_message(failed(exc, pending))
            return
        self.post_message(done(answer, pending))

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


def sending_bindings(*f7: Binding) -> list[BindingType]:
    """The keys of a screen that quotes, then sends one request at a time (the checkout and
    the sales office): F9 confirms, F8 asks about an unknown outcome, F6 starts the next
    customer or contract, the screen's own F7, and Esc stops waiting (issue 11 item 4)."""
    return [
        Binding("f9", "confirm", "confirm", id="confirm"),
        Binding("f8", "check", "check", id="check"),
        Binding("f6", "new", "new", id="new"),
        *f7,
        Binding("escape", "stop_waiting", "stop", id="stop"),
    ]


Q = TypeVar("Q")  # the quote shown
S = TypeVar("S", bound=Pending)  # the request sent, its outcome not yet known
D = TypeVar("D")  # the request's answer, once known


class SendingScreen(WaitingScreen, Generic[Q, S, D]):
    """What the checkout and the sales office share: a quote for a scanned code, a code held
    until the form is complete, one request pending at a time under its key (rule U7), the
    last answer (for its receipt) and how often F8 asked."""

    def __init__(self) -> None:
        super().__init__()
        self.quote: Q | None = None
        self.token = ""
        self.held_token = ""
        """A code scanned before the form was complete: quoted once it is."""
        self.pending: S | None = None
        self.last: D | None = None
        self.busy = False
        self.checks = 0  # how often F8 asked the server about the pending request

    def scanned_code(self, text: str, *, unknown_key: str, busy_key: str) -> str | None:
        """A scan this screen may take: our code, stripped, or None when the cashier was told
        why not. Anything else scanned is named for what it is (issue 11 item 8: an old code
        is ours, expired, and the cure is a fresh one) and changes nothing; while a request is
        pending or sending, one customer at a time: its outcome comes first (``unknown_key``
        when it is unknown, ``busy_key`` while sending)."""
        code = text.strip()
        kind = classify_scan(code)
        if kind != "voucher":
            title = "title.refresh" if kind == "old_voucher" else "title.not_voucher"
            self.till.tell(self.t(f"scan.{kind}"), title=self.t(title), severity="error")
            return None
        if self.busy or self.pending is not None:
            key = unknown_key if self.pending is not None else busy_key
            self.till.tell(self.t(key), title=self.t("title.busy"), severity="error")
            return None
        return code
