"""Chart geometry for server-rendered inline SVG: no JavaScript and no build step.

Data go in, SVG coordinates come out; ``templates/_charts.html`` draws them. Kept apart from
the dashboard's numbers so each can be tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 520, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 16, 12, 44


@dataclass(frozen=True)
class Tick:
    pos: float  # SVG coordinate along its axis
    label: str


@dataclass
class Frame:
    """The plotting area inside the margins, and the axes' ticks."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    top: int = MARGIN_TOP
    right: int = WIDTH - MARGIN_RIGHT
    bottom: int = HEIGHT - MARGIN_BOTTOM
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)


@dataclass
class Line:
    name: str
    css: str  # s0, s1, ... (colour) plus "dashed" for reference lines
    path: str  # SVG path data
    dots: list[tuple[float, float]]


@dataclass
class LineChart:
    title: str
    x_label: str
    y_label: str
    frame: Frame
    lines: list[Line]

    @property
    def legend(self) -> list[tuple[str, str]]:
        return [(line.name, line.css) for line in self.lines]


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str  # hover text: group, series and value


@dataclass
class BarChart:
    title: str
    y_label: str
    frame: Frame
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (name, css)


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high`` (steps of 1, 2 or 5 times a power of 10)."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(high / step - 1e-9) + 1)]


def thin(points: Sequence[tuple[float, float]], most: int = 400) -> list[tuple[float, float]]:
    """At most about ``most`` evenly spaced points, the last always kept: a long curve stays a
    small page."""
    if len(points) <= most:
        return list(points)
    step = math.ceil(len(points) / most)
    kept = list(points[::step])
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


def _scale(lo: float, hi: float, a: float, b: float):
    span = hi - lo or 1.0
    return lambda v: round(a + (v - lo) / span * (b - a), 2)


def _x_values(low: float, high: float, integer: bool) -> list[float]:
    """Every integer for a short integer axis (model versions), else round steps."""
    if integer and high - low <= 10:
        return [float(v) for v in range(math.floor(low), math.ceil(high) + 1)]
    return [low + v for v in nice_ticks(high - low)]


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]], bool]],
    *,
    x_label: str,
    y_label: str,
    x_min: float = 0.0,
    y_max: float | None = None,
    integer_x: bool = True,
) -> LineChart:
    """``series``: (name, points, dashed). The y axis starts at 0, the x axis at ``x_min``."""
    frame = Frame()
    xs = [x for _, points, _ in series for x, _ in points]
    ys = [y for _, points, _ in series for _, y in points]
    x_values = _x_values(x_min, max(xs, default=x_min + 1), integer_x)
    y_values = nice_ticks(y_max if y_max is not None else max(ys, default=1.0))
    to_x = _scale(x_values[0], x_values[-1], frame.left, frame.right)
    to_y = _scale(0.0, y_values[-1], frame.bottom, frame.top)
    frame.x_ticks = [Tick(to_x(v), _fmt(v)) for v in x_values]
    frame.y_ticks = [Tick(to_y(v), _fmt(v)) for v in y_values]
    lines = []
    for i, (name, points, dashed) in enumerate(series):
        dots = [(to_x(x), to_y(y)) for x, y in points]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x:g},{y:g}" for j, (x, y) in enumerate(dots))
        lines.append(Line(name, f"s{i}" + (" dashed" if dashed else ""), path, dots))
    return LineChart(title, x_label, y_label, frame, lines)


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    y_label: str,
) -> BarChart:
    """Grouped bars: one group per category, one bar per series within it."""
    frame = Frame()
    high = max((v for _, values in series for v in values), default=0.0)
    y_values = nice_ticks(high)
    to_y = _scale(0.0, y_values[-1], frame.bottom, frame.top)
    frame.y_ticks = [Tick(to_y(v), _fmt(v)) for v in y_values]
    slot = (frame.right - frame.left) / max(len(groups), 1)
    width = slot * 0.8 / max(len(series), 1)
    bars = []
    for g, group in enumerate(groups):
        start = frame.left + g * slot + slot * 0.1
        frame.x_ticks.append(Tick(round(frame.left + (g + 0.5) * slot, 2), group))
        for s, (name, values) in enumerate(series):
            y = to_y(values[g])
            bars.append(
                Bar(
                    round(start + s * width, 2),
                    y,
                    round(width, 2),
                    round(frame.bottom - y, 2),
                    f"s{s}",
                    f"{group}, {name}: {_fmt(values[g])}",
                )
            )
    legend = [(name, f"s{s}") for s, (name, _) in enumerate(series)]
    return BarChart(title, y_label, frame, bars, legend)
