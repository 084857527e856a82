"""Decode an 8-bit RGB/RGBA PNG with the standard library, enough to count the colours of a screenshot."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MOD_256 = bytes(range(256)) * 2  # (a + b) & 0xFF for two bytes, by indexing


Box = tuple[int, int, int, int]
"""left, top, right, bottom (right and bottom excluded), in pixels."""


def read_png(path: Path, box: Box | None = None) -> tuple[int, int, Counter[tuple[int, int, int]]]:
    """(width, height, pixel count per RGB colour) of an 8-bit, non-interlaced RGB or RGBA PNG.

    With ``box``, only the pixels inside it are counted (the width and height are still the image's).
    """
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG")
    offset = len(PNG_SIGNATURE)
    idat = bytearray()
    width = height = channels = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        body = data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace or colour_type not in (2, 6):
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    colours: Counter[tuple[int, int, int]] = Counter()
    previous = bytearray(stride)
    position = 0
    left, top, right, bottom = box or (0, 0, width, height)
    first, last = max(0, left) * channels, min(width, right) * channels
    for y in range(height):
        filter_type = raw[position]
        line = bytearray(raw[position + 1:position + 1 + stride])
        position += 1 + stride
        _unfilter(filter_type, line, previous, channels)
        if top <= y < bottom:
            reds, greens, blues = (line[first + c:last:channels] for c in range(3))
            colours.update(zip(reds, greens, blues, strict=True))
        previous = line
    return width, height, colours


def _unfilter(filter_type: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    if filter_type == 0:
        return
    if filter_type == 2:  # "up", what Chromium writes for a screenshot optimised for speed: done in C
        line[:] = bytes(map(_MOD_256.__getitem__, map(int.__add__, line, previous)))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if filter_type == 1:
            line[i] = (line[i] + left) & 0xFF
        elif filter_type == 3:
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif filter_type == 4:
            up = previous[i]
            up_left = previous[i - bpp] if i >= bpp else 0
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
            line[i] = (line[i] + predictor) & 0xFF
        else:
            raise ValueError(f"bad PNG filter type {filter_type}")
