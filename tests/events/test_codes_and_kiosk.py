"""Code renditions (decoded by zxing-cpp), QR versions, fuzzed codes, the kiosk page."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pointsvc.codes import CARD, CHECKIN, render
from pointsvc.events.service import REASONS
from tests.events.conftest import START, checkin, code_of, make_event, nonce, scan_card
from tests.factories import auth

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def decode_png(data: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def test_checkin_code_png_and_svg_decode_to_the_link(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    for direction in ("in", "out"):
        code = code_of(client, app, world, event["id"], direction)
        r = client.get(f"/api/v1/events/{event['id']}/checkin-code?direction={direction}"
                       "&format=png", headers=auth(app, world.organizer))
        assert r.mimetype == "image/png" and r.headers["Cache-Control"] == "no-store"
        assert decode_png(r.data) == [code["url"]]
        assert render.qr_version(code["url"]) <= 4  # DESIGN.md §4: check-in link -> version 4
        svg = client.get(f"/api/v1/events/{event['id']}/checkin-code?format=svg",
                         headers=auth(app, world.organizer))
        assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data[:300]
    assert len(code["url"]) <= 80 and code["url"] == code["url"].upper()
    r = client.get(f"/api/v1/events/{event['id']}/checkin-code?format=gif",
                   headers=auth(app, world.organizer))
    assert r.status_code == 422


def test_card_png_decodes_to_the_card_code_within_version_6(app, client, world):
    card = client.get("/api/v1/me/card", headers=auth(app, world.resident_user)).get_json()
    r = client.get("/api/v1/me/card?format=png", headers=auth(app, world.resident_user))
    assert r.mimetype == "image/png" and r.headers["X-Card-Serial"] == "1"
    assert decode_png(r.data) == [card["code"]]
    assert render.qr_version(card["code"]) <= 6
    assert len(card["code"]) == CARD.token_length == 126
    staff = client.get(f"/api/v1/residents/{world.resident}/card?format=png",
                       headers=auth(app, world.organizer))
    assert decode_png(staff.data) == [card["code"]]
    assert client.get(f"/api/v1/residents/{world.resident}/card",
                      headers=auth(app, world.organizer_b)).status_code == 403


def _mutations():
    flips = st.tuples(st.integers(min_value=0, max_value=200), st.sampled_from(BASE32))
    return st.one_of(
        st.tuples(st.just("flip"), flips),
        st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=120)),
        st.tuples(st.just("random"), st.text(max_size=130)),
        st.tuples(st.just("random32"), st.text(alphabet=BASE32, min_size=0, max_size=130)),
        st.tuples(st.just("bytes"), st.binary(max_size=80)),
    )


def _mutate(good: str, mutation) -> str:
    kind, value = mutation
    if kind == "flip":
        index, char = value
        index %= len(good)
        return good[:index] + char + good[index + 1:]
    if kind == "truncate":
        return good[: value % len(good)]
    if kind == "random32":
        return "PSK1" + value
    if kind == "bytes":
        return value.decode("latin-1")
    return value


def test_damaged_or_random_codes_are_always_4xx_never_500(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    good = code_of(client, app, world, event["id"])["url"]
    card = client.get("/api/v1/me/card", headers=auth(app, world.resident_user)).get_json()[
        "code"]
    resident_headers = auth(app, world.resident_user)
    staff_headers = auth(app, world.organizer)

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(mutation=_mutations())
    def check(mutation):
        text = _mutate(good, mutation)
        r = client.post("/api/v1/checkins", headers=resident_headers,
                        json={"code": text, "nonce": nonce(), "scanned_at": START.isoformat()})
        assert 400 <= r.status_code < 500 or (r.status_code in (200, 201) and text == good), (
            text, r.status_code)
        assert r.mimetype in ("application/json", "application/problem+json")
        damaged = _mutate(card, mutation)
        r = client.post(f"/api/v1/events/{event['id']}/attendance/scans", headers=staff_headers,
                        json={"card_code": damaged, "direction": "in", "nonce": nonce(),
                              "scanned_at": START.isoformat()})
        assert 400 <= r.status_code < 500 or (r.status_code in (200, 201) and damaged == card), (
            damaged, r.status_code)

    check()


def test_a_byte_flip_anywhere_in_the_payload_is_invalid(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    good = code_of(client, app, world, event["id"])["code"]
    for index in range(4, len(good)):
        char = "A" if good[index] != "A" else "B"
        text = good[:index] + char + good[index + 1:]
        r = checkin(client, app, world.resident_user, text)
        assert r.status_code == 422 and r.get_json()["code"] == "invalid", index
    assert CHECKIN.token_length == len(good)


# --- kiosk ------------------------------------------------------------------------------------


def kiosk_link(client, app, world, event_id):
    r = client.post(f"/api/v1/events/{event_id}/kiosk-links", headers=auth(app, world.organizer))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_kiosk_page_state_and_code(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world, title="垃圾分类宣传")
    link = kiosk_link(client, app, world, event["id"])
    assert link["url"].endswith(link["path"])
    page = client.get(link["path"])
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "垃圾分类宣传" in html
    # no inline script or style; the JS is a static file of ours, no CDN
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/events/static/kiosk.js" defer>']
    assert "<style" not in html and "http" not in html.split("<body", 1)[1]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    js = client.get("/events/static/kiosk.js")
    assert js.status_code == 200 and b"X-Kiosk-Token" in js.data
    js.close()
    headers = {"X-Kiosk-Token": link["token"]}
    state = client.get(f"/events/{event['id']}/kiosk/state", headers=headers).get_json()
    assert state["title"] == "垃圾分类宣传" and state["inside_count"] == 0
    assert state["url"] == code_of(client, app, world, event["id"])["url"]
    checkin(client, app, world.resident_user, state["url"])
    state = client.get(f"/events/{event['id']}/kiosk/state?direction=out",
                       headers=headers).get_json()
    assert state["inside_count"] == 1 and "/K/PSK1" in state["url"]
    svg = client.get(f"/events/{event['id']}/kiosk/code.svg", headers=headers)
    assert svg.mimetype == "image/svg+xml"
    png = client.get(f"/events/{event['id']}/kiosk/code.png?direction=out", headers=headers)
    assert png.mimetype == "image/png" and decode_png(png.data) == [state["url"]]
    assert client.get(f"/events/{event['id']}/kiosk/code.gif", headers=headers
                      ).status_code == 404
    # the code rotates: 30 s later the kiosk shows another one
    world.clock.advance(seconds=30)
    later = client.get(f"/events/{event['id']}/kiosk/state", headers=headers).get_json()
    assert later["url"] != code_of(client, app, world, event["id"], "out")["url"]
    assert later["step"] == state["step"] + 1


def test_kiosk_link_is_for_its_event_only_and_can_be_revoked(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    other = make_event(client, app, world, title="另一个")
    link = kiosk_link(client, app, world, event["id"])
    for path in (f"/events/{other['id']}/kiosk?k={link['token']}",
                 f"/events/{event['id']}/kiosk?k=wrong-token",
                 f"/events/{event['id']}/kiosk"):
        r = client.get(path)
        assert r.status_code == 403 and r.mimetype == "application/problem+json", path
    assert client.get(f"/events/{other['id']}/kiosk/state",
                      headers={"X-Kiosk-Token": link["token"]}).status_code == 403
    r = client.post(f"/api/v1/events/{event['id']}/kiosk-links/{link['id']}/revoke",
                    headers=auth(app, world.organizer))
    assert r.status_code == 204
    assert client.get(link["path"]).status_code == 403
    fresh = kiosk_link(client, app, world, event["id"])
    world.clock.advance(hours=25)
    assert client.get(fresh["path"]).status_code == 403  # expired
    assert client.post(f"/api/v1/events/{event['id']}/kiosk-links",
                       headers=auth(app, world.organizer_b)).status_code == 403


def test_card_code_typed_by_a_keyboard_scanner_in_lower_case_still_reads(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    card = client.get("/api/v1/me/card", headers=auth(app, world.resident_user)).get_json()
    r = scan_card(client, app, world.organizer, event["id"], " " + card["code"].lower() + "\n")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["resident_id"] == world.resident


def test_rotating_codes_with_the_fixed_mask_decode_at_every_step(app, client, world):
    """30 consecutive steps, both directions (a quarter hour of a kiosk): all readable."""
    from pointsvc.codes import code_link, issue_code

    with app.app_context():
        links = [code_link(CHECKIN, issue_code(CHECKIN, event_id=7, direction=d, step=s))
                 for s in range(60_000_000, 60_000_030) for d in (0, 1)]
    for link in links:
        assert decode_png(render.png_rotating(link)) == [link]
    svg = render.svg(links[0], mask_pattern=render.ROTATING_MASK).decode()
    assert svg.startswith("<?xml") and "<svg" in svg
    # the fast drawing gives the same modules as the library's own drawing
    searched = Image.open(io.BytesIO(render.png(links[0])))
    assert Image.open(io.BytesIO(render.png_rotating(links[0]))).size == searched.size


def test_batches_of_damaged_codes_answer_per_item_never_500(app, client, world):
    world.clock.set(START)
    event = make_event(client, app, world)
    good = code_of(client, app, world, event["id"])["url"]
    headers = auth(app, world.resident_user)

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(mutations=st.lists(_mutations(), min_size=1, max_size=6),
           minutes=st.lists(st.integers(min_value=-2000, max_value=2000), min_size=6,
                            max_size=6))
    def check(mutations, minutes):
        items = [{"code": _mutate(good, m), "nonce": nonce(),
                  "scanned_at": (START + timedelta(minutes=minutes[i])).isoformat()}
                 for i, m in enumerate(mutations)]
        r = client.post("/api/v1/checkins/batch", json={"items": items}, headers=headers)
        if r.status_code == 422:  # a code too long or empty fails the schema: all or nothing
            assert r.get_json()["code"] == "validation_failed"
            return
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        results = r.get_json()["results"]
        assert sorted(item["index"] for item in results) == list(range(len(items)))
        for item in results:
            assert item["status"] in ("accepted", "duplicate", "rejected")
            if item["status"] == "rejected":
                assert item["reason"] in REASONS

    check()
