"""Charts as SVG drawn here, inline in the page (no chart library, no script, no font files:
the reader's browser draws the Chinese labels with its own fonts). Every text is escaped;
colours are attributes, not inline styles (the pages' CSP allows no inline style)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from server.db.pages import DailyActivity
from shared.settlement import Ranked

INK = "#1a1a1a"
BAR = "#a5281b"  # 7.0:1 against white
SECOND = "#1d4f91"
FONT = 'font-family="Noto Sans CJK SC, Noto Sans SC, PingFang SC, Microsoft YaHei, sans-serif"'


def _text(x: float, y: float, words: str, *, size: int = 14, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{INK}" {FONT}>{escape(words)}</text>'
    )


def ranking_svg(
    ranked: Sequence[Ranked], names: dict[str, str], title: str, alt: str, rank_label: str
) -> Markup:
    """Rule S3: each district's redemption rate to date as a bar, its Chinese name under it."""
    width, height, left, bottom, top = 640, 340, 48, 56, 48
    plot_h = height - bottom - top
    rates = [r.redemption_rate_bp / 100 for r in ranked]
    ceiling = max([*rates, 1.0]) * 1.15
    slot = (width - left - 16) / max(len(ranked), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="ranking-title" class="chart" id="ranking-chart">',
        f'<title id="ranking-title">{escape(alt)}</title>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        _text(width / 2, 28, title, size=18),
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 8}" y2="{height - bottom}" '
        f'stroke="{INK}"/>',
    ]
    for tick in range(5):
        value = ceiling * tick / 4
        y = height - bottom - plot_h * tick / 4
        shown = f"{value:.1f}%" if ceiling < 10 else f"{value:.0f}%"
        parts.append(_text(left - 6, y + 5, shown, size=12, anchor="end"))
    for n, (r, rate) in enumerate(zip(ranked, rates, strict=True)):
        bar_h = plot_h * rate / ceiling
        x = left + n * slot + slot * 0.2
        y = height - bottom - bar_h
        name = names.get(r.figures.district, r.figures.name)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" '
            f'height="{bar_h:.1f}" fill="{BAR}" data-district="{escape(r.figures.district)}"/>'
        )
        parts.append(_text(x + slot * 0.3, y - 6, f"{rate:.2f}%", size=14))
        parts.append(_text(x + slot * 0.3, height - bottom + 22, name, size=15))
        parts.append(
            _text(x + slot * 0.3, height - bottom + 42, rank_label.format(n=r.rank), size=12)
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def activity_svg(
    days: Sequence[DailyActivity], labels: tuple[str, str], title: str, alt: str
) -> Markup:
    """Vouchers issued and vouchers redeemed per day, as two bars a day."""
    width, height, left, bottom, top = 640, 300, 48, 64, 48
    plot_h = height - bottom - top
    ceiling = max([1, *(max(d.vouchers_issued, d.vouchers_redeemed) for d in days)]) * 1.15
    slot = (width - left - 16) / max(len(days), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="activity-title" class="chart" id="activity-chart">',
        f'<title id="activity-title">{escape(alt)}</title>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        _text(width / 2, 28, title, size=18),
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 8}" y2="{height - bottom}" '
        f'stroke="{INK}"/>',
    ]
    for tick in range(5):
        value = ceiling * tick / 4
        y = height - bottom - plot_h * tick / 4
        parts.append(_text(left - 6, y + 5, f"{value:.0f}", size=12, anchor="end"))
    for n, d in enumerate(days):
        x = left + n * slot
        for k, (value, colour) in enumerate(
            ((d.vouchers_issued, SECOND), (d.vouchers_redeemed, BAR))
        ):
            bar_h = plot_h * value / ceiling
            parts.append(
                f'<rect x="{x + slot * (0.1 + 0.4 * k):.1f}" y="{height - bottom - bar_h:.1f}" '
                f'width="{slot * 0.4:.1f}" height="{bar_h:.1f}" fill="{colour}"/>'
            )
        if len(days) <= 12 or d.day.day in (1, 5, 10, 15, 20, 25, 30):
            parts.append(_text(x + slot / 2, height - bottom + 18, f"{d.day.day}", size=12))
    for k, (label, colour) in enumerate(zip(labels, (SECOND, BAR), strict=True)):
        x = left + k * 180
        parts.append(
            f'<rect x="{x}" y="{height - 24}" width="14" height="14" fill="{colour}"/>'
            + _text(x + 20, height - 12, label, size=13, anchor="start")
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
