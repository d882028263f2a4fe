"""The A4 service certificate (志愿服务证明) and its signed verification code.

The font is Noto Sans SC from the PyPI package `pylopdf-fonts-zh-cn` (SIL OFL), so `make run`
needs nothing but Python. It ships with CFF outlines; the PDF embeds a subset converted to
TrueType outlines (fontTools), which every viewer and text extractor reads as plain Unicode.

Verification code: "PSV1" + base32(body || HMAC-SHA256 tag, 10 bytes), grouped by four.
The body is (resident id, service minutes, star level, issue date); the key is derived from
the server's SECRET_KEY, so only this service can issue a code and anyone can ask it whether a
code is genuine (`POST /api/v1/certificates/verify`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..common import mask_name
from ..errors import DomainError
from ..extensions import db
from ..orgs.models import OrgNode
from ..people.models import Resident, User
from .honours import honours_of, star_level
from .tallies import now_local_date

PREFIX = "PSV1"
BODY = struct.Struct(">QIBH")  # resident id, minutes, stars, days since 2000-01-01
TAG_BYTES = 10
EPOCH = date(2000, 1, 1)
STAR_NAMES = ("", "一星", "二星", "三星", "四星", "五星")
CODE_CHARS = re.compile(r"^[A-Z2-7]+$")


class CertificateInvalid(DomainError):
    status = 422
    code = "certificate_invalid"


@dataclass(frozen=True)
class Certificate:
    resident_id: int
    minutes: int
    stars: int
    issued_on: date


def _key() -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"], b"pointsvc-certificate-v1",
                    hashlib.sha256).digest()


def issue_code(certificate: Certificate) -> str:
    """The printed verification code of a certificate."""
    body = BODY.pack(certificate.resident_id, certificate.minutes, certificate.stars,
                     (certificate.issued_on - EPOCH).days)
    tag = hmac.new(_key(), PREFIX.encode() + body, hashlib.sha256).digest()[:TAG_BYTES]
    raw = base64.b32encode(body + tag).decode().rstrip("=")
    token = PREFIX + raw
    return "-".join(token[i:i + 4] for i in range(0, len(token), 4))


def parse_code(text: str) -> Certificate:
    """The certificate a code vouches for, or 422 certificate_invalid (format before crypto)."""
    token = re.sub(r"[\s-]", "", text or "").upper()
    expected = len(PREFIX) + ((BODY.size + TAG_BYTES) * 8 + 4) // 5
    if len(token) != expected or not token.startswith(PREFIX):
        raise CertificateInvalid("certificate_invalid", "not a certificate verification code")
    raw_text = token[len(PREFIX):]
    if not CODE_CHARS.match(raw_text):
        raise CertificateInvalid("certificate_invalid", "not a certificate verification code")
    raw = base64.b32decode(raw_text + "=" * (-len(raw_text) % 8))
    body, tag = raw[:BODY.size], raw[BODY.size:]
    want = hmac.new(_key(), PREFIX.encode() + body, hashlib.sha256).digest()[:TAG_BYTES]
    if not hmac.compare_digest(tag, want):
        raise CertificateInvalid("certificate_invalid", "the code was not issued by this service")
    resident_id, minutes, stars, days = BODY.unpack(body)
    return Certificate(resident_id, minutes, stars, EPOCH + timedelta(days=days))


def verify(*, code: str) -> dict[str, Any]:
    """What a genuine certificate says (masked name): for whoever holds the paper."""
    certificate = parse_code(code)
    row = db.session.execute(
        select(User.display_name, OrgNode.name_zh)
        .select_from(Resident)
        .join(User, User.id == Resident.user_id)
        .join(OrgNode, OrgNode.id == Resident.community_id)
        .where(Resident.id == certificate.resident_id)
    ).first()
    return {
        "valid": True,
        "name": mask_name(row.display_name) if row else None,
        "community": row.name_zh if row else None,
        "service_hours": round(certificate.minutes / 60, 1),
        "star_level": certificate.stars,
        "issued_on": certificate.issued_on.isoformat(),
    }


# -- the PDF ------------------------------------------------------------------------------


def _font_path() -> str:
    import pylopdf_fonts_zh_cn

    return str(pylopdf_fonts_zh_cn.sans_path())


def _truetype_subset(text: str, out_path: str) -> None:
    """Write a TrueType-outline subset of Noto Sans SC covering `text`."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.notdef_outline = True
    options.desubroutinize = True
    options.name_IDs = ["*"]
    with TTFont(_font_path(), lazy=True) as font:  # closes the 8 MB file afterwards
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=text)
        subsetter.subset(font)
        _cff_to_glyf(font)
        font.save(out_path)


