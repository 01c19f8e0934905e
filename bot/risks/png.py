"""A dependency-free PNG of the heat map: filled rectangles and a 5×7 bitmap font, zlib-compressed.

Enough for a readable slide without pulling in an imaging library; text is upper case.
"""

from __future__ import annotations

import struct
import zlib

from vigil_ir.risks.heatmap import CELL, COLOURS, GRID_TOP, HEIGHT, PANELS, WIDTH, HeatMap, cells

_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    ":": "00000 01100 01100 00000 01100 01100 00000", "-": "00000 00000 00000 11111 00000 00000 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010", ")": "01000 00100 00010 00010 00010 00100 01000",
    ".": "00000 00000 00000 00000 00000 01100 01100", ",": "00000 00000 00000 00000 01100 00100 01000",
    "/": "00001 00010 00010 00100 01000 01000 10000", " ": "00000 00000 00000 00000 00000 00000 00000",
}


def _rgb(colour: str) -> bytes:
    return bytes.fromhex(colour.lstrip("#"))


class Canvas:
    def __init__(self, width: int, height: int, background: str = "#ffffff"):
        self.width, self.height = width, height
        self.pixels = bytearray(_rgb(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, colour: str) -> None:
        x0, y0, x1, y1 = max(0, int(x)), max(0, int(y)), min(self.width, int(x + w)), min(self.height, int(y + h))
        if x1 <= x0:
            return
        run = _rgb(colour) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start:start + len(run)] = run

    def text(self, x: float, y: float, text: str, scale: int = 2, anchor: str = "start",
             colour: str = "#111111") -> None:
        """`y` is the baseline, as in SVG; 6 × scale pixels per character."""
        text = text.upper()
        width = len(text) * 6 * scale - scale
        left = x - {"start": 0, "middle": width / 2, "end": width}[anchor]
        top = y - 7 * scale
        for index, char in enumerate(text):
            for row, bits in enumerate(_GLYPHS.get(char, _GLYPHS[" "]).split()):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        self.rect(left + (index * 6 + col) * scale, top + row * scale, scale, scale, colour)

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[r * stride:(r + 1) * stride]) for r in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def png(heat: HeatMap) -> bytes:
    canvas = Canvas(WIDTH, HEIGHT)
    canvas.text(WIDTH / 2, 56, f"Risk heat map as of {heat.as_of}: {heat.total} open risks", 4, "middle")
    for _, title, left in PANELS:
        canvas.text(left + 2.5 * CELL, GRID_TOP - 40, title, 3, "middle")
        canvas.text(left - 8, GRID_TOP - 8, "Likelihood", 2, "end")
        canvas.text(left + 2.5 * CELL, GRID_TOP + 5 * CELL + 60, "Impact", 2, "middle")
        for value in range(1, 6):
            canvas.text(left + (value - 0.5) * CELL, GRID_TOP + 5 * CELL + 24, str(value), 2, "middle")
            canvas.text(left + (value - 0.5) * CELL, GRID_TOP + 5 * CELL + 40,
                        heat.method.label("impact", value), 1, "middle")
            canvas.text(left - 8, GRID_TOP + (5.5 - value) * CELL + 7,
                        f"{value} {heat.method.label('likelihood', value)}", 2, "end")
    for _, x, y, _, _, level, count in cells(heat):
        canvas.rect(x, y, CELL, CELL, "#ffffff")
        canvas.rect(x + 1, y + 1, CELL - 2, CELL - 2, COLOURS[level])
        if count:
            canvas.text(x + CELL / 2, y + CELL / 2 + 17, str(count), 5, "middle")
    for index, (level, colour) in enumerate(COLOURS.items()):
        x = WIDTH / 2 - 260 + index * 135
        canvas.rect(x, HEIGHT - 44, 22, 22, colour)
        canvas.text(x + 30, HEIGHT - 26, level, 2)
    return canvas.png()
