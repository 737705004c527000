"""The charts, drawn with matplotlib's object API (a ``Figure`` of its own, no pyplot state, no
display): the S3 district ranking and the vouchers issued and redeemed per day. One figure
code serves both outputs: SVG for the dashboard (served as an image, so the page's CSP needs
no inline style) and PNG for the API's ranking route.

Chinese labels need a CJK font on the server (``fonts-noto-cjk``); without one the charts say
the same in English with the districts' codes, never boxes for missing glyphs (matplotlib
warns on a missing glyph, and the test suite turns warnings into errors)."""

from __future__ import annotations

import contextlib
import functools
import io
import threading
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal, Protocol

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from shared.settlement import Ranked

INK = "#1a1a1a"
BAR = "#a5281b"  # 7.0:1 against white
SECOND = "#1d4f91"

# CJK families in the order tried: the Chinese district names need one (issue 12)
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)

# rcParams are global: drawing holds this lock, so that charts drawn in worker threads at once
# never see each other's settings. In the SVG the words stay text (searchable, small), drawn
# by the reader's fonts, as the page around them is.
_DRAWING = threading.Lock()
_RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "voucher-charts"}

Format = Literal["svg", "png"]


class Day(Protocol):
    """One day of the activity chart (``server.db.pages.DailyActivity`` is one)."""

    @property
    def day(self) -> date: ...
    @property
    def vouchers_issued(self) -> int: ...
    @property
    def vouchers_redeemed(self) -> int: ...


@functools.cache
def cjk_family() -> str | None:
    """A font family with Chinese glyphs that matplotlib can use, or None. Its font cache may
    predate the system's fonts (fonts-noto-cjk installed later), so files named CJK are added
    to it first."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    if not known & set(CJK_FAMILIES):
        for path in font_manager.findSystemFonts():
            if "CJK" in path or "wqy" in path.lower():
                with contextlib.suppress(Exception):  # an unreadable font file is skipped
                    font_manager.fontManager.addfont(path)
        known = {f.name for f in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in known), None)


def _font() -> dict[str, Any]:
    family = cjk_family()
    return {"fontfamily": [family, "DejaVu Sans"]} if family else {}


def ranking_figure(
    ranked: Sequence[Ranked], names: dict[str, str], *, title: str, axis: str, rank: str
) -> Figure:
    """Rule S3: each district's redemption rate to date as a bar, its name and rank under it
    (its Chinese name with a CJK font, else its code). ``rank`` is like "No. {n}"."""
    font = _font()
    figure = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    axes = figure.subplots()
    rates = [r.redemption_rate_bp / 100 for r in ranked]
    places = range(len(ranked))
    bars = axes.bar(places, rates, width=0.6, color=BAR)
    for bar, r in zip(bars, ranked, strict=True):
        bar.set_gid(f"bar-{r.figures.district}")  # the SVG's <g id=...>, for tests and styling
    labels = [
        (names.get(r.figures.district, r.figures.name) if font else r.figures.district)
        + "\n"
        + rank.format(n=r.rank)
        for r in ranked
    ]
    axes.set_xticks(places, labels, **font)
    axes.bar_label(bars, labels=[f"{x:.2f}%" for x in rates], color=INK)
    axes.set_ylabel(axis, **font)
    axes.set_title(title, **font)
    axes.set_ylim(0, max([*rates, 1.0]) * 1.2)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def activity_figure(days: Sequence[Day], *, title: str, issued: str, redeemed: str) -> Figure:
    """Vouchers issued and vouchers redeemed per day of the month, as two bars a day."""
    font = _font()
    figure = Figure(figsize=(6.4, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    x = [d.day.day for d in days]
    axes.bar(
        [n - 0.2 for n in x], [d.vouchers_issued for d in days], 0.4, color=SECOND, label=issued
    )
    axes.bar(
        [n + 0.2 for n in x], [d.vouchers_redeemed for d in days], 0.4, color=BAR, label=redeemed
    )
    axes.set_xticks([n for n in x if len(x) <= 12 or n in (1, 5, 10, 15, 20, 25, 30)])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max([1, *(max(d.vouchers_issued, d.vouchers_redeemed) for d in days)]) * 1.15)
    axes.set_title(title, **font)
    axes.legend(
        loc="upper left", frameon=False, prop={"family": font["fontfamily"]} if font else None
    )
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def render(figure: Figure, fmt: Format) -> bytes:
    """The figure as SVG or PNG bytes (Agg for the PNG; no creation date, so the same figures
    give the same bytes)."""
    out = io.BytesIO()
    with _DRAWING, matplotlib.rc_context(_RC):
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def ranking_png(month: date, ranked: Sequence[Ranked]) -> bytes:
    """Rule S3: the API's ranking chart, in Chinese with a CJK font, else in English."""
    if cjk_family():
        words = {"axis": "累计核销率（%）", "title": f"{month:%Y-%m} 各区消费券核销排名"}
        rank = "第 {n} 名"
    else:
        words = {"axis": "redemption rate to date (%)", "title": f"District ranking {month:%Y-%m}"}
        rank = "No. {n}"
    return render(ranking_figure(ranked, {}, rank=rank, **words), "png")
