"""Server-rendered SVG: the dashboard's bar charts and the flows' sequence diagrams.

Every function returns markup built here, with every piece of text escaped here, as a
SafeString; templates print it as is. No script, no external resource: the pictures work
without JavaScript and without internet. Colours come from classes styled by
``console/static/console/console.css`` (so the admin's dark mode applies), with presentation
attributes as the fallback where that stylesheet is absent.
"""

import math
from datetime import timedelta

from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

# A colour per grant, the same on every chart; unknown series take the grey.
SERIES_COLOURS = {
    "authorization_code": "#2f6fde",
    "refresh_token": "#2a9d5c",
    "client_credentials": "#e08a1e",
    "password": "#8b4fc9",
    "implicit": "#d64545",
    "hybrid": "#1b9aaa",
    "login.failed": "#c0392b",
}
FALLBACK_COLOURS = ("#6c7a89", "#b5651d", "#4a6fa5", "#7f8c3a")


def _colour(key, index):
    return SERIES_COLOURS.get(key) or FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)]


def _num(value):
    """A coordinate, compact: no trailing zeros."""
    return ("%.1f" % value).rstrip("0").rstrip(".")


def nice_ceiling(value, ticks=4):
    """(top, step): a round top of the y axis >= value, split into ``ticks`` whole steps."""
    raw = value / ticks
    if raw <= 1:
        return ticks, 1
    magnitude = 10 ** math.floor(math.log10(raw))
    factors = (1, 2, 2.5, 5, 10) if magnitude >= 10 else (1, 2, 5, 10)
    step = next(f * magnitude for f in factors if f * magnitude >= raw)
    step = int(math.ceil(step))
    return step * ticks, step


def last_days(today, count=14):
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def stacked_bar_chart(days, series, *, title, empty_text, width=680, height=260, chart_id="chart"):
    """A stacked bar per day.

    ``days``: dates, left to right. ``series``: [(key, label, [value per day]), ...], drawn
    bottom up in that order. Renders (with ``empty_text`` across it) when every value is 0.
    """
    left, right, top, bottom = 44, 12, 16, 64
    plot_w = width - left - right
    plot_h = height - top - bottom
    totals = [sum(values[i] for _k, _l, values in series) for i in range(len(days))]
    peak = max(totals, default=0)
    y_top, step = nice_ceiling(peak)
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.64
    title_id = f"{chart_id}-title"
    desc_id = f"{chart_id}-desc"
    description = _("%(total)d in all over %(days)d days.") % {"total": sum(totals), "days": len(days)}

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="console-chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(description)}</desc>',
    ]
    # Grid and y labels.
    value = 0
    while value <= y_top:
        y = top + plot_h - plot_h * value / y_top
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" font-size="11" fill="#666">{value}</text>'
        )
        value += step
    # Bars.
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        base = top + plot_h
        for index, (key, label, values) in enumerate(series):
            count = values[i]
            if not count:
                continue
            h = plot_h * count / y_top
            base -= h
            parts.append(
                f'<rect class="bar" x="{_num(x)}" y="{_num(base)}" width="{_num(bar_w)}" height="{_num(h)}" '
                f'fill="{_colour(key, index)}"><title>{escape(day.isoformat())} · {escape(label)}: {count}</title></rect>'
            )
        label_x = left + slot * i + slot / 2
        if len(days) <= 7 or (len(days) - 1 - i) % 2 == 0:
            parts.append(
                f'<text class="axis" x="{_num(label_x)}" y="{top + plot_h + 15}" text-anchor="middle" '
                f'font-size="11" fill="#666">{escape(day.strftime("%m-%d"))}</text>'
            )
    # Axis line.
    parts.append(
        f'<line class="axis-line" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#999" stroke-width="1"/>'
    )
    if peak == 0:
        parts.append(
            f'<text class="empty" x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h / 2)}" text-anchor="middle" '
            f'font-size="13" fill="#888">{escape(empty_text)}</text>'
        )
    # Legend, below the axis labels.
    x = left
    legend_y = top + plot_h + 38
    for index, (key, label, values) in enumerate(series):
        text = f"{label} ({sum(values)})"
        parts.append(
            f'<rect class="legend-swatch" x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{_colour(key, index)}"/>'
        )
        parts.append(f'<text class="legend" x="{x + 17}" y="{legend_y}" font-size="12" fill="#333">{escape(text)}</text>')
        x += 17 + 7 * len(text) + 18
        if x > width - 120 and index < len(series) - 1:
            x = left
            legend_y += 18
    parts.append("</svg>")
    return mark_safe("".join(parts))


# -- sequence diagrams -------------------------------------------------------------------

LANE_WIDTH = 190
CHAR_WIDTH = 6.1  # at font-size 11, a fair average for the labels used
LINE_HEIGHT = 13


def wrap(text, width_px):
    """Greedy word wrap to roughly ``width_px`` pixels at the diagram's font size."""
    limit = max(8, int(width_px / CHAR_WIDTH))
    lines, current = [], ""
    for word in str(text).split():
        candidate = f"{current} {word}".strip()
        if len(candidate) <= limit or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines or [""]


