"""The console's server-side SVG charts (bot/web/console/svg.py), checked on their output:
well-formed XML, sizes by viewBox, accessible names, bars in proportion, zero data, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from bot.web.console.svg import Datum, bar_chart, fit, line_chart, stacked_bar, text_width

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def bars(root: ET.Element, cls: str = "bar") -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == cls]


def tip(element: ET.Element) -> str:
    node = element.find("s:title", NS)
    assert node is not None, "every bar, point and segment has its own <title>"
    return node.text or ""


def test_bar_heights_are_proportional_to_values() -> None:
    svg = bar_chart([("1", 2), ("2", 4), ("3", 0), ("4", 8)], title="Scores", height=260)
    assert isinstance(svg, Markup)
    root = parse(svg)
    rects = bars(root)
    assert [r.get("data-value") for r in rects] == ["2", "4", "0", "8"]
    heights = [float(r.get("height", "")) for r in rects]
    assert heights[2] == 0
    assert heights[1] == pytest.approx(2 * heights[0], abs=0.2)
    assert heights[3] == pytest.approx(4 * heights[0], abs=0.2)
    # the tallest bar fills the plot: bottoms are on one baseline
    bottoms = {round(float(r.get("y", "")) + float(r.get("height", "")), 1) for r in rects}
    assert len(bottoms) == 1
    assert [tip(r) for r in rects] == ["1: 2", "2: 4", "3: 0", "4: 8"]


def test_horizontal_bars_are_proportional_too() -> None:
    root = parse(bar_chart([("Charges", 3), ("Timeliness", 1), ("Other", 0)], title="Low",
                           horizontal=True, width=500))
    widths = [float(r.get("width", "")) for r in bars(root)]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2) and widths[2] == 0
    labels = [e.text for e in root.iter() if e.get("class") == "label"]
    assert labels == ["Charges", "Timeliness", "Other"]


def test_svg_is_sized_by_viewbox_and_accessible() -> None:
    root = parse(bar_chart([("a", 1)], title="Distribution of scores", width=640,
                           height=200, chart_id="dist"))
    assert root.get("viewBox") == "0 0 640 200"
    assert root.get("width") == "100%" and root.get("height") is None  # scales with the page
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Distribution of scores"
    assert root.get("id") == "dist"
    first = next(iter(root))
    assert first.tag == "{http://www.w3.org/2000/svg}title"
    assert first.text == "Distribution of scores"


def test_zero_and_no_data_draw_flat_bars_and_say_so() -> None:
    root = parse(bar_chart([("1", 0), ("2", 0)], title="t", empty_text="No scores"))
    assert [float(r.get("height", "")) for r in bars(root)] == [0, 0]
    assert [e.text for e in root.iter() if e.get("class") == "empty"] == ["No scores"]
    root = parse(bar_chart([], title="t", empty_text="No scores"))
    assert bars(root) == []
    assert [e.text for e in root.iter() if e.get("class") == "empty"] == ["No scores"]
    # negative values are drawn as zero, never as a bar going up from below the axis
    root = parse(bar_chart([("a", -3), ("b", 2)], title="t"))
    assert next(float(r.get("height", "")) for r in bars(root)) == 0


def test_text_is_escaped_everywhere() -> None:
    evil = '<script>alert("x")</script> & \'q\''
    for svg in (bar_chart([(evil, 1)], title=evil),
                bar_chart([(evil, 1)], title=evil, horizontal=True),
                line_chart([(evil, 5.0)], title=evil),
                stacked_bar([Datum(evil, 2, title=evil)], title=evil)):
        assert "<script>" not in svg
        root = parse(svg)  # would fail if a quote or bracket broke out of an attribute
        assert root.get("aria-label") == evil
        marks = [e for e in root.iter() if e.get("data-label") is not None]
        assert marks and all(e.get("data-label") == evil for e in marks)
        texts = "".join(root.itertext())
        assert "<script>" in texts  # shown literally, as text


def test_line_chart_points_gaps_and_scale() -> None:
    data = [("2026-06", 8.0), ("2026-07", None), ("2026-08", 6.0), ("2026-09", 9.0)]
    root = parse(line_chart(data, title="Average", y_min=0, y_max=10,
                            fmt=lambda v: f"{v:.1f}"))
    points = bars(root, "point")
    assert [p.get("data-value") for p in points] == ["8", "6", "9"]  # no point for the gap
    assert [tip(p) for p in points] == ["2026-06: 8.0", "2026-08: 6.0", "2026-09: 9.0"]
    ys = [float(p.get("cy", "")) for p in points]
    assert ys[2] < ys[0] < ys[1]  # higher values are drawn higher
    # the gap splits the line: the first point stands alone, the other two are joined
    lines = bars(root, "line")
    assert len(lines) == 1 and len(lines[0].get("points", "").split()) == 2
    # y 0..10 on the same plot: 8 is twice as far from the bottom as 4 would be
    grid = sorted(float(e.get("y1", "")) for e in bars(root, "grid"))
    bottom, top = grid[-1], grid[0]
    assert (bottom - ys[0]) == pytest.approx(0.8 * (bottom - top), abs=0.2)


def test_line_chart_with_no_values() -> None:
    root = parse(line_chart([("a", None), ("b", None)], title="t", empty_text="No data"))
    assert bars(root, "point") == [] and bars(root, "line") == []
    assert [e.text for e in root.iter() if e.get("class") == "empty"] == ["No data"]
    root = parse(line_chart([("only", 7.0)], title="t"))
    assert len(bars(root, "point")) == 1


def test_stacked_bar_segments_share_the_width() -> None:
    root = parse(stacked_bar([("On time", 3), ("Breached", 1), ("Late", 0)], title="Deadlines",
                             width=416))  # 8 on each side
    segments = bars(root, "segment")
    assert [s.get("data-label") for s in segments] == ["On time", "Breached"]  # zero: no rect
    widths = [float(s.get("width", "")) for s in segments]
    assert sum(widths) == pytest.approx(400, abs=0.2)
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.2)
    assert tip(segments[0]) == "On time 3 (75%)"
    legend = [e.text for e in root.iter() if e.get("class") == "legend"]
    assert legend == ["On time 3 (75%)", "Breached 1 (25%)", "Late 0 (0%)"]


def test_stacked_bar_of_nothing() -> None:
    root = parse(stacked_bar([("On time", 0), ("Breached", 0)], title="t", empty_text="None"))
    assert bars(root, "segment") == []
    assert [e.text for e in root.iter() if e.get("class") == "empty"] == ["None"]
    assert [e.text for e in root.iter() if e.get("class") == "legend"] == ["On time 0",
                                                                            "Breached 0"]


def test_long_labels_are_shortened_with_the_full_text_in_a_tooltip() -> None:
    assert text_width("服务") == text_width("ab") * 2
    assert fit("short", 200) == "short"
    shortened = fit("a very long category name indeed", 60)
    assert shortened.endswith("…") and text_width(shortened) <= 60
    root = parse(bar_chart([("a very long category name indeed", 1), ("b", 2)], title="t",
                           width=120))
    label = next(e for e in root.iter() if e.get("class") == "label")
    assert (label.text or "").endswith("…")
    assert tip(label) == "a very long category name indeed"
