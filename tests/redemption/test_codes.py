"""Pay codes and merchant codes: one-time use, expiry, wrong types, forgeries, real decoding."""

from __future__ import annotations

import base64
import io

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from pointsvc.codes import CARD, CHECKIN, MERCHANT, PAYCODE, envelope, issue_code
from tests.factories import auth
from tests.redemption.conftest import balance, fund, new_key, paycode, redeem


def decode_png(data: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def pay(client, app, resident_user, merchant_code, key=None, **body):
    return client.post("/api/v1/payments", json={"merchant_code": merchant_code, **body},
                       headers=auth(app, resident_user, **{"Idempotency-Key": key or new_key()}))


def test_pay_code_is_a_short_bare_token_valid_60_seconds(app, client, world):
    r = client.get("/api/v1/me/paycode", headers=auth(app, world.resident_user))
    body = r.get_json()
    assert r.headers["Cache-Control"] == "no-store"
    assert body["token"].startswith("PSP1") and len(body["token"]) == PAYCODE.token_length
    assert body["valid_seconds"] == 60
    with app.app_context():
        from pointsvc.codes import parse_code

        assert parse_code(body["token"], expected=PAYCODE)["resident_id"] == world.resident
    assert client.get("/api/v1/me/paycode", headers=auth(app, world.shop_operator)
                      ).status_code == 403


@pytest.mark.parametrize("extension", ["png", "svg"])
def test_pay_code_images(app, client, world, extension):
    r = client.get(f"/api/v1/me/paycode?format={extension}", headers=auth(app, world.resident_user))
    assert r.status_code == 200
    token = r.headers["X-Pay-Code"]
    if extension == "png":
        assert r.mimetype == "image/png"
        assert decode_png(r.data) == [token]
        fund(app, world.resident, 5)
        assert redeem(client, app, world.shop_operator, token, points=5).status_code == 201
    else:
        assert r.mimetype == "image/svg+xml" and b"<svg" in r.data[:300]


def test_pay_code_used_twice_is_already_used(app, client, world):
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)
    assert redeem(client, app, world.shop_operator, code, points=5).status_code == 201
    for operator in (world.shop_operator, world.partner_operator):
        r = redeem(client, app, operator, code, points=5)
        assert r.status_code == 409 and r.get_json()["code"] == "already_used"
    assert balance(app, world.resident) == (95, 0)


def test_pay_code_after_60_seconds_is_expired(app, client, world):
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)
    world.clock.advance(seconds=59)
    fresh = paycode(client, app, world.resident_user)
    world.clock.advance(seconds=2)
    r = redeem(client, app, world.shop_operator, code, points=5)
    assert r.status_code == 410 and r.get_json()["code"] == "expired"
    assert redeem(client, app, world.shop_operator, fresh, points=5).status_code == 201


def test_pay_code_after_a_failed_attempt_is_already_used(app, client, world):
    fund(app, world.resident, 100)
    offer = client.post(f"/api/v1/merchants/{world.shop}/offers",
                        json={"title": "限量", "points_price": 10, "stock": 0},
                        headers=auth(app, world.shop_operator)).get_json()
    code = paycode(client, app, world.resident_user)
    r = redeem(client, app, world.shop_operator, code, offer_id=offer["id"])
    assert r.get_json()["code"] == "out_of_stock"
    r = redeem(client, app, world.shop_operator, code, points=5)
    assert r.status_code == 409 and r.get_json()["code"] == "already_used"
    assert balance(app, world.resident) == (100, 0)


def test_other_code_types_used_as_a_pay_code_are_wrong_type(app, client, world):
    with app.app_context():
        checkin = issue_code(CHECKIN, event_id=1, direction=0, step=1)
        card = issue_code(CARD, resident_id=world.resident, serial=1)
        merchant = issue_code(MERCHANT, merchant_id=world.shop, version=1)
    for text in (checkin, card, merchant):
        r = redeem(client, app, world.shop_operator, text, points=1)
        assert r.status_code == 422 and r.get_json()["code"] == "wrong_type", text


def _flip(token: str, index: int) -> str:
    """Change one character of the base32 payload to another base32 character."""
    char = token[index]
    replacement = "A" if char != "A" else "B"
    return token[:index] + replacement + token[index + 1:]


def test_forged_and_damaged_pay_codes_are_invalid_never_500(app, client, world):
    fund(app, world.resident, 100)
    code = paycode(client, app, world.resident_user)
    forged = envelope.issue(PAYCODE, mac_key=b"x" * 32,
                            signing_key=Ed25519PrivateKey.generate(),
                            resident_id=world.resident, nonce=b"\x00" * 6, step=1)
    candidates = [forged, "", "PSP1", "hello", code[:-1], code + "A", code.lower()[:4] + "!!",
                  "PSX1" + code[4:], "https://evil.example/P/" + code, "A" * 401]
    candidates += [_flip(code, i) for i in range(4, len(code), 5)]
    for text in candidates:
        r = redeem(client, app, world.shop_operator, text, points=1)
        assert r.status_code in (409, 422), (text, r.status_code)
        assert r.get_json()["code"] in ("invalid", "validation_failed"), (text, r.get_json())
    # a genuine MAC over a nonce that was never issued
    with app.app_context():
        unissued = issue_code(PAYCODE, resident_id=world.resident, nonce=b"\x01" * 6, step=1)
    r = redeem(client, app, world.shop_operator, unissued, points=1)
    assert r.get_json()["code"] == "invalid"
    # the genuine code was never consumed by any of that
    assert redeem(client, app, world.shop_operator, code, points=1).status_code == 201


