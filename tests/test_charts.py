"""Chart geometry: data land where the axes say they are."""

from __future__ import annotations

import pytest

from app.services.charts import bar_chart, line_chart, nice_ticks, thin


@pytest.mark.parametrize(
    ("high", "ticks"),
    [
        (7, [0, 2, 4, 6, 8]),
        (1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (100, [0, 20, 40, 60, 80, 100]),
        (0, [0, 1]),
        (3, [0, 1, 2, 3]),
    ],
)
def test_nice_ticks_cover_the_data_in_round_steps(high, ticks):
    assert nice_ticks(high) == pytest.approx(ticks)


def test_line_chart_maps_data_to_the_frame():
    chart = line_chart("t", [("a", [(0, 0), (10, 5), (20, 10)], False)], x_label="x", y_label="y")
    f = chart.frame
    dots = chart.lines[0].dots
    assert dots[0] == (f.left, f.bottom)
    assert dots[-1] == (f.right, f.top)  # 20 and 10 are the last ticks
    assert dots[1] == ((f.left + f.right) / 2, (f.top + f.bottom) / 2)
    assert chart.lines[0].path.startswith(f"M{f.left},{f.bottom} L")
    assert [t.label for t in f.y_ticks] == ["0", "2", "4", "6", "8", "10"]


def test_model_versions_get_one_tick_each():
    chart = line_chart(
        "f1",
        [("dev", [(2, 0.5), (3, 0.6), (4, 0.7)], False)],
        x_label="v",
        y_label="F1",
        x_min=2,
        y_max=1.0,
    )
    assert [t.label for t in chart.frame.x_ticks] == ["2", "3", "4"]
    assert chart.frame.y_ticks[-1].label == "1"


def test_bars_are_as_tall_as_their_values():
    chart = bar_chart("labels", ["a", "b"], [("silver", [10, 5]), ("now", [6, 9])], y_label="n")
    f = chart.frame
    heights = {b.title: b.h for b in chart.bars}
    full = f.bottom - f.top  # the top tick is 10
    assert heights["a, silver: 10"] == pytest.approx(full)
    assert heights["b, silver: 5"] == pytest.approx(full / 2, abs=0.01)
    a_silver, a_now, b_silver, _ = chart.bars
    assert a_silver.x < a_now.x < b_silver.x  # grouped by label, series side by side
    assert chart.legend == [("silver", "s0"), ("now", "s1")]


def test_thin_keeps_the_ends():
    points = [(i, i) for i in range(1001)]
    kept = thin(points, most=100)
    assert len(kept) <= 102 and kept[0] == (0, 0) and kept[-1] == (1000, 1000)
    assert thin(points[:5]) == points[:5]
