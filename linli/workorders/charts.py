"""Inline SVG bar charts, rendered on the server (no chart library, no script).

Labels are escaped here; the result is safe to place in a template as-is.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from markupsafe import Markup

from linli.core.i18n import gettext

ROW = 28
LABEL_WIDTH = 150
BAR_WIDTH = 360
VALUE_WIDTH = 70


def bar_chart(
    rows: Sequence[tuple[str, Decimal]],
    *,
    title: str,
    unit: str = "",
    maximum: Decimal | None = None,
) -> Markup:
    """Horizontal bars, one per row, scaled to ``maximum`` (or the largest value)."""
    heading = gettext(title)
    if not rows:
        return Markup('<p class="muted" data-chart="empty">{}</p>').format(gettext("No data yet."))
    top = maximum if maximum is not None else max((v for _, v in rows), default=Decimal(0))
    top = top if top > 0 else Decimal(1)
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = ROW * len(rows) + 8
    parts = [
        Markup(
            '<figure class="chart"><figcaption class="section-label">{}</figcaption>'
            '<svg role="img" aria-label="{}" viewBox="0 0 {} {}" '
            'width="100%" style="max-width:{}px" xmlns="http://www.w3.org/2000/svg">'
        ).format(heading, heading, width, height, width)
    ]
    for index, (label, value) in enumerate(rows):
        y = 4 + index * ROW
        bar = int((Decimal(BAR_WIDTH) * min(value, top) / top).to_integral_value(ROUND_HALF_UP))
        shown = f"{value.normalize():f}{unit}" if value == value.to_integral() else f"{value}{unit}"
        parts.append(
            Markup(
                '<text x="{}" y="{}" text-anchor="end" font-size="13" fill="currentColor">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="#2f7d6d">'
                "<title>{}: {}</title></rect>"
                '<text x="{}" y="{}" font-size="13" fill="currentColor">{}</text>'
            ).format(
                LABEL_WIDTH - 8,
                y + 18,
                label[:18],
                LABEL_WIDTH,
                y + 4,
                max(bar, 1),
                ROW - 10,
                label,
                shown,
                LABEL_WIDTH + bar + 6,
                y + 18,
                shown,
            )
        )
    parts.append(Markup("</svg></figure>"))
    return Markup("").join(parts)
