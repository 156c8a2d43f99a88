"""PNG files that claim more pixels than they are worth: the size checks' test input (no TensorFlow here)."""

from __future__ import annotations

import struct
import zlib


def png_claiming(width: int, height: int, pixels: bool = True) -> bytes:
    """A valid grey PNG of width x height zeros: a few hundred KB on the wire, width*height bytes decoded.
    With `pixels` False its image data is empty: only the header claims the size (instant to make,
    enough for anything that reads the header before it decodes)."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    rows = height if pixels else 0
    body = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
