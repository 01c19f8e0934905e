"""Small SVG bar charts for printed reports: no JavaScript, every text escaped, readable in grey.

Each chart is a plain vertical bar chart, grouped (series side by side) per category; values and
category labels are written on the chart, so it reads the same printed in black and white.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

# Colour-blind-safe, distinct in greyscale too (light to dark).
PALETTE = ("#9ecae1", "#4292c6", "#08519c", "#f16913", "#7f2704", "#525252")
WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 760, 300, 40, 60, 50


def bar_chart(title: str, categories: list[str], series: dict[str, list[float | None]], *, unit: str = "") -> str:
    """`series` maps a name to one value per category (None: no value, no bar)."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = max(values, default=0) or 1
    plot_h = HEIGHT - TOP - BOTTOM
    group_w = (WIDTH - LEFT - 20) / max(len(categories), 1)
    bar_w = max(min(group_w * 0.8 / max(len(series), 1), 60), 2)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title, {chr(34): "&quot;"})}" '
             'font-family="sans-serif">',
             f'<text x="{WIDTH / 2}" y="22" font-size="15" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - 10}" y2="{HEIGHT - BOTTOM}" stroke="#333"/>']
    for position, category in enumerate(categories):
        left = LEFT + position * group_w + (group_w - bar_w * len(series)) / 2
        for offset, (name, numbers) in enumerate(series.items()):
            value = numbers[position]
            if value is None:
                continue
            height = plot_h * value / top
            x, y = left + offset * bar_w, HEIGHT - BOTTOM - height
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{height:.1f}" '
                         f'fill="{PALETTE[offset % len(PALETTE)]}"><title>{escape(f"{name}, {category}: {value:g}{unit}")}'
                         '</title></rect>')
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">'
                         f'{value:g}</text>')
        parts.append(f'<text x="{LEFT + position * group_w + group_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'font-size="11" text-anchor="middle">{escape(category)}</text>')
    legend_x = LEFT
    for offset, name in enumerate(series):
        parts.append(f'<rect x="{legend_x}" y="{HEIGHT - 22}" width="12" height="12" fill="{PALETTE[offset % len(PALETTE)]}"/>'
                     f'<text x="{legend_x + 16}" y="{HEIGHT - 12}" font-size="11">{escape(name)}</text>')
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)
