"""A keyboard and a keyboard-wedge scanner, as the terminal's driver delivers them: key
events posted to the app in one go, each stamped with the moment it was typed. Timing is
decided by those stamps, never by how fast this machine runs the test (rule: no timed
assertions that can flake on a slow machine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual import _time, events
from textual.keys import _character_to_key
from textual.pilot import Pilot

SCANNER_GAP = 0.002  # 2 ms a key: the fast end of a USB scanner
PERSON_GAP = 0.15  # a quick cashier


def key_event(key_or_char: str, at: float) -> events.Key:
    """``"a"``, ``"-"``, ``"enter"``, ``"f9"``: a key event typed at ``at`` (monotonic)."""
    if len(key_or_char) == 1:
        event = events.Key(_character_to_key(key_or_char), key_or_char)
    else:
        char = {"enter": "\r", "tab": "\t", "escape": "\x1b"}.get(key_or_char)
        event = events.Key(key_or_char, char)
    event.time = at
    return event


@dataclass
class Typing:
    """A timeline of keys; ``send`` posts them all at once, stamped in the past so the
    last one was typed just now."""

    keys: list[tuple[str, float]] = field(default_factory=list)
    clock: float = 0.0

    def person(self, text: str, *, gap: float = PERSON_GAP) -> Typing:
        for ch in text:
            self.clock += gap
            self.keys.append((ch, self.clock))
        return self

    def press(self, *keys: str, gap: float = PERSON_GAP) -> Typing:
        for key in keys:
            self.clock += gap
            self.keys.append((key, self.clock))
        return self

    def scanner(
        self, code: str, *, gap: float = SCANNER_GAP, after: float = PERSON_GAP, end: str = "enter"
    ) -> Typing:
        self.clock += after - gap
        for ch in code:
            self.clock += gap
            self.keys.append((ch, self.clock))
        if end:
            self.clock += gap
            self.keys.append((end, self.clock))
        return self

    def events(self, now: float | None = None) -> list[events.Key]:
        now = _time.get_time() if now is None else now
        last = self.keys[-1][1] if self.keys else 0.0
        return [key_event(k, now - (last - t)) for k, t in self.keys]

    async def send_and_drain(self, pilot: Pilot[Any]) -> None:
        self.send(pilot)
        await drain(pilot)

    def send(self, pilot: Pilot[Any]) -> None:
        driver = pilot.app._driver
        assert driver is not None
        for event in self.events():
            event.set_sender(pilot.app)
            driver.send_message(event)


async def typed(pilot: Pilot[Any], typing: Typing) -> None:
    """Send the timeline and wait until the app has dealt with every key."""
    typing.send(pilot)
    await pilot.pause()


async def drain(pilot: Pilot[Any], *, rounds: int = 400) -> None:
    """Until the app holds no key back (the scan gate), every key has landed and the
    workers it started are done."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        if not getattr(app, "keys_held", 0):
            break
        await pilot.pause(0.005)
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()
