"""The code envelope: round trips, strict parsing, forgery, QR size and real decoding."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pointsvc.codes import envelope
from pointsvc.codes.envelope import CARD, CHECKIN, MERCHANT, PAYCODE, CodeError
from pointsvc.codes.render import png, qr_version, svg

MAC_KEY = b"k" * 32
SIGNING = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HOST = "POINTS.EXAMPLE.CN"
SAMPLES = {
    CHECKIN: {"event_id": 123456, "direction": 1, "step": 59_000_000},
    CARD: {"resident_id": 987654321, "serial": 3},
    PAYCODE: {"resident_id": 987654321, "nonce": b"\x01\x02\x03\x04\x05\x06", "step": 59_000_000},
    MERCHANT: {"merchant_id": 4242, "version": 2},
}


def make(code_type):
    return envelope.issue(code_type, mac_key=MAC_KEY, signing_key=SIGNING,
                          **SAMPLES[code_type])


def parse(text, expected):
    return envelope.parse(text, expected=expected, mac_key=MAC_KEY,
                          public_key=SIGNING.public_key(), public_host=HOST)


@pytest.mark.parametrize("code_type", list(SAMPLES))
def test_round_trip_and_length(code_type):
    token = make(code_type)
    assert len(token) == code_type.token_length
    assert token.startswith(code_type.prefix) and token == token.upper()
    fields = parse(token, code_type)
    assert {k: fields[k] for k in SAMPLES[code_type]} == SAMPLES[code_type]


@pytest.mark.parametrize("code_type,limit", [(CHECKIN, 4), (CARD, 6), (PAYCODE, 3),
                                             (MERCHANT, 6)])
def test_qr_versions_stay_within_design(code_type, limit):
    token = make(code_type)
    text = envelope.link(code_type, token, public_host=HOST) if code_type.link_path else token
    assert qr_version(text) <= limit


@pytest.mark.parametrize("code_type", list(SAMPLES))
def test_png_decodes_to_the_exact_text(code_type):
    token = make(code_type)
    text = envelope.link(code_type, token, public_host=HOST) if code_type.link_path else token
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png(text))))
    assert [r.text for r in results] == [text]
    assert svg(text).startswith(b"<?xml") or b"<svg" in svg(text)[:200]


def test_links_are_accepted_case_insensitively_and_only_on_our_host():
    token = make(CHECKIN)
    link = envelope.link(CHECKIN, token, public_host=HOST)
    assert parse(link, CHECKIN)["event_id"] == 123456
    assert parse(link.lower().replace(token.lower(), token), CHECKIN)["step"] == 59_000_000
    with pytest.raises(CodeError) as err:
        parse(f"HTTPS://EVIL.EXAMPLE/K/{token}", CHECKIN)
    assert err.value.reason == "invalid"
    with pytest.raises(CodeError):
        parse(f"HTTPS://{HOST}/M/{token}", CHECKIN)


@pytest.mark.parametrize("given_type", list(SAMPLES))
@pytest.mark.parametrize("expected", list(SAMPLES))
def test_wrong_type_is_named(given_type, expected):
    token = make(given_type)
    if given_type is expected:
        return
    with pytest.raises(CodeError) as err:
        parse(token, expected)
    assert err.value.reason == "wrong_type"


@pytest.mark.parametrize("code_type", list(SAMPLES))
def test_forgery_with_another_key_is_invalid(code_type):
    forged = envelope.issue(code_type, mac_key=b"x" * 32,
                            signing_key=Ed25519PrivateKey.generate(), **SAMPLES[code_type])
    with pytest.raises(CodeError) as err:
        parse(forged, code_type)
    assert err.value.reason == "invalid"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(SAMPLES)), st.data())
def test_any_mutation_is_rejected_cleanly(code_type, data):
    token = make(code_type)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abc01!/ "))
    mutated = token[:position] + replacement + token[position + 1:]
    cut = data.draw(st.integers(min_value=0, max_value=len(token)))
    for candidate in (mutated, token[:cut], token + "A"):
        if candidate.upper() == token:
            continue
        with pytest.raises(CodeError) as err:
            parse(candidate, code_type)
        assert err.value.reason in {"invalid", "wrong_type"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_random_text_never_crashes(text):
    with pytest.raises(CodeError):
        parse(text, CHECKIN)
