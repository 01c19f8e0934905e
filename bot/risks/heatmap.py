"""5×5 heat maps of inherent and residual positions with counts, as SVG (and PNG, see png.py).

Rows are likelihood (5 at the top), columns impact; each cell is coloured by the methodology's
level and shows how many open risks sit there. Sized for a slide: 1280×690.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from xml.sax.saxutils import escape

from vigil_ir.risks.scoring import Methodology, methodology

COLOURS = {"low": "#5cb85c", "medium": "#f0d43a", "high": "#f39c34", "critical": "#d9443c"}
WIDTH, HEIGHT, CELL = 1280, 690, 80
# (axis, title, left edge of the grid); the 200 px left of each grid hold the likelihood labels.
PANELS = (("inherent", "Inherent risk", 210), ("residual", "Residual risk", 840))
GRID_TOP = 140


@dataclass
class HeatMap:
    as_of: str
    counts: dict[str, Counter]  # "inherent"/"residual" -> Counter[(likelihood, impact)]
    total: int
    method: Methodology


def build(rows: list[dict], as_of: str) -> HeatMap:
    """From register rows (vigil_ir.risks.register_asof); closed risks are left out."""
    open_rows = [row for row in rows if row["status"] != "closed"]
    counts = {axis: Counter((row[f"{axis}_likelihood"], row[f"{axis}_impact"]) for row in open_rows)
              for axis in ("inherent", "residual")}
    version = open_rows[0]["methodology_version"] if open_rows else None
    return HeatMap(as_of=as_of, counts=counts, total=len(open_rows), method=methodology(version))


def cells(heat: HeatMap):
    """(axis, x, y, likelihood, impact, level, count) for every cell: shared by SVG and PNG."""
    for axis, _, left in PANELS:
        for likelihood in range(1, 6):
            for impact in range(1, 6):
                level = heat.method.level(heat.method.score(likelihood, impact))
                x, y = left + (impact - 1) * CELL, GRID_TOP + (5 - likelihood) * CELL
                yield axis, x, y, likelihood, impact, level, heat.counts[axis][(likelihood, impact)]


def _text(x, y, text, size=18, anchor="middle", weight="normal") -> str:
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}">'
            f"{escape(str(text))}</text>")


def svg(heat: HeatMap) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
             _text(WIDTH / 2, 48, f"Risk heat map as of {heat.as_of}: {heat.total} open risks", 30, weight="bold")]
    for axis, title, left in PANELS:
        parts.append(_text(left + 2.5 * CELL, GRID_TOP - 40, title, 24, weight="bold"))
        for value in range(1, 6):
            parts.append(_text(left + (value - 0.5) * CELL, GRID_TOP + 5 * CELL + 26,
                               f"{value} {heat.method.label('impact', value)}", 13))
            parts.append(_text(left - 8, GRID_TOP + (5.5 - value) * CELL + 5,
                               f"{value} {heat.method.label('likelihood', value)}", 13, anchor="end"))
        parts.append(_text(left + 2.5 * CELL, GRID_TOP + 5 * CELL + 54, "Impact", 18, weight="bold"))
        parts.append(_text(left - 8, GRID_TOP - 6, "Likelihood", 18, anchor="end", weight="bold"))
    for _, x, y, _, _, level, count in cells(heat):
        parts.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{COLOURS[level]}" '
                     f'stroke="#ffffff" stroke-width="2"><title>{level}: {count}</title></rect>')
        if count:
            parts.append(_text(x + CELL / 2, y + CELL / 2 + 13, count, 38, weight="bold"))
    legend_x = WIDTH / 2 - 260
    for index, (level, colour) in enumerate(COLOURS.items()):
        x = legend_x + index * 135
        parts.append(f'<rect x="{x}" y="{HEIGHT - 44}" width="22" height="22" fill="{colour}"/>')
        parts.append(_text(x + 30, HEIGHT - 27, level, 18, anchor="start"))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
