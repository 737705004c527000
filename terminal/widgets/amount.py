"""A labelled amount in large digits, readable from the other side of the counter."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Label

from shared.money import format_yuan


class Amount(Vertical):
    DEFAULT_CSS = """
    Amount { height: 4; width: 1fr; }
    Amount Label { width: 1fr; }
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._title = title

    def compose(self) -> ComposeResult:
        yield Label(self._title, markup=False)
        yield Digits("-")

    def show(self, fen: int | None, *, title: str | None = None) -> None:
        """Fen as 元 with two decimals (shared.money), or a dash when there is nothing."""
        self.query_one(Digits).update("-" if fen is None else format_yuan(fen))
        if title is not None and title != self._title:
            self._title = title
            self.query_one(Label).update(title)

    @property
    def title(self) -> str:
        return self._title

    @property
    def text(self) -> str:
        return self.query_one(Digits).value
