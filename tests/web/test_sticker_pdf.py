"""The merchant's code sticker as a PDF to print: the merchant's name as text, and a QR
image that decodes (zxing-cpp) to the merchant's /M/ link — from the console and the till."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image
from pypdf import PdfReader

from .conftest import Page


def _read(data: bytes) -> tuple[str, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    text = page.extract_text()
    decoded = []
    for image in page.images:
        picture = Image.open(io.BytesIO(image.data)).convert("L")
        decoded += [found.text for found in zxingcpp.read_barcodes(picture)]
    return text, decoded


def _link(app, merchant_id: int) -> str:  # type: ignore[no-untyped-def]
    from pointsvc.redemption import service as redemption

    with app.app_context():
        return redemption.merchant_code(merchant_id=merchant_id)["link"]


def test_the_console_prints_a_pdf_sticker_in_scope_only(app, world):
    staff = Page(app.test_client())
    staff.sign_in(app, world.organizer_a, till=True)
    assert "sticker.pdf" in staff.get("/console/merchants").get_data(as_text=True)
    with staff.get(f"/console/merchants/{world.shop}/sticker.pdf") as pdf:
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        assert "attachment" in pdf.headers["Content-Disposition"]
        text, codes = _read(pdf.data)
    assert "甲社区积分超市" in text and "扫码用积分付款" in text
    assert codes == [_link(app, world.shop)]
    assert staff.get(f"/console/merchants/{world.shop_b}/sticker.pdf").status_code == 403


def test_the_till_prints_its_own_pdf_sticker(app, world, till_page):
    with till_page.get("/till/sticker.pdf") as pdf:
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
        _text, codes = _read(pdf.data)
    assert codes == [_link(app, world.shop)]
    assert till_page.get("/till/sticker.gif").status_code == 404
