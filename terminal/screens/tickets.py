"""The holder's tickets at a sales office's till (issue 13, rule T6): the cashier sees each
usable ticket (number, balance, expiry) and chooses one or several to combine on the
contract: Space toggles, Enter (or F9) quotes the contract again with the chosen ones, Esc
leaves the choice as it was."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, SelectionList, Static
from textual.widgets.selection_list import Selection

from client.wire import HeldTicket
from shared.money import format_yuan
from terminal.i18n import tr

if TYPE_CHECKING:
    from terminal.app import TerminalApp


def usable(tickets: tuple[HeldTicket, ...]) -> tuple[HeldTicket, ...]:
    """The tickets a use may draw on: active, with a balance (rules T5, T6, T13)."""
    return tuple(t for t in tickets if t.status == "active" and t.balance_fen > 0)


def in_drawing_order(numbers: tuple[str, ...], held: tuple[HeldTicket, ...]) -> tuple[str, ...]:
    """Rule T6 [choice]: combined tickets are drawn earliest expiry first (the order the
    server draws them in is the order they are sent)."""
    order = {t.number: (t.deadline, i) for i, t in enumerate(held)}
    return tuple(sorted(numbers, key=lambda n: order.get(n, ("9999-12-31", len(order)))))


class TicketChoice(ModalScreen[tuple[str, ...] | None]):
    """Dismissed with the chosen numbers in drawing order, or None (Esc: no change)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,f9", "choose", "choose", id="choose", priority=True),
        Binding("escape", "cancel", "cancel", id="cancel"),
    ]

    def __init__(self, held: tuple[HeldTicket, ...], chosen: tuple[str, ...]) -> None:
        super().__init__()
        self.held = usable(held)
        self.chosen = chosen

    @property
    def till(self) -> TerminalApp:
        return cast("TerminalApp", self.app)

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.till.lang, **values)

    def label(self, ticket: HeldTicket) -> str:
        return self.t(
            "tickets.line",
            number=ticket.number,
            balance=format_yuan(ticket.balance_fen, thousands=True),
            deadline=ticket.deadline,
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="tickets-box"):
            yield SelectionList[str](
                *(
                    Selection(Content(self.label(t)), t.number, t.number in self.chosen)
                    for t in self.held
                ),
                id="tickets",
                compact=True,
            )
            yield Static(self.t("tickets.hint"), id="tickets-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.till.localize_bindings(self)
        self.query_one("#tickets-box").border_title = self.t("tickets.title")
        self.query_one("#tickets", SelectionList).focus()

    @property
    def selected(self) -> tuple[str, ...]:
        return tuple(self.query_one("#tickets", SelectionList).selected)

    def action_choose(self) -> None:
        chosen = self.selected
        if not chosen:
            self.till.tell(self.t("tickets.none"), title=self.t("title.input"), severity="error")
            return
        self.dismiss(in_drawing_order(chosen, self.held))

    def action_cancel(self) -> None:
        self.dismiss(None)
