"""The GIF89a byte format, as far as :mod:`reporter.outputs.gif` needs it: blocks out, blocks in.

A GIF here is: header + logical screen, one global colour table, a NETSCAPE2.0 loop block, a
comment, then per frame a Graphic Control Extension (its delay) and an image block, then the
trailer. Each frame block is self-contained (full screen, global palette), so frames can be
dropped or their delay changed without touching any other frame's bytes.
"""

from __future__ import annotations

import struct

import numpy as np

TRAILER = b"\x3b"
GCE_LEN = 8  # a Graphic Control Extension: 21 f9 04 flags delay(2) transparent 00
MAX_DELAY_CS = 0xFFFF


def sub_blocks(data: bytes) -> bytes:
    """``data`` as GIF data sub-blocks (length-prefixed chunks of <= 255 bytes, then 0)."""
    chunks = [bytes([len(data[i:i + 255])]) + data[i:i + 255] for i in range(0, len(data), 255)]
    return b"".join(chunks) + b"\x00"


def skip_sub_blocks(buf: bytes, pos: int) -> int:
    """Position just after the sub-blocks that start at ``pos``."""
    while True:
        if pos >= len(buf):
            raise ValueError("truncated GIF data")
        n = buf[pos]
        pos += 1 + n
        if n == 0:
            return pos


def parse(buf: bytes) -> dict:
    """Split a GIF into screen size, global palette, comments and per-frame blocks.

    A frame block runs from the extensions before an image (our Graphic Control Extension)
    to the end of its image data. Comments are those before the first frame.
    """
    if buf[:6] not in (b"GIF87a", b"GIF89a") or len(buf) < 13:
        raise ValueError("not a GIF")
    width, height, flags = struct.unpack("<HHB", buf[6:11])
    pos, palette = 13, None
    if flags & 0x80:
        n = 3 << ((flags & 7) + 1)
        palette = np.frombuffer(buf[pos:pos + n], dtype=np.uint8).reshape(-1, 3)
        pos += n
    comments, frames, frame_start = [], [], None
    while pos < len(buf):
        kind = buf[pos]
        if kind == 0x3B:
            break
        if kind == 0x21:
            label = buf[pos + 1]
            if label == 0xF9 and frame_start is None:
                frame_start = pos
            end = skip_sub_blocks(buf, pos + 2)
            if label == 0xFE and not frames and frame_start is None:
                data, p = b"", pos + 2
                while buf[p]:
                    data += buf[p + 1:p + 1 + buf[p]]
                    p += 1 + buf[p]
                comments.append(data)
            pos = end
        elif kind == 0x2C:
            start = frame_start if frame_start is not None else pos
            img_flags = buf[pos + 9]
            p = pos + 10 + ((3 << ((img_flags & 7) + 1)) if img_flags & 0x80 else 0)
            pos = skip_sub_blocks(buf, p + 1)  # +1: the LZW minimum code size byte
            frames.append(buf[start:pos])
            frame_start = None
        else:
            raise ValueError(f"unexpected GIF block 0x{kind:02x} at byte {pos}")
    return {"size": (width, height), "palette": palette, "comments": comments, "frames": frames}


def gce(delay_cs: int) -> bytes:
    """A Graphic Control Extension with this delay (10 ms units); disposal 1 (leave in place)."""
    return b"\x21\xf9\x04\x04" + struct.pack("<H", min(int(delay_cs), MAX_DELAY_CS)) + b"\x00\x00"


def with_delay(block: bytes, delay_cs: int) -> bytes:
    """A frame block (GCE first) with its delay replaced; its image data is untouched."""
    return gce(delay_cs) + block[GCE_LEN:]


def delay_of(block: bytes) -> int:
    """Delay (10 ms units) in a frame block's Graphic Control Extension."""
    return struct.unpack("<H", block[4:6])[0]


def header(size: tuple[int, int], palette_bytes: bytes, loop: int, comment: bytes) -> bytes:
    """Everything before the first frame: screen, 256-colour global palette, loop, comment."""
    w, h = size
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + palette_bytes
            + b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
            + b"\x21\xfe" + sub_blocks(comment))


def single_frame(size: tuple[int, int], palette_bytes: bytes, block: bytes) -> bytes:
    """A one-frame GIF of a frame block (to decode it with Pillow)."""
    w, h = size
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + palette_bytes
            + block + TRAILER)
