"""The merchant's code sticker as a printable PDF (A5): name, the QR of its /M/ link, and a
line of instructions. The PDF library (fpdf2) and the embedded Chinese font subset are the
ones the service certificate uses (leaderboards/certificate.py): no new dependency."""

from __future__ import annotations

import io
import os
import tempfile

from ..codes import render
from ..leaderboards.certificate import _truetype_subset
from ..merchants import service as merchants
from ..redemption import service as redemption

HEADLINE = "扫码用积分付款"
SUBLINE = "Scan with your phone camera to pay with points"
QR_MM = 100


def render_pdf(*, merchant_id: int) -> bytes:
    """One A5 page with the merchant's code as the till and the console serve it in PNG."""
    from fpdf import FPDF

    name = merchants.get_merchant(merchant_id=merchant_id).merchant.name
    link = redemption.merchant_code(merchant_id=merchant_id)["link"]
    pdf = FPDF(format=(148, 210), unit="mm")  # A5 (the name "A5" warns in fpdf2 2.8.5)
    pdf.set_title(f"{name} · {HEADLINE}")
    pdf.set_creator("pointsvc")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    with tempfile.TemporaryDirectory() as tmp:
        font_file = os.path.join(tmp, "sticker.ttf")
        _truetype_subset(name + HEADLINE + SUBLINE + "积分+", font_file)
        pdf.add_font("sticker", fname=font_file)
    pdf.set_fill_color(168, 32, 26)  # the pages' brand red
    pdf.rect(0, 0, 148, 18, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("sticker", size=16)
    pdf.set_xy(10, 4)
    pdf.cell(128, 10, "积分+", align="L")
    pdf.set_text_color(26, 26, 26)
    pdf.set_font("sticker", size=20)
    pdf.set_xy(10, 26)
    pdf.multi_cell(128, 10, name, align="C")
    pdf.image(io.BytesIO(render.png(link, box_size=12)), x=(148 - QR_MM) / 2, y=52, w=QR_MM,
              h=QR_MM)
    pdf.set_font("sticker", size=18)
    pdf.set_xy(10, 158)
    pdf.cell(128, 10, HEADLINE, align="C")
    pdf.set_font("sticker", size=11)
    pdf.set_xy(10, 170)
    pdf.cell(128, 7, SUBLINE, align="C")
    return bytes(pdf.output())
