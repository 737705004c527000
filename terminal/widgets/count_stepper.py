"""How many vouchers to use: the cashier can only lower it from the quote (rule U3: the
citizen may use fewer), with - / + (or arrows, or a digit), and Enter confirms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class CountStepper(Widget, can_focus=True):
    DEFAULT_CSS = """
    CountStepper { width: 13; height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("minus,left,down,underscore", "step(-1)", "fewer", show=False, id="fewer"),
        Binding("plus,equals_sign,right,up", "step(1)", "more", show=False, id="more"),
        Binding("enter", "confirm", "confirm", show=False),
    ]

    value: reactive[int] = reactive(0)
    maximum: reactive[int] = reactive(0)

    @dataclass
    class Changed(Message):
        stepper: CountStepper
        value: int

    @dataclass
    class Confirmed(Message):
        stepper: CountStepper

    def render(self) -> Text:
        if self.maximum <= 0:
            return Text(" −   -   + ")
        return Text(f" −  {self.value:>2}  + ")

    def set_range(self, maximum: int, value: int | None = None) -> None:
        """A new upper bound (the quote's usable count); the value starts at the top.
        Set directly: no Changed message, the caller renders."""
        self.maximum = max(0, maximum)
        self.value = self.maximum if value is None else max(0, min(value, self.maximum))

    def action_step(self, delta: int) -> None:
        if self.maximum <= 0:
            return
        new = max(1, min(self.maximum, self.value + delta))
        if new != self.value:
            self.value = new
            self.post_message(self.Changed(self, new))

    def action_confirm(self) -> None:
        self.post_message(self.Confirmed(self))

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character.isdigit() and self.maximum > 0:
            wanted = int(event.character)
            if 1 <= wanted <= self.maximum:
                self.value = wanted
                self.post_message(self.Changed(self, wanted))
            event.stop()
