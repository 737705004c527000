"""The shift (交班): opened and closed on this till, kept in the terminal's local state file
next to its config, and its summary (bills, vouchers, value, cash collected, refunds since
the shift opened, for this till) from the day lists of the dates it spans (issue 11 item 6).
No Textual here."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from client.wire import DayReport
from shared.money import format_yuan
from terminal.config import Lang
from terminal.documents import LOCAL_TZ, _line, display_width, local_time, pad, terminal_name
from terminal.i18n import tr

STATE_FILE = "state.json"
MAX_SHIFT_DAYS = 31
"""A shift spans at most this many local dates (a till left open over a holiday)."""


@dataclass(frozen=True, slots=True)
class Shift:
    terminal_id: int
    opened_at: str
    """ISO time with its offset, from the till's clock."""
    closed_at: str = ""


@dataclass(frozen=True, slots=True)
class ShiftState:
    open: Shift | None = None
    last: Shift | None = None
    """The shift closed last, to print its summary again."""


def state_path(config_path: Path) -> Path:
    return config_path.parent / STATE_FILE


def _shift(data: object) -> Shift | None:
    if not isinstance(data, dict):
        return None
    try:
        shift = Shift(
            int(data["terminal_id"]), str(data["opened_at"]), str(data.get("closed_at") or "")
        )
        datetime.fromisoformat(shift.opened_at)
    except (KeyError, TypeError, ValueError):
        return None
    return shift


def load_state(path: Path) -> ShiftState:
    """The saved shift state; an unreadable file counts as no shift (and is said by the UI
    when it opens a new one over it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ShiftState()
    if not isinstance(data, dict):
        return ShiftState()
    return ShiftState(_shift(data.get("open")), _shift(data.get("last")))


def save_state(path: Path, state: ShiftState) -> None:
    """Atomically, owner-only like the config next to it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = {
        "open": asdict(state.open) if state.open else None,
        "last": asdict(state.last) if state.last else None,
    }
    tmp.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def shift_dates(opened: datetime, until: datetime, tz: tzinfo = LOCAL_TZ) -> list[date]:
    """The local dates from the opening to ``until`` (both included), at most
    ``MAX_SHIFT_DAYS`` (the latest ones)."""
    first, last = opened.astimezone(tz).date(), until.astimezone(tz).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return days[-MAX_SHIFT_DAYS:]


@dataclass(frozen=True, slots=True)
class ShiftSummary:
    terminal_id: int
    opened_at: str
    until: str
    closed: bool
    bills: int = 0
    vouchers: int = 0
    value_fen: int = 0
    bill_fen: int = 0
    refunds: int = 0
    returned_vouchers: int = 0
    returned_value_fen: int = 0
    cash_back_fen: int = 0
    """The cash this till's refunds handed back (the server's reckoning, rules U3, F2)."""

    @property
    def cash_fen(self) -> int:
        """Cash collected at redemption: each bill − its vouchers' value (rule U3)."""
        return self.bill_fen - self.value_fen

    @property
    def net_value_fen(self) -> int:
        return self.value_fen - self.returned_value_fen


def _at(iso: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def shift_summary(
    shift: Shift, reports: list[DayReport] | tuple[DayReport, ...], until: datetime
) -> ShiftSummary:
    """This till's redemptions and refunds from the shift's opening to ``until`` (the
    closing, or now), from the day lists of the dates it spans; each row counted once."""
    start = datetime.fromisoformat(shift.opened_at)
    seen_r: set[int] = set()
    seen_f: set[int] = set()
    t: dict[str, int] = dict.fromkeys(
        ("bills", "vouchers", "value", "bill", "refunds", "rv", "rvalue", "back"), 0
    )
    for report in reports:
        for r in report.redemptions:
            at = _at(r.time)
            if r.terminal.id != shift.terminal_id or r.redemption_id in seen_r:
                continue
            if at is None or not start <= at < until:
                continue
            seen_r.add(r.redemption_id)
            t["bills"] += 1
            t["vouchers"] += r.voucher_count
            t["value"] += r.value_fen
            t["bill"] += r.bill_fen
        for f in report.refunds:
            at = _at(f.time)
            if f.terminal.id != shift.terminal_id or f.refund_id in seen_f:
                continue
            if at is None or not start <= at < until:
                continue
            seen_f.add(f.refund_id)
            t["refunds"] += 1
            t["rv"] += f.returned_count
            t["rvalue"] += f.value_fen
            t["back"] += f.cash_back_fen
    return ShiftSummary(
        terminal_id=shift.terminal_id,
        opened_at=shift.opened_at,
        until=until.isoformat(),
        closed=bool(shift.closed_at),
        bills=t["bills"],
        vouchers=t["vouchers"],
        value_fen=t["value"],
        bill_fen=t["bill"],
        refunds=t["refunds"],
        returned_vouchers=t["rv"],
        returned_value_fen=t["rvalue"],
        cash_back_fen=t["back"],
    )


def shift_text(
    s: ShiftSummary,
    merchant_name: str,
    terminal_label: str,
    lang: Lang = "zh",
    *,
    width: int = 32,
    tz: tzinfo = LOCAL_TZ,
) -> str:
    """The summary as the screen shows it and the printer prints it."""
    title = tr("shift.title", lang)
    rule = "-" * width

    def yuan(fen: int) -> str:
        return f"{format_yuan(fen, thousands=True)} 元"

    lines = [
        pad(" " * ((width - display_width(title)) // 2) + title, width).rstrip(),
        rule,
        _line(tr("receipt.merchant", lang), merchant_name, width),
        _line(
            tr("receipt.terminal", lang), terminal_name(s.terminal_id, terminal_label, lang), width
        ),
        _line(tr("shift.opened", lang), local_time(s.opened_at, tz), width),
        _line(
            tr("shift.closed" if s.closed else "shift.until", lang), local_time(s.until, tz), width
        ),
        rule,
        _line(tr("shift.bills", lang), tr("shift.count", lang, n=s.bills), width),
        _line(tr("shift.vouchers", lang), tr("receipt.refund.count", lang, n=s.vouchers), width),
        _line(tr("shift.value", lang), yuan(s.value_fen), width),
        _line(tr("shift.bill", lang), yuan(s.bill_fen), width),
        _line(tr("shift.cash", lang), yuan(s.cash_fen), width),
        _line(tr("shift.cash_back", lang), yuan(s.cash_back_fen), width),
        _line(tr("shift.refunds", lang), tr("shift.refund_count", lang, n=s.refunds), width),
        _line(
            tr("shift.returned", lang),
            tr("receipt.refund.count", lang, n=s.returned_vouchers)
            + " "
            + yuan(s.returned_value_fen),
            width,
        ),
        _line(tr("shift.net", lang), yuan(s.net_value_fen), width),
        rule,
    ]
    return "\n".join(lines) + "\n"
