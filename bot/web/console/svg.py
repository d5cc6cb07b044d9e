"""Small charts drawn on the server as SVG: bars (vertical or horizontal), a line, a stacked bar.

Each function returns one complete ``<svg>`` element as ``Markup``, so a Jinja2 template
puts it in the page as it is. Every piece of text (the title, labels, tooltips) is escaped
here. Sizes are a ``viewBox`` only: the chart takes the width of its container and keeps
its proportions, on a phone as on a desk. Each chart is an image for assistive technology
(``role="img"``, ``aria-label`` and a ``<title>``), and every bar, point and segment has its
own ``<title>`` with its label and value: a tooltip on hover, and what a screen reader says.

Values are plain numbers; ``None`` in a line chart means "no value for that period" and
leaves a gap. Negative values are drawn as zero (these charts show counts and averages).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

ACCENT = "#0b63c5"
MUTED = "#5d6b7a"
GRID = "#dde3ea"
EMPTY = "#e2e8f0"
# Segment colours of a stacked bar, in order (the page may pass its own per datum).
PALETTE = ("#1f8a4c", "#c53030", "#b7791f", "#0b63c5", "#6b46c1", "#5d6b7a")
FONT = 12.0


@dataclass(frozen=True)
class Datum:
    """One bar, point or segment: its label, its value, and optionally its own tooltip text
    (default ``label: value``), colour and key."""

    label: str
    value: float | None
    title: str = ""
    color: str = ""
    key: str = ""  # written as ``data-key`` when given: a name that does not depend on language


Data = Sequence["Datum | tuple[str, float | None]"]
Formatter = Callable[[float], str]


def plain(value: float) -> str:
    """``3`` for whole numbers, ``7.25`` otherwise."""
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _data(data: Data) -> list[Datum]:
    return [d if isinstance(d, Datum) else Datum(str(d[0]), d[1]) for d in data]


def _n(x: float) -> str:
    """A coordinate, short: 12.5, 40."""
    text = f"{x:.1f}"
    return text.removesuffix(".0")


def _e(text: object) -> str:
    return str(escape(str(text)))


def text_width(text: str, size: float = FONT) -> float:
    """Roughly how wide ``text`` is drawn: wide (CJK) characters count double."""
    units = sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
    return units * size * 0.56


def fit(text: str, width: float, size: float = FONT) -> str:
    """``text``, shortened with an ellipsis to fit ``width``."""
    if text_width(text, size) <= width:
        return text
    out = ""
    for c in text:
        if text_width(out + c + "…", size) > width:
            break
        out += c
    return out + "…"


def _key(d: Datum) -> str:
    return f' data-key="{_e(d.key)}"' if d.key else ""


def _tooltip(d: Datum, fmt: Formatter) -> str:
    if d.title:
        return d.title
    return f"{d.label}: {'–' if d.value is None else fmt(d.value)}"


def _open(title: str, width: float, height: float, kind: str, chart_id: str) -> list[str]:
    ident = f' id="{_e(chart_id)}"' if chart_id else ""
    return [
        (f'<svg xmlns="http://www.w3.org/2000/svg"{ident} class="svg-chart {kind}" '
         f'viewBox="0 0 {_n(width)} {_n(height)}" width="100%" '
         f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{_e(title)}" '
         f'font-size="{_n(FONT)}" font-family="inherit">'),
        f"<title>{_e(title)}</title>",
    ]


def _text(x: float, y: float, text: str, *, anchor: str = "middle", cls: str = "",
          fill: str = MUTED, size: float = FONT, full: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    sized = f' font-size="{_n(size)}"' if size != FONT else ""
    tip = f"<title>{_e(full)}</title>" if full and full != text else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{fill}"'
            f"{klass}{sized}>{_e(text)}{tip}</text>")


def _empty(width: float, y: float, text: str) -> str:
    return _text(width / 2, y, text, cls="empty")


def _top(values: list[float]) -> float:
    return max([v for v in values if v > 0], default=0.0)


def bar_chart(data: Data, *, title: str, width: float = 600, height: float | None = None,
              horizontal: bool = False, color: str = ACCENT, fmt: Formatter = plain,
              empty_text: str = "", chart_id: str = "") -> Markup:
    """Bars whose length is proportional to their value (the longest is the largest value).

    Vertical by default (labels under the bars, values above them); ``horizontal`` puts
    the labels on the left, which suits long names. Each bar is a ``<rect class="bar">``
    with ``data-value`` and a ``<title>``. When every value is zero (or there are none) the
    bars are flat and ``empty_text`` is written across the chart."""
    items = _data(data)
    values = [max(0.0, float(d.value or 0)) for d in items]
    top = _top(values)
    if horizontal:
        return _hbars(items, values, top, title, width, height, color, fmt, empty_text,
                      chart_id)
    height = 260.0 if height is None else height
    left, right, upper, lower = 8.0, 8.0, 22.0, 30.0
    plot_w, plot_h = width - left - right, height - upper - lower
    base = upper + plot_h
    out = _open(title, width, height, "bar-chart", chart_id)
    out.append(f'<line class="axis" x1="{_n(left)}" y1="{_n(base)}" x2="{_n(width - right)}" '
               f'y2="{_n(base)}" stroke="{MUTED}" stroke-width="1"/>')
    slot = plot_w / len(items) if items else plot_w
    bar_w = slot * 0.7
    for i, (d, v) in enumerate(zip(items, values, strict=False)):
        h = v / top * plot_h if top else 0.0
        x = left + i * slot + (slot - bar_w) / 2
        fill = d.color or color
        out.append(f'<rect class="bar" x="{_n(x)}" y="{_n(base - h)}" width="{_n(bar_w)}" '
                   f'height="{_n(h)}" fill="{_e(fill)}" data-label="{_e(d.label)}"{_key(d)} '
                   f'data-value="{_e(plain(v))}"><title>{_e(_tooltip(d, fmt))}</title></rect>')
        cx = x + bar_w / 2
        if top:
            out.append(_text(cx, base - h - 5, fmt(v), cls="value", fill="#1d2733"))
        out.append(_text(cx, base + FONT + 6, fit(d.label, slot - 2), cls="label",
                         full=d.label))
    if not top and empty_text:
        out.append(_empty(width, upper + plot_h / 2, empty_text))
    out.append("</svg>")
    return Markup("".join(out))


def _hbars(items: list[Datum], values: list[float], top: float, title: str, width: float,
           height: float | None, color: str, fmt: Formatter, empty_text: str,
           chart_id: str) -> Markup:
    row = 28.0
    upper, lower = 6.0, 6.0
    height = upper + lower + row * max(1, len(items)) if height is None else height
    row = (height - upper - lower) / max(1, len(items))
    label_w = min(width * 0.4, max([text_width(d.label) for d in items], default=0) + 8)
    value_w = 44.0
    plot_x, plot_w = label_w + 4, width - label_w - 4 - value_w
    out = _open(title, width, height, "bar-chart horizontal", chart_id)
    out.append(f'<line class="axis" x1="{_n(plot_x)}" y1="{_n(upper)}" x2="{_n(plot_x)}" '
               f'y2="{_n(height - lower)}" stroke="{MUTED}" stroke-width="1"/>')
    bar_h = row * 0.66
    for i, (d, v) in enumerate(zip(items, values, strict=False)):
        w = v / top * plot_w if top else 0.0
        y = upper + i * row + (row - bar_h) / 2
        mid = y + bar_h / 2 + FONT * 0.35
        out.append(_text(label_w, mid, fit(d.label, label_w - 4), anchor="end", cls="label",
                         full=d.label))
        out.append(f'<rect class="bar" x="{_n(plot_x)}" y="{_n(y)}" width="{_n(w)}" '
                   f'height="{_n(bar_h)}" fill="{_e(d.color or color)}" '
                   f'data-label="{_e(d.label)}"{_key(d)} data-value="{_e(plain(v))}">'
                   f"<title>{_e(_tooltip(d, fmt))}</title></rect>")
        out.append(_text(plot_x + w + 4, mid, fmt(v), anchor="start", cls="value",
                         fill="#1d2733"))
    if not top and empty_text:
        out.append(_text(plot_x + plot_w / 2, height / 2 + FONT * 0.35, empty_text,
                         cls="empty"))
    out.append("</svg>")
    return Markup("".join(out))


def line_chart(data: Data, *, title: str, width: float = 600, height: float = 240,
               y_min: float | None = None, y_max: float | None = None,
               color: str = ACCENT, fmt: Formatter = plain, tick_fmt: Formatter | None = None,
               empty_text: str = "", chart_id: str = "") -> Markup:
    """A line through the points in order, one ``<circle class="point">`` (with
    ``data-value`` and a ``<title>``) per value; a ``None`` value leaves a gap in the line
    and has no point. The vertical scale runs from ``y_min`` to ``y_max`` (default: 0 to the
    largest value), with grid lines at the bottom, middle and top (labelled with
    ``tick_fmt``, default ``fmt``). When labels would crowd, every other one (or fewer) is
    written, always including the last."""
    items = _data(data)
    known = [float(d.value) for d in items if d.value is not None]
    low = y_min if y_min is not None else min([0.0, *known])
    high = y_max if y_max is not None else max([low, *known])
    if high <= low:
        high = low + 1
    left, right, upper, lower = 30.0, 28.0, 20.0, 30.0
    plot_w, plot_h = width - left - right, height - upper - lower
    ticks = tick_fmt or fmt
    out = _open(title, width, height, "line-chart", chart_id)
    for frac in (0.0, 0.5, 1.0):
        y = upper + plot_h * (1 - frac)
        out.append(f'<line class="grid" x1="{_n(left)}" y1="{_n(y)}" x2="{_n(width - right)}" '
                   f'y2="{_n(y)}" stroke="{GRID}" stroke-width="1"/>')
        out.append(_text(left - 4, y + FONT * 0.35, ticks(low + (high - low) * frac),
                         anchor="end", cls="tick", size=FONT * 0.85))
    step = plot_w / (len(items) - 1) if len(items) > 1 else 0.0

    def at(i: int, v: float) -> tuple[float, float]:
        x = left + (i * step if len(items) > 1 else plot_w / 2)
        clamped = min(max(v, low), high)
        return x, upper + plot_h * (1 - (clamped - low) / (high - low))

    runs: list[list[tuple[float, float]]] = [[]]
    for i, d in enumerate(items):
        if d.value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(at(i, float(d.value)))
    for run in runs:
        if len(run) > 1:
            points = " ".join(f"{_n(x)},{_n(y)}" for x, y in run)
            out.append(f'<polyline class="line" points="{points}" fill="none" '
                       f'stroke="{_e(color)}" stroke-width="2" stroke-linejoin="round"/>')
    _points(out, items, at, low, upper + plot_h, step if len(items) > 1 else plot_w, color, fmt)
    if not known and empty_text:
        out.append(_empty(width, upper + plot_h / 2, empty_text))
    out.append("</svg>")
    return Markup("".join(out))


def _points(out: list[str], items: list[Datum], at: Callable[[int, float], tuple[float, float]],
            low: float, base: float, slot: float, color: str, fmt: Formatter) -> None:
    """A line chart's labels under the plot (thinned out when they would crowd, always
    including the last) and its points with their values."""
    every = max(1, int(-(-text_width("0000-00") // max(slot, 1.0))))
    for i, d in enumerate(items):
        x, _ = at(i, low)
        if (len(items) - 1 - i) % every == 0:
            out.append(_text(x, base + FONT + 6, fit(d.label, max(slot, 40) * every - 2),
                             cls="label", full=d.label))
        if d.value is None:
            continue
        x, y = at(i, float(d.value))
        out.append(f'<circle class="point" cx="{_n(x)}" cy="{_n(y)}" r="4" '
                   f'fill="{_e(d.color or color)}" data-label="{_e(d.label)}" '
                   f'data-value="{_e(plain(float(d.value)))}">'
                   f"<title>{_e(_tooltip(d, fmt))}</title></circle>")
        out.append(_text(x, y - 8, fmt(float(d.value)), cls="value", fill="#1d2733",
                         size=FONT * 0.9))


def stacked_bar(data: Data, *, title: str, width: float = 600, fmt: Formatter = plain,
                empty_text: str = "", chart_id: str = "") -> Markup:
    """One horizontal bar split into segments in proportion to their values (their share
    of the total), with a legend below: ``label value (share)``. Each segment is a
    ``<rect class="segment">`` with ``data-value`` and a ``<title>``; segments of zero are
    left out of the bar but stay in the legend. A total of zero draws an empty bar."""
    items = _data(data)
    values = [max(0.0, float(d.value or 0)) for d in items]
    total = sum(values)
    left, right, bar_y, bar_h = 8.0, 8.0, 8.0, 30.0
    legend_row = 20.0
    plot_w = width - left - right
    # the legend: as many entries per row as fit
    entries = []
    for i, (d, v) in enumerate(zip(items, values, strict=False)):
        share = f" ({v / total * 100:.0f}%)" if total else ""
        entries.append((d, v, f"{d.label} {fmt(v)}{share}", d.color or PALETTE[i % len(PALETTE)]))
    rows: list[list[tuple[Datum, float, str, str, float]]] = [[]]
    used = 0.0
    for d, v, text, fill in entries:
        w = 16 + text_width(text) + 14
        if rows[-1] and used + w > plot_w:
            rows.append([])
            used = 0.0
        rows[-1].append((d, v, text, fill, used))
        used += w
    height = bar_y + bar_h + 10 + legend_row * len(rows)
    out = _open(title, width, height, "stacked-bar", chart_id)
    out.append(f'<rect class="track" x="{_n(left)}" y="{_n(bar_y)}" width="{_n(plot_w)}" '
               f'height="{_n(bar_h)}" fill="{EMPTY}" rx="4"/>')
    x = left
    for d, v, text, fill in entries:
        if not total or not v:
            continue
        w = v / total * plot_w
        out.append(f'<rect class="segment" x="{_n(x)}" y="{_n(bar_y)}" width="{_n(w)}" '
                   f'height="{_n(bar_h)}" fill="{_e(fill)}" data-label="{_e(d.label)}" '
                   f'data-value="{_e(plain(v))}"><title>{_e(d.title or text)}</title></rect>')
        if text_width(fmt(v)) + 6 < w:
            out.append(_text(x + w / 2, bar_y + bar_h / 2 + FONT * 0.35, fmt(v), cls="value",
                             fill="#fff"))
        x += w
    if not total and empty_text:
        out.append(_text(left + plot_w / 2, bar_y + bar_h / 2 + FONT * 0.35, empty_text,
                         cls="empty"))
    for r, row in enumerate(rows):
        y = bar_y + bar_h + 10 + r * legend_row
        for _d, _v, text, fill, offset in row:
            lx = left + offset
            out.append(f'<rect class="key" x="{_n(lx)}" y="{_n(y + 3)}" width="12" '
                       f'height="12" fill="{_e(fill)}" rx="2"/>')
            out.append(_text(lx + 16, y + 13, text, anchor="start", cls="legend",
                             fill="#1d2733"))
    out.append("</svg>")
    return Markup("".join(out))
