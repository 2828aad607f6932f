"""The overview's charts: webhooks received per hour and per day, by status, drawn as SVG on the server
(no script, no library).

``CHARTS`` holds each chart's definition; :func:`received` is the one query behind a chart and its JSON
twin (``GET /api/admin/charts/{chart}``, in ``api.py``); :func:`draw` draws it. Colours come from the
page's stylesheet through class names, so the charts follow light and dark mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from markupsafe import Markup, escape
from sqlalchemy import Connection

from smartplex.instances import Instance
from webhook_api.admin_page.operations import Bucket, received_over_time

#: Bottom to top: the settled states first, what still needs attention on top where the eye lands.
STACK = ("processed", "ignored", "missing", "dispatched", "pending", "failed")

HEIGHT = 132
LEFT, RIGHT, TOP, BOTTOM = 30, 6, 8, 20


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 4, 6, 8, 10, 20, 40, ... at or above ``value``: a round top for the axis
    whose half, where the middle gridline goes, is a whole number too."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for factor in (2, 4, 6, 8, 10):
            if step * factor >= value:
                return step * factor
        step *= 10


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    buckets: Sequence[Bucket],
    *,
    width: int,
    period: timedelta,
    caption: str,
    tick: Callable[[int, datetime], str | None],
    span: Callable[[datetime, datetime], str],
) -> Markup:
    """Stacked bars, one per bucket, by status, ``width`` units wide (text keeps one size across charts
    shown at the same scale). ``tick(i, start)`` labels the x axis (None: no label); ``span(start, end)``
    names a bucket in its tooltip."""
    peak = max((b.total for b in buckets), default=0)
    top = nice_ceiling(max(peak, 1))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = plot_w / max(len(buckets), 1)
    bar_w = max(slot * (0.7 if len(buckets) > 12 else 0.55), 1.0)
    total = sum(b.total for b in buckets)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="{escape(caption)}: {total} webhooks" xmlns="http://www.w3.org/2000/svg">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        if fraction == 0.5 and top < 2:
            continue
        y = base - fraction * plot_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{_number(y)}" y2="{_number(y)}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 4}" y="{_number(y + 3)}" text-anchor="end">{_number(top * fraction)}</text>'
        )
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar_w) / 2
        end = bucket.start + period
        breakdown = ", ".join(f"{bucket.counts[s]} {s}" for s in STACK if bucket.counts.get(s))
        tip = f"{span(bucket.start, end)}: {bucket.total} received" + (f" ({breakdown})" if breakdown else "")
        parts.append(f'<g class="bar"><title>{escape(tip)}</title>')
        # The whole column answers the pointer, so an empty or short bar still shows its tooltip.
        parts.append(
            f'<rect class="hit" x="{_number(LEFT + i * slot)}" y="{TOP}" width="{_number(slot)}" height="{plot_h}"/>'
        )
        y = float(base)
        for status in STACK:
            count = bucket.counts.get(status, 0)
            if not count:
                continue
            height = count / top * plot_h
            y -= height
            parts.append(
                f'<rect class="s-{status}" x="{_number(x)}" y="{_number(y)}" width="{_number(bar_w)}" '
                f'height="{_number(max(height, 0.8))}"/>'
            )
        parts.append("</g>")
        label = tick(i, bucket.start)
        if label:
            parts.append(
                f'<text class="axis" x="{_number(x + bar_w / 2)}" y="{HEIGHT - 6}" text-anchor="middle">{escape(label)}</text>'
            )
    if total == 0:
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">No webhooks</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


ChartName = Literal["hourly", "daily"]


@dataclass(frozen=True)
class Chart:
    """One of each card's charts: the last ``bars`` periods of length ``period``, the current one last."""

    name: ChartName
    period: timedelta
    bars: int
    #: In SVG units: text keeps one size across charts shown at the same scale.
    width: int
    caption: str
    #: Under the chart on the page.
    label: str
    #: The x axis label of bar ``i`` of ``last`` (None: no label).
    tick: Callable[[int, int, datetime], str | None]
    #: A bar's period in its tooltip.
    span: Callable[[datetime, datetime], str]


CHARTS: dict[ChartName, Chart] = {
    "hourly": Chart(
        "hourly", timedelta(hours=1), 24, 360, "Webhooks received in the last 24 hours, by hour",
        "Last 24 hours, by hour (UTC)",
        tick=lambda i, last, start: "now" if i == last else (f"{start:%H}:00" if start.hour % 6 == 0 else None),
        span=lambda start, end: f"{start:%a %H:%M}–{end:%H:%M} UTC",
    ),
    "daily": Chart(
        "daily", timedelta(days=1), 7, 210, "Webhooks received in the last 7 days, by day",
        "Last 7 days, by day (UTC)",
        tick=lambda i, last, start: "today" if i == last else f"{start:%a}",
        span=lambda start, end: f"{start:%a %d %b} (UTC)",
    ),
}  # fmt: skip


def received(
    connection: Connection, chart: Chart, instances: Sequence[Instance], now: datetime
) -> dict[Instance, list[Bucket]]:
    """Per instance, the bars of ``chart`` at ``now`` (whole UTC hours or days): what the chart draws
    and its JSON twin answers."""
    series = received_over_time(
        connection, bucket=chart.period, buckets=chart.bars, now=now, instances=[i.id for i in instances]
    )
    return {instance: series[instance.id] for instance in instances}


def draw(chart: Chart, buckets: Sequence[Bucket]) -> Markup:
    last = len(buckets) - 1
    return bar_chart(
        buckets,
        width=chart.width,
        period=chart.period,
        caption=chart.caption,
        tick=lambda i, start: chart.tick(i, last, start),
        span=chart.span,
    )