def sequence_diagram(diagram, *, diagram_id=None):
    """A numbered sequence diagram (lanes across, steps down) of a ``flows.Diagram``."""
    diagram_id = diagram_id or f"flow-{diagram.key}"
    lanes = [key for key, _label in diagram.lanes]
    margin = 12
    width = margin * 2 + LANE_WIDTH * len(lanes)
    center = {key: margin + LANE_WIDTH * i + LANE_WIDTH / 2 for i, key in enumerate(lanes)}
    header_h = 40
    y = header_h + 24
    body = []
    for number, step in enumerate(diagram.steps, start=1):
        x1, x2 = center[step.source], center[step.target]
        if step.source == step.target:
            lines = wrap(step.text, LANE_WIDTH - 40)
            text_top = y
            loop_top = y
            loop_h = max(18, LINE_HEIGHT * len(lines))
            body.append(
                f'<path class="arrow" d="M{_num(x1)} {_num(loop_top)} h26 v{_num(loop_h)} h-22" fill="none" '
                f'stroke="#444" stroke-width="1.4" marker-end="url(#{escape(diagram_id)}-head)"/>'
            )
            for i, line in enumerate(lines):
                body.append(
                    f'<text class="step" x="{_num(x1 + 32)}" y="{_num(text_top + 10 + LINE_HEIGHT * i)}" '
                    f'font-size="11" fill="#333">{escape(line)}</text>'
                )
            body.append(_step_number(x1 - 12, loop_top, number))
            y += loop_h + 22
            continue
        span = abs(x2 - x1)
        lines = wrap(step.text, span - 24)
        text_block = LINE_HEIGHT * len(lines)
        arrow_y = y + text_block + 4
        mid = (x1 + x2) / 2
        for i, line in enumerate(lines):
            body.append(
                f'<text class="step" x="{_num(mid)}" y="{_num(y + 9 + LINE_HEIGHT * i)}" text-anchor="middle" '
                f'font-size="11" fill="#333">{escape(line)}</text>'
            )
        direction = 1 if x2 > x1 else -1
        body.append(
            f'<line class="arrow" x1="{_num(x1 + 6 * direction)}" y1="{_num(arrow_y)}" x2="{_num(x2 - 4 * direction)}" '
            f'y2="{_num(arrow_y)}" stroke="#444" stroke-width="1.4" marker-end="url(#{escape(diagram_id)}-head)"/>'
        )
        body.append(_step_number(x1 - 12 * direction, arrow_y, number))
        y = arrow_y + 20
    height = y + 8

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="console-diagram" id="{escape(diagram_id)}" '
        f'viewBox="0 0 {width} {_num(height)}" width="{width}" style="max-width:100%;height:auto" role="img" '
        f'aria-labelledby="{escape(diagram_id)}-title {escape(diagram_id)}-desc">',
        f'<title id="{escape(diagram_id)}-title">{escape(diagram.title)}</title>',
        f'<desc id="{escape(diagram_id)}-desc">{escape(diagram.summary)}</desc>',
        f'<defs><marker id="{escape(diagram_id)}-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path class="arrow-head" d="M0 0 L10 5 L0 10 z" fill="#444"/></marker></defs>',
    ]
    for key, label in diagram.lanes:
        cx = center[key]
        parts.append(
            f'<rect class="lane-box lane-{escape(key)}" x="{_num(cx - LANE_WIDTH / 2 + 8)}" y="4" width="{LANE_WIDTH - 16}" '
            f'height="{header_h - 8}" rx="6" fill="#e8eef9" stroke="#7d95c7"/>'
        )
        label_lines = wrap(label, LANE_WIDTH - 28)[:2]
        first_y = 4 + (header_h - 8) / 2 + 4 - (LINE_HEIGHT / 2) * (len(label_lines) - 1)
        for i, line in enumerate(label_lines):
            parts.append(
                f'<text class="lane-label" x="{_num(cx)}" y="{_num(first_y + LINE_HEIGHT * i)}" text-anchor="middle" '
                f'font-size="12" font-weight="bold" fill="#1d2b4f">{escape(line)}</text>'
            )
        parts.append(
            f'<line class="lifeline" x1="{_num(cx)}" x2="{_num(cx)}" y1="{header_h}" y2="{_num(height - 4)}" '
            f'stroke="#9aa" stroke-width="1" stroke-dasharray="4 4"/>'
        )
    parts.extend(body)
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _step_number(cx, cy, number):
    return (
        f'<circle class="step-number" cx="{_num(cx)}" cy="{_num(cy)}" r="8" fill="#2554c7"/>'
        f'<text class="step-number-text" x="{_num(cx)}" y="{_num(cy + 3.5)}" text-anchor="middle" font-size="10" '
        f'font-weight="bold" fill="#fff">{int(number)}</text>'
    )