def _cff_to_glyf(font: Any) -> None:
    """Turn CFF outlines into quadratic TrueType ones, in place (fontTools' otf2ttf recipe)."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for field in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs",
                  "maxInstructionDefs", "maxStackElements", "maxSizeOfInstructions",
                  "maxComponentElements"):
        setattr(maxp, field, 1 if field == "maxZones" else 0)
    font["maxp"] = maxp
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font.sfntVersion = "\x00\x01\x00\x00"
    font["head"].glyphDataFormat = 0


def certificate_for(*, resident_id: int) -> tuple[Certificate, dict[str, Any]]:
    """Today's certificate of a resident and the facts printed on it."""
    resident = db.session.get(Resident, resident_id)
    community = db.session.get(OrgNode, resident.community_id)
    user = db.session.get(User, resident.user_id)
    honours = honours_of(resident_id=resident_id)
    minutes = honours["service_minutes"]
    certificate = Certificate(resident_id, minutes, star_level(minutes=minutes),
                              now_local_date(timezone=community.timezone))
    return certificate, {"name": user.display_name, "community": community.name_zh,
                         "honours": honours}


def render_pdf(*, resident_id: int) -> bytes:
    """The printable A4 certificate of service hours, star level and honours."""
    from fpdf import FPDF

    certificate, facts = certificate_for(resident_id=resident_id)
    code = issue_code(certificate)
    hours = f"{certificate.minutes / 60:.1f}"
    honours = facts["honours"]
    lines = [f"{badge['title']}（{badge['period']}）" for badge in honours["badges"]]
    lines += [f"{d['title']}{'（' + d['period_label'] + '）' if d['period_label'] else ''}"
              for d in honours["designations"]]
    stars = certificate.stars
    star_text = (f"{'★' * stars}  {STAR_NAMES[stars]}志愿者" if stars
                 else "尚未达到星级（满 100 小时为一星）")
    paragraphs = [
        f"兹证明 {facts['name']}（{facts['community']}居民）在本社区积分+志愿服务平台",
        f"累计记录志愿服务时长 {hours} 小时。",
        f"星级：{star_text}",
    ]
    verify_url = f"https://{current_app.config['PUBLIC_HOST'].lower()}/api/v1/certificates/verify"
    text = "".join(["志愿服务证明", "荣誉", "签发日期验证码", *paragraphs, *lines, code,
                    verify_url, certificate.issued_on.isoformat(), "0123456789.:-/（）无"])

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title("志愿服务证明")
    pdf.set_creator("pointsvc")
    pdf.add_page()
    with tempfile.TemporaryDirectory() as tmp:
        font_file = os.path.join(tmp, "cert.ttf")
        _truetype_subset(text, font_file)
        pdf.add_font("cert", fname=font_file)
    pdf.set_draw_color(180, 30, 30)
    pdf.set_line_width(1.2)
    pdf.rect(12, 12, 186, 273)
    pdf.set_font("cert", size=30)
    pdf.set_y(40)
    pdf.cell(0, 16, "志愿服务证明", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(12)
    pdf.set_font("cert", size=14)
    for paragraph in paragraphs:
        pdf.set_x(28)
        pdf.multi_cell(154, 10, paragraph, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_x(28)
    pdf.cell(154, 10, "荣誉：" + ("" if lines else "无"), new_x="LMARGIN", new_y="NEXT")
    for line in lines[:12]:
        pdf.set_x(36)
        pdf.cell(146, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cert", size=11)
    pdf.set_y(236)
    pdf.set_x(28)
    pdf.cell(154, 7, f"签发日期：{certificate.issued_on.isoformat()}", new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_x(28)
    pdf.cell(154, 7, f"验证码：{code}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(28)
    pdf.cell(154, 7, verify_url, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
