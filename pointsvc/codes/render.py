"""PNG and SVG renditions of a code (error correction M, alphanumeric mode)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

MAX_VERSION = 6  # every code of DESIGN.md §4 fits; a larger one is a bug, not a bigger QR


def _qr(text: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
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


def svg(text: str) -> bytes:
    """SVG bytes of the QR code of text (no Pillow needed)."""
    buffer = io.BytesIO()
    _qr(text).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    return buffer.getvalue()
