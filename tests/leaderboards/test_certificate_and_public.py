"""The A4 certificate (text extracted with pypdf), its verification code, the public board."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from pypdf import PdfReader

from pointsvc.extensions import db
from pointsvc.ledger.seals import seal
from tests.factories import auth
from tests.leaderboards.conftest import drain, give, resident


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    return reader.pages[0].extract_text()


def code_in(text: str) -> str:
    return re.search(r"(PSV1(?:-[A-Z2-7]{1,4})+)", text).group(1)


def test_certificate_shows_hours_name_and_a_code_that_verifies(app, client, world):
    user, rid = resident(app, world, "张小明")
    give(app, rid, "volunteer-hour", 125 * 60 + 30, at=datetime(2026, 5, 1, 2, tzinfo=UTC))
    give(app, rid, "volunteer-hour", 60, at=datetime(2026, 6, 1, 2, tzinfo=UTC))
    drain(app)
    client.post("/api/v1/honours/designations", headers=auth(app, world.organizer),
                json={"resident_id": rid, "title": "最美志愿者", "citation": "热心",
                      "period_label": "2026年6月"})

    response = client.get("/api/v1/me/service-record.pdf", headers=auth(app, user))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert b"FontFile2" in response.data  # a real embedded TrueType font, not a viewer guess
    text = pdf_text(response.data)
    assert "张小明" in text
    assert "126.5 小时" in text
    assert "志愿服务证明" in text and "★" in text and "一星志愿者" in text
    assert "最美志愿者（2026年6月）" in text
    code = code_in(text)

    verified = client.post("/api/v1/certificates/verify", json={"code": code})
    assert verified.status_code == 200, verified.get_json()
    assert verified.get_json() == {
        "valid": True, "name": "张*明", "community": "甲社区", "service_hours": 126.5,
        "star_level": 1, "issued_on": verified.get_json()["issued_on"]}
    # Spaces, lower case and missing dashes are forgiven: people type these codes.
    loose = code.replace("-", " ").lower()
    assert client.post("/api/v1/certificates/verify", json={"code": loose}).status_code == 200


def test_forged_and_malformed_codes_are_rejected(app, client, world):
    user, rid = resident(app, world, "王伪造")
    give(app, rid, "volunteer-hour", 120)
    drain(app)
    code = code_in(pdf_text(client.get("/api/v1/me/service-record.pdf",
                                       headers=auth(app, user)).data))
    raw = code.replace("-", "")
    # Change one body character (claims other hours) but keep the tag: the MAC fails.
    position = 12
    forged = raw[:position] + ("A" if raw[position] != "A" else "B") + raw[position + 1:]
    for bad in (forged, raw[:-1] + ("Q" if raw[-1] != "Q" else "R"), "PSV1", "PSX1" + raw[4:],
                raw + "AA", "PSV1-0000-1111", ""):
        response = client.post("/api/v1/certificates/verify", json={"code": bad})
        assert response.status_code == 422, (bad, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] in {"certificate_invalid", "validation_failed"}
    response = client.post("/api/v1/certificates/verify", json={"code": forged})
    assert response.get_json()["code"] == "certificate_invalid"
    # A code signed with another server's key is a forgery here too.
    from pointsvc.leaderboards.certificate import Certificate, issue_code

    other = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = b"another-server-key-that-is-long-enough-000000"
    with app.app_context():
        foreign = issue_code(Certificate(rid, 600000, 5, datetime(2026, 1, 1).date()))
    app.config["SECRET_KEY"] = other
    assert client.post("/api/v1/certificates/verify",
                       json={"code": foreign}).get_json()["code"] == "certificate_invalid"
    assert client.post("/api/v1/certificates/verify", json={}).status_code == 422
    assert client.get("/api/v1/me/service-record.pdf").status_code == 401
    assert client.get("/api/v1/me/service-record.pdf",
                      headers=auth(app, world.organizer)).status_code == 403


def test_public_board_shows_masked_top_ten_totals_and_the_latest_seal(app, client, world):
    people = [resident(app, world, f"居民{name}")[1] for name in "甲乙丙丁戊己庚辛壬癸子丑"]
    for n, rid in enumerate(people):
        give(app, rid, "garbage-sorting", n + 1)
    give(app, people[0], "volunteer-hour", 90)
    give(app, people[1], "volunteer-hour", 30)
    drain(app)
    with app.app_context():
        sealed = seal()
        root, seq = sealed.root_hash, sealed.seq
        db.session.commit()
    response = client.get(f"/public/communities/{world.tree.community_a}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "甲社区" in page and root in page and f"第 {seq} 次" in page
    assert page.count("<tr><td>") == 10
    # Top ten: 丑 60 … 戊 25, then 丁 and 甲 tie at 20 (rank 9); 乙 and 丙 (15) are 11th.
    assert "居*丑" in page and "居*甲" in page and "居*乙" not in page and "居*丙" not in page
    assert not re.search(r"居民[甲乙丙丁戊己庚辛壬癸子丑]", page)  # never a full name
    assert "本月发放积分<b>" + str(5 * sum(range(1, 13)) + 15 + 5) + "</b>" in page
    assert "本月志愿者人数<b>2</b>" in page and "2.0 小时" in page
    # No phone numbers (the root hash is hex and may hold any run of digits: leave it out).
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", page.replace(root, ""))
    assert client.get("/public/communities/999999").status_code == 404
    assert client.get(f"/public/communities/{world.tree.street}").status_code == 404