# --- merchant codes -----------------------------------------------------------------------


def merchant_code(client, app, user, merchant_id):
    r = client.get(f"/api/v1/merchants/{merchant_id}/code", headers=auth(app, user))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_merchant_code_png_decodes_to_the_link(app, client, world):
    code = merchant_code(client, app, world.shop_operator, world.shop)
    assert code["link"] == f"HTTPS://POINTS.EXAMPLE.CN/M/{code['token']}"
    assert code["version"] == 1
    r = client.get(f"/api/v1/merchants/{world.shop}/code?format=png",
                   headers=auth(app, world.shop_operator))
    assert r.mimetype == "image/png"
    assert decode_png(r.data) == [code["link"]]
    r = client.get(f"/api/v1/merchants/{world.shop}/code?format=svg",
                   headers=auth(app, world.admin))
    assert r.mimetype == "image/svg+xml"
    # another merchant's operator and staff elsewhere may not print it
    for user in (world.shop_b_operator, world.organizer_b):
        assert client.get(f"/api/v1/merchants/{world.shop}/code?format=png",
                          headers=auth(app, user)).status_code == 403


def test_resident_pays_with_the_token_or_the_whole_link(app, client, world):
    fund(app, world.resident, 100)
    code = merchant_code(client, app, world.shop_operator, world.shop)
    for text in (code["token"], code["link"], code["link"].lower().replace(
            code["token"].lower(), code["token"])):
        r = pay(client, app, world.resident_user, text, points=10)
        assert r.status_code == 201, r.get_json()
        body = r.get_json()
        assert body["merchant"] == {"id": world.shop, "name": "甲社区积分超市"}
        assert body["channel"] == "merchant_code"
    assert balance(app, world.resident) == (70, 0)
    # the same code keeps working: the payment, not the code, is the credential
    key = new_key()
    first = pay(client, app, world.resident_user, code["token"], key=key, points=1)
    assert pay(client, app, world.resident_user, code["token"], key=key,
               points=1).get_json() == first.get_json()


def test_reissued_merchant_code_revokes_the_old_sticker(app, client, world):
    fund(app, world.resident, 100)
    old = merchant_code(client, app, world.shop_operator, world.shop)
    r = client.post(f"/api/v1/merchants/{world.shop}/code/reissue",
                    headers=auth(app, world.shop_operator))
    assert r.status_code == 201 and r.get_json()["version"] == 2
    new = r.get_json()
    r = pay(client, app, world.resident_user, old["link"], points=5)
    assert r.status_code == 410 and r.get_json()["code"] == "revoked"
    assert pay(client, app, world.resident_user, new["link"], points=5).status_code == 201
    with app.app_context():
        future = issue_code(MERCHANT, merchant_id=world.shop, version=9)
    r = pay(client, app, world.resident_user, future, points=5)
    assert r.status_code == 422 and r.get_json()["code"] == "invalid"
    assert client.post(f"/api/v1/merchants/{world.shop}/code/reissue",
                       headers=auth(app, world.partner_operator)).status_code == 403
    assert client.post(f"/api/v1/merchants/{world.shop}/code/reissue",
                       headers=auth(app, world.organizer_a)).status_code == 201


def test_forged_or_wrong_merchant_codes(app, client, world):
    fund(app, world.resident, 100)
    other_key = Ed25519PrivateKey.generate()
    forged = envelope.issue(MERCHANT, mac_key=b"k" * 32, signing_key=other_key,
                            merchant_id=world.shop, version=1)
    good = merchant_code(client, app, world.shop_operator, world.shop)
    payload = good["token"]
    raw = base64.b32decode(payload[4:] + "=" * (-len(payload[4:]) % 8))
    flipped = bytearray(raw)
    flipped[1] ^= 0x01  # another merchant id, same signature
    tampered = "PSM1" + base64.b32encode(bytes(flipped)).decode().rstrip("=")
    with app.app_context():
        a_pay_code = issue_code(PAYCODE, resident_id=world.resident, nonce=b"\x02" * 6, step=1)
    cases = {forged: "invalid", tampered: "invalid", a_pay_code: "wrong_type",
             f"HTTPS://EVIL.EXAMPLE.CN/M/{payload}": "invalid",
             f"HTTPS://POINTS.EXAMPLE.CN/K/{payload}": "invalid", "M/123": "invalid"}
    for text, reason in cases.items():
        r = pay(client, app, world.resident_user, text, points=1)
        assert r.status_code in (410, 422), text
        assert r.get_json()["code"] == reason, (text, r.get_json())
    assert balance(app, world.resident) == (100, 0)
