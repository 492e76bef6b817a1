"""Draws the Teams app icons with a tiny stdlib PNG writer (zlib + struct), no image library.

``python appManifest/icons.py`` rewrites ``color.png`` (192x192, opaque) and ``outline.png``
(32x32, transparent background, white outline only), as the Teams manifest requires. The PNGs
are committed; run this only to change the artwork.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["draw_color", "draw_outline", "encode_png"]

Pixel = tuple[int, int, int, int]
ACCENT: Pixel = (0x44, 0x64, 0xEE, 255)
WHITE: Pixel = (255, 255, 255, 255)
CLEAR: Pixel = (0, 0, 0, 0)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(size: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    """Return an 8-bit RGBA PNG, ``size`` x ``size``; ``pixel(x, y)`` gives each colour."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(size)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def _calendar_mark(x: float, y: float, stroke: float) -> bool:
    """True on the strokes of a calendar page with a check mark, in unit coordinates 0..1."""
    in_frame = 0.18 <= x <= 0.82 and 0.22 <= y <= 0.84
    on_border = in_frame and (
        x < 0.18 + stroke or x > 0.82 - stroke or y < 0.22 + stroke or y > 0.84 - stroke
    )
    on_header = in_frame and 0.34 <= y <= 0.34 + stroke
    on_rings = (abs(x - 0.35) < stroke / 2 or abs(x - 0.65) < stroke / 2) and 0.14 <= y <= 0.28
    on_tick = (abs((y - 0.62) - (x - 0.38)) < stroke * 0.7 and 0.34 <= x <= 0.46) or (
        abs((y - 0.74) + (x - 0.46)) < stroke * 0.7 and 0.46 <= x <= 0.68
    )
    return on_border or on_header or on_rings or on_tick


def draw_color(size: int = 192) -> bytes:
    """Return the full-colour icon: a white calendar mark on the accent colour."""
    return encode_png(
        size, lambda x, y: WHITE if _calendar_mark((x + 0.5) / size, (y + 0.5) / size, 0.07) else ACCENT
    )


def draw_outline(size: int = 32) -> bytes:
    """Return the outline icon: white strokes on a fully transparent background."""
    return encode_png(
        size, lambda x, y: WHITE if _calendar_mark((x + 0.5) / size, (y + 0.5) / size, 0.09) else CLEAR
    )


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    (here / "color.png").write_bytes(draw_color())
    (here / "outline.png").write_bytes(draw_outline())
