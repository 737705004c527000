"""A merchant manager's approval at the till: username and password, checked by the server
(rule X2), accepted only for a ``merchant_manager`` of this till's own merchant.

- Before a refund, when the shop's setting asks for it (issue 11 item 5): the server issues
  an approval of that one refund (``POST /v1/redemptions/{id}/refund-approvals``: this bill,
  this amount, the refund's idempotency key; two minutes), which the refund then carries.
  The manager's own access token never reaches the till.
- Before changing the server or re-pairing (item 8): ``POST /v1/auth/staff``, the answer's
  role and merchant checked here; the token is dropped at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from client.http import ApiError, Unreachable
from client.till import StaffSession, TillClient
from terminal.i18n import describe_error, tr

if TYPE_CHECKING:
    from terminal.app import TerminalApp

MANAGER_ROLE = "merchant_manager"


def manager_approves(staff: StaffSession, merchant_id: int) -> bool:
    """A manager of this till's merchant, and no one else (not another shop's manager, not
    a district or city operator)."""
    return staff.role == MANAGER_ROLE and staff.merchant_id == merchant_id


@dataclass(frozen=True, slots=True)
class RefundToApprove:
    """The one refund a manager approves: this bill, down to this amount, sent with this
    idempotency key (the server binds its approval to all three, and to this till)."""

    redemption_id: int
    remaining_bill_fen: int
    key: str


@dataclass
class Checked(Message):
    staff: StaffSession | None
    problem: str
    """An i18n key or plain words when ``staff`` is None."""


class ManagerApproval(ModalScreen[StaffSession | None]):
    """Dismissed with the approving manager, or None (cancelled, or a scan took over)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "approve", "approve", id="approve"),
        Binding("escape", "cancel", "cancel", id="cancel"),
    ]

    def __init__(
        self,
        reason: str,
        client: TillClient,
        merchant_id: int | None,
        refund: RefundToApprove | None = None,
    ) -> None:
        super().__init__()
        self.reason = reason
        self.approval_client = client
        self.merchant_id = merchant_id
        self.refund = refund
        """Set: the server approves this refund alone (its ``token`` is the approval)."""
        self.busy = False

    @property
    def till(self) -> TerminalApp:
        return cast("TerminalApp", self.app)

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.till.lang, **values)

    def compose(self) -> ComposeResult:
        with Vertical(id="approval-box"):
            yield Static(self.reason, id="approval-reason", markup=False)
            with Horizontal(classes="row"):
                yield Label(self.t("manager.username"), classes="label")
                yield Input(id="manager-user", compact=True, max_length=64)
            with Horizontal(classes="row"):
                yield Label(self.t("manager.password"), classes="label")
                yield Input(id="manager-password", compact=True, password=True, max_length=200)
            yield Static(self.t("manager.hint"), id="approval-result", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#approval-box").border_title = self.t("manager.title")
        self.till.localize_bindings(self)
        self.query_one("#manager-user", Input).focus()

    @on(Input.Submitted, "#manager-user")
    def _user_entered(self) -> None:
        self.query_one("#manager-password", Input).focus()

    @on(Input.Submitted, "#manager-password")
    def _password_entered(self) -> None:
        self.action_approve()

    def action_approve(self) -> None:
        if self.busy:
            return
        username = self.query_one("#manager-user", Input).value.strip()
        password = self.query_one("#manager-password", Input).value
        if not username or not password:
            self._say(self.t("input.manager"), "refused")
            self.query_one("#manager-user" if not username else "#manager-password").focus()
            return
        self.busy = True
        self._say(self.t("manager.checking"), "working")
        self.run_check(username, password)

    @work(exclusive=True, group="approval", exit_on_error=False)
    async def run_check(self, username: str, password: str) -> None:
        client = self.approval_client
        wait = self.till.config.answer_wait_s if self.till.config else 10.0
        try:
            merchant_id = self.merchant_id
            if merchant_id is None:  # not signed in yet: who is this till?
                session = await asyncio.wait_for(client.sign_in(), wait)
                merchant_id = session.merchant.id
            if self.refund is not None:
                approving = self._refund_approval(username, password, merchant_id)
                staff = await asyncio.wait_for(approving, wait)
            else:
                staff = await asyncio.wait_for(client.staff_sign_in(username, password), wait)
        except (Unreachable, TimeoutError):
            self.post_message(Checked(None, "manager.no_session"))
            return
        except ApiError as exc:
            self.post_message(Checked(None, self._refused(exc)))
            return
        except Exception as exc:
            self.post_message(Checked(None, describe_error(exc, self.till.lang)[2]))
            return
        if not manager_approves(staff, merchant_id):
            self.post_message(Checked(None, "manager.not_manager"))
            return
        self.post_message(Checked(staff, ""))

    async def _refund_approval(
        self, username: str, password: str, merchant_id: int
    ) -> StaffSession:
        """The server's approval of ``self.refund``: it checked the password and that this is
        a manager of this till's shop (or refused, ``manager_approval_required``)."""
        refund = self.refund
        assert refund is not None
        granted = await self.approval_client.refund_approval(
            refund.redemption_id, refund.remaining_bill_fen, refund.key, username, password
        )
        return StaffSession(granted.approved_by, MANAGER_ROLE, merchant_id, granted.approval)

    def _refused(self, exc: ApiError) -> str:
        """An i18n key or plain words for a refusal of the manager."""
        reason = exc.details.get("reason")
        if (exc.code == "unauthenticated" and self.refund is None) or reason == "wrong_password":
            return "manager.wrong"
        if reason == "not_this_shops_manager":
            return "manager.not_manager"
        return describe_error(exc, self.till.lang)[2]

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        self.busy = False
        if message.staff is not None:
            self.dismiss(message.staff)
            return
        problem = message.problem
        self._say(self.t(problem) if problem.startswith("manager.") else problem, "refused")
        password = self.query_one("#manager-password", Input)
        password.value = ""
        password.focus()

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "approval")
        self.dismiss(None)

    def _say(self, text: str, outcome: str) -> None:
        result = self.query_one("#approval-result", Static)
        result.update(text)
        result.set_classes(f"-{outcome}")

    @property
    def result_text(self) -> str:
        return str(self.query_one("#approval-result", Static).content)
