"""Small bar charts as SVG, for asset metadata.

The Dagster UI renders Markdown metadata with a sanitizer that allows `data:` image sources
(ui-core's MarkdownWithPlugins adds "data" to the allowed `src` protocols), so a chart travels as
a Markdown image with a base64 SVG data URI: no plotting library, no file to serve.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH = 760
HEIGHT = 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 30, 50
_BAR = "#4f43dd"
_GRID = "#d9dce3"
_TEXT = "#3c4155"


def _nice_ceiling(value: float) -> float:
    """The value rounded up to its leading digit (542 -> 600), for a readable axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return float(math.ceil(value / magnitude) * magnitude)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def bar_chart_svg(
    labels: Sequence[str], values: Sequence[float], title: str, label_every: int = 1, x_caption: str = ""
) -> str:
    """A vertical bar chart; every `label_every`-th x label is drawn so long series stay legible,
    and `x_caption` under the axis says what the labels leave out (e.g. the year of "11-05")."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    top = _nice_ceiling(max(values, default=0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(len(values), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="18" font-size="13" font-weight="bold" fill="{_TEXT}">{escape(title)}</text>',
    ]
    for i in range(5):
        tick = top * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{_TEXT}">{_fmt(tick)}</text>'
        )
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = _LEFT + i * slot + slot * 0.15
        y = _TOP + plot_h - h
        # <title> gives the exact value as a tooltip where the image is shown inline.
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{_BAR}">'
            f"<title>{escape(str(label))}: {_fmt(value)}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" '
                f'fill="{_TEXT}">{escape(str(label))}</text>'
            )
    if x_caption:
        parts.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h + 36}" text-anchor="middle" '
            f'font-weight="bold" fill="{_TEXT}">{escape(x_caption)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def markdown_image(svg: str, alt: str) -> str:
    """Markdown that shows the SVG inline, as a data URI."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"![{alt}](data:image/svg+xml;base64,{data})"
