"""Events API: events, sign-ups, check-in codes, scans, attendance, cards, service record;
and the kiosk page (server-rendered HTML outside /api, opened by a kiosk link)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import current_app, jsonify, make_response, render_template, request
from flask.views import MethodView
from flask_smorest import Blueprint

from ..codes import render
from ..errors import Forbidden
from ..ledger import idempotency
from ..ledger.awards import get_resident
from ..security.authz import (
    AUTHENTICATED,
    PUBLIC,
    current_principal,
    node_path_of,
    policy,
    require_scope,
)
from . import service
from .schemas import (
    AttendanceOut,
    BatchOut,
    CardBatchIn,
    CardOut,
    CardScanIn,
    CheckinBatchIn,
    CheckinCodeOut,
    CheckinIn,
    CodeArgs,
    EventIn,
    EventListArgs,
    EventOut,
    EventPage,
    EventPatch,
    FormatArgs,
    ImageArgs,
    KioskLinkOut,
    LineOut,
    LinePatch,
    RosterOut,
    ScanOut,
    ServiceRecordOut,
    SignupOut,
    StaffSignupIn,
    SummaryOut,
)

blp = Blueprint("events", __name__, url_prefix="/api/v1",
                description="Events, sign-ups, check-in codes, attendance and service hours")
kiosk_bp = FlaskBlueprint("events_kiosk", __name__, template_folder="templates",
                          static_folder="static", static_url_path="/events/static")

IDEMPOTENCY_DOC = [{"in": "header", "name": "Idempotency-Key", "required": True,
                    "schema": {"type": "string", "maxLength": 128}}]
IMAGE_DOC = {"200": {"description": "JSON, or the QR code with format=png or svg",
                     "content": {"image/png": {}, "image/svg+xml": {}}}}
CSV_DOC = {"200": {"description": "JSON, or CSV (UTF-8 with BOM) with format=csv",
                   "content": {"text/csv": {}}}}


def _now() -> datetime | None:
    """The service's clock; tests put a callable under EVENTS_CLOCK instead of sleeping."""
    override = current_app.config.get("EVENTS_CLOCK")
    return override() if override else None


def _staff_event(event_id: int, action: str):  # type: ignore[no-untyped-def]
    """The event, if the caller holds `action` on its node (else 403 not_in_scope)."""
    event = service.get_event(event_id=event_id)
    require_scope(action, service.event_path(event))
    return event


def _image(text: str, extension: str, *, rotating: bool = False):  # type: ignore[no-untyped-def]
    """The QR image; a rotating (check-in) code is drawn with a fixed mask, much faster."""
    if extension == "png":
        response = make_response(render.png_rotating(text) if rotating else render.png(text))
        response.mimetype = "image/png"
    else:
        mask = render.ROTATING_MASK if rotating else None
        response = make_response(render.svg(text, mask_pattern=mask))
        response.mimetype = "image/svg+xml"
    response.headers["Cache-Control"] = "no-store"
    return response


def _csv(data: bytes, filename: str):  # type: ignore[no-untyped-def]
    response = make_response(data)
    response.mimetype = "text/csv"
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _scan_response(outcome: service.ScanOutcome):  # type: ignore[no-untyped-def]
    """201 for a new scan; 200 with duplicate: true for a repeat of one."""
    return make_response(jsonify(outcome.body), 200 if outcome.duplicate else 201)


def _batch_response(results: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    counts = {status: sum(1 for r in results if r["status"] == status)
              for status in ("accepted", "duplicate", "rejected")}
    return {"results": results, "accepted": counts["accepted"],
            "duplicates": counts["duplicate"], "rejected": counts["rejected"]}


def _once(fingerprint_body: Any, work):  # type: ignore[no-untyped-def]
    return idempotency.respond_once(scope=f"user:{current_principal().user_id}",
                                    fingerprint_body=fingerprint_body, work=work)


# --- events -------------------------------------------------------------------------------


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(EventListArgs, location="query")
    @blp.response(200, EventPage)
    @policy(AUTHENTICATED)
    def get(self, args):
        """Staff: events in their scope (any status). Residents: published events of their
        community and above (upcoming=false includes past ones)."""
        principal = current_principal()
        scope = principal.scope_paths("events.read")
        if scope:
            items, cursor = service.events_in_scope(scope_paths=scope, status=args["status"],
                                                    limit=args["limit"], cursor=args["cursor"])
        elif principal.community_path:
            items, cursor = service.events_for_resident(
                community_path=principal.community_path, limit=args["limit"],
                cursor=args["cursor"], upcoming_only=args["upcoming"], now=_now())
        else:
            items, cursor = [], None
        return {"items": items, "next_cursor": cursor}

    @blp.arguments(EventIn)
    @blp.response(201, EventOut)
    @policy("events.manage")
    def post(self, body):
        """Create a draft event on a node in scope, paid by a rule in force there."""
        node_id = body.pop("org_node_id")
        require_scope("events.manage", node_path_of(node_id))
        event = service.create_event(org_node_id=node_id, values=body,
                                     actor_user_id=current_principal().user_id)
        return service.event_json(event)


@blp.route("/events/<int:event_id>")
class EventItem(MethodView):
    @blp.response(200, EventOut)
    @policy(AUTHENTICATED)
    def get(self, event_id):
        """An event: staff in scope; residents if it is published on their branch (with
        their own sign-up)."""
        event = service.get_event(event_id=event_id)
        principal = current_principal()
        if principal.covers("events.read", service.event_path(event)):
            return service.event_json(event, inside=service.inside_count(event_id=event_id))
        if event.status != "draft" and service.on_branch(
                event=event, community_path=principal.community_path):
            signup = service.signup_of(event_id=event_id, resident_id=principal.resident_id)
            return service.event_json(event, signup=service.signup_json(signup))
        raise Forbidden("not_in_scope", "this event belongs to another part of the organisation")

    @blp.arguments(EventPatch)
    @blp.response(200, EventOut)
    @policy("events.manage")
    def patch(self, body, event_id):
        """Edit a draft or published event (more capacity promotes from the wait-list)."""
        _staff_event(event_id, "events.manage")
        return service.event_json(service.update_event(
            event_id=event_id, changes=body, actor_user_id=current_principal().user_id,
            now=_now()))


@blp.route("/events/<int:event_id>/publish")
class EventPublish(MethodView):
    @blp.response(200, EventOut)
    @policy("events.manage")
    def post(self, event_id):
        """Open the event for sign-up and check-in."""
        _staff_event(event_id, "events.manage")
        return service.event_json(service.publish_event(
            event_id=event_id, actor_user_id=current_principal().user_id))


@blp.route("/events/<int:event_id>/cancel")
class EventCancel(MethodView):
    @blp.response(200, EventOut)
    @policy("events.manage")
    def post(self, event_id):
        """Call the event off (nothing is posted)."""
        _staff_event(event_id, "events.manage")
        return service.event_json(service.cancel_event(
            event_id=event_id, actor_user_id=current_principal().user_id))


@blp.route("/events/<int:event_id>/close")
class EventClose(MethodView):
    @blp.response(200, SummaryOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("events.manage")
    def post(self, event_id):
        """Close: compute attendance and post points (or wait for approval); once."""
        _staff_event(event_id, "events.manage")
        actor, now = current_principal().user_id, _now()
        return _once({"event_id": event_id, "action": "close"},
                     lambda: service.close_event(event_id=event_id, actor_user_id=actor,
                                                 now=now))


# --- sign-ups -----------------------------------------------------------------------------


@blp.route("/events/<int:event_id>/signup")
class MySignup(MethodView):
    @blp.response(201, SignupOut)
    @policy("resident.self")
    def post(self, event_id):
        """Sign up: a place if one is free, else the wait-list (201; a repeat is 200)."""
        principal = current_principal()
        event = service.get_event(event_id=event_id)
        if not service.on_branch(event=event, community_path=principal.community_path):
            raise Forbidden("not_in_scope", "this event is not open to your community")
        status, body = service.signup(event_id=event_id, resident_id=principal.resident_id,
                                      actor_user_id=principal.user_id, now=_now())
        return make_response(jsonify(body), status)

    @blp.response(200, SignupOut)
    @policy("resident.self")
    def delete(self, event_id):
        """Cancel a sign-up: the first on the wait-list gets the place."""
        principal = current_principal()
        service.get_event(event_id=event_id)
        return service.cancel_signup(event_id=event_id, resident_id=principal.resident_id,
                                     actor_user_id=principal.user_id, now=_now())


@blp.route("/events/<int:event_id>/signups")
class StaffSignups(MethodView):
    @blp.arguments(StaffSignupIn)
    @blp.response(201, SignupOut)
    @policy("events.manage")
    def post(self, body, event_id):
        """Sign a resident up on their behalf (a resident without a smartphone)."""
        event = _staff_event(event_id, "events.manage")
        resident = get_resident(resident_id=body["resident_id"])
        if not service.on_branch(event=event, community_path=node_path_of(
                resident.community_id)):
            raise Forbidden("not_in_scope", "this event is not open to the resident's community")
        status, result = service.signup(event_id=event_id, resident_id=resident.id,
                                        actor_user_id=current_principal().user_id, now=_now())
        return make_response(jsonify(result), status)


@blp.route("/events/<int:event_id>/signups/<int:resident_id>")
class StaffSignupItem(MethodView):
    @blp.response(200, SignupOut)
    @policy("events.manage")
    def delete(self, event_id, resident_id):
        """Cancel a resident's sign-up."""
        _staff_event(event_id, "events.manage")
        return service.cancel_signup(event_id=event_id, resident_id=resident_id,
                                     actor_user_id=current_principal().user_id, now=_now())


@blp.route("/events/<int:event_id>/roster")
class Roster(MethodView):
    @blp.arguments(FormatArgs, location="query")
    @blp.response(200, RosterOut)
    @blp.doc(responses=CSV_DOC)
    @policy("events.read")
    def get(self, args, event_id):
        """Sign-ups: confirmed places, then the wait-list in order (format=csv to export)."""
        _staff_event(event_id, "events.read")
        items = service.roster(event_id=event_id)
        if args["format"] == "csv":
            return _csv(service.to_csv(items, service.ROSTER_COLUMNS),
                        f"event-{event_id}-roster.csv")
        return {"items": items}


# --- codes and kiosk links ----------------------------------------------------------------


@blp.route("/events/<int:event_id>/checkin-code")
class CheckinCode(MethodView):
    @blp.arguments(CodeArgs, location="query")
    @blp.response(200, CheckinCodeOut)
    @blp.doc(responses=IMAGE_DOC)
    @policy("events.manage")
    def get(self, args, event_id):
        """The current rotating code (30-s step, accepted ±1 step) and its link; format=png
        or svg gives the QR image of the link."""
        _staff_event(event_id, "events.manage")
        code = service.checkin_code(event_id=event_id, direction=args["direction"], now=_now())
        if args["format"] == "json":
            response = make_response(jsonify(code))
            response.headers["Cache-Control"] = "no-store"
            return response
        response = _image(code["url"], args["format"], rotating=True)
        response.headers["X-Checkin-Code-Expires"] = code["expires_at"]
        return response


@blp.route("/events/<int:event_id>/kiosk-links")
class KioskLinks(MethodView):
    @blp.response(201, KioskLinkOut)
    @policy("events.manage")
    def post(self, event_id):
        """A link that opens this event's kiosk page on a screen (valid 24 h, this event
        only); the token is shown once."""
        _staff_event(event_id, "events.manage")
        link = service.create_kiosk_link(event_id=event_id,
                                         actor_user_id=current_principal().user_id, now=_now())
        link["url"] = request.host_url.rstrip("/") + link["path"]
        return link


@blp.route("/events/<int:event_id>/kiosk-links/<int:link_id>/revoke")
class KioskLinkRevoke(MethodView):
    @blp.response(204)
    @policy("events.manage")
    def post(self, event_id, link_id):
        """Stop a kiosk link working."""
        _staff_event(event_id, "events.manage")
        service.revoke_kiosk_link(event_id=event_id, link_id=link_id,
                                  actor_user_id=current_principal().user_id)
        return ""


# --- check-in -----------------------------------------------------------------------------


@blp.route("/checkins")
class Checkins(MethodView):
    @blp.arguments(CheckinIn)
    @blp.response(201, ScanOut)
    @policy("resident.self")
    def post(self, body):
        """A resident scanned the event's code (token or whole link): 201, or 200 with
        duplicate: true for a repeat; refusals carry a reason code."""
        principal = current_principal()
        return _scan_response(service.resident_checkin(
            resident_id=principal.resident_id, community_path=principal.community_path,
            user_id=principal.user_id, item=body, now=_now()))


@blp.route("/checkins/batch")
class CheckinBatch(MethodView):
    @blp.arguments(CheckinBatchIn)
    @blp.response(200, BatchOut)
    @policy("resident.self")
    def post(self, body):
        """Scans queued while offline (≤ 24 h old, any order, duplicates allowed): a result
        per item."""
        principal = current_principal()
        return _batch_response(service.resident_batch(
            resident_id=principal.resident_id, community_path=principal.community_path,
            user_id=principal.user_id, items=body["items"], sent_at=body["sent_at"],
            now=_now()))


@blp.route("/events/<int:event_id>/attendance/scans")
class CardScans(MethodView):
    @blp.arguments(CardScanIn)
    @blp.response(201, ScanOut)
    @policy("events.scan")
    def post(self, body, event_id):
        """Staff at the event scanned a resident's card."""
        _staff_event(event_id, "events.scan")
        return _scan_response(service.card_checkin(
            event_id=event_id, user_id=current_principal().user_id, item=body, now=_now()))


@blp.route("/events/<int:event_id>/attendance/scans/batch")
class CardScanBatch(MethodView):
    @blp.arguments(CardBatchIn)
    @blp.response(200, BatchOut)
    @policy("events.scan")
    def post(self, body, event_id):
        """Card scans a staff device queued offline."""
        _staff_event(event_id, "events.scan")
        return _batch_response(service.card_batch(
            event_id=event_id, user_id=current_principal().user_id, items=body["items"],
            sent_at=body["sent_at"], now=_now()))


# --- attendance and approval --------------------------------------------------------------


@blp.route("/events/<int:event_id>/attendance")
class Attendance(MethodView):
    @blp.arguments(FormatArgs, location="query")
    @blp.response(200, AttendanceOut)
    @blp.doc(responses=CSV_DOC)
    @policy("events.read")
    def get(self, args, event_id):
        """Attendance lines (a live preview before close); format=csv to export."""
        event = _staff_event(event_id, "events.read")
        items = service.attendance_lines(event=event, now=_now())
        if args["format"] == "csv":
            return _csv(service.to_csv(items, service.ATTENDANCE_COLUMNS),
                        f"event-{event_id}-attendance.csv")
        return {"items": items}


@blp.route("/events/<int:event_id>/attendance/<int:resident_id>")
class AttendanceLineItem(MethodView):
    @blp.arguments(LinePatch)
    @blp.response(200, LineOut)
    @policy("events.approve")
    def patch(self, body, event_id, resident_id):
        """Before approval: adjust a line's minutes or reject it, with a reason (logged)."""
        _staff_event(event_id, "events.approve")
        return service.adjust_line(event_id=event_id, resident_id=resident_id,
                                   minutes=body["minutes"], reject=body["rejected"],
                                   reason=body["reason"],
                                   actor_user_id=current_principal().user_id)


@blp.route("/events/<int:event_id>/attendance/approve")
class AttendanceApprove(MethodView):
    @blp.response(200, SummaryOut)
    @blp.doc(parameters=IDEMPOTENCY_DOC)
    @policy("events.approve")
    def post(self, event_id):
        """Approve the attendance list: post every pending line; once."""
        _staff_event(event_id, "events.approve")
        actor, now = current_principal().user_id, _now()
        return _once({"event_id": event_id, "action": "approve"},
                     lambda: service.approve_attendance(event_id=event_id,
                                                        actor_user_id=actor, now=now))


# --- residents: service record and card ---------------------------------------------------


@blp.route("/me/service-record")
class MyServiceRecord(MethodView):
    @blp.response(200, ServiceRecordOut)
    @policy("resident.self")
    def get(self):
        """Recorded service: each event, minutes and hours, points; totals and star level."""
        return service.service_record(resident_id=current_principal().resident_id)


def _card_response(card: dict[str, Any], extension: str):  # type: ignore[no-untyped-def]
    if extension == "json":
        return card
    response = _image(card["code"], extension)
    response.headers["X-Card-Serial"] = str(card["serial"])
    return response


@blp.route("/me/card")
class MyCard(MethodView):
    @blp.arguments(ImageArgs, location="query")
    @blp.response(200, CardOut)
    @blp.doc(responses=IMAGE_DOC)
    @policy("resident.self")
    def get(self, args):
        """The resident's card code (Ed25519, checkable offline with /api/v1/keys);
        format=png|svg to print it."""
        return _card_response(service.card_for(resident_id=current_principal().resident_id),
                              args["format"])


@blp.route("/residents/<int:resident_id>/card")
class ResidentCard(MethodView):
    @blp.arguments(ImageArgs, location="query")
    @blp.response(200, CardOut)
    @blp.doc(responses=IMAGE_DOC)
    @policy("people.manage")
    def get(self, args, resident_id):
        """A resident's current card, for staff to print."""
        resident = get_resident(resident_id=resident_id)
        require_scope("people.manage", node_path_of(resident.community_id))
        return _card_response(service.card_for(resident_id=resident_id), args["format"])


@blp.route("/residents/<int:resident_id>/card/reissue")
class ResidentCardReissue(MethodView):
    @blp.response(201, CardOut)
    @policy("people.manage")
    def post(self, resident_id):
        """Print a new card: the serial goes up and the old card is revoked."""
        resident = get_resident(resident_id=resident_id)
        require_scope("people.manage", node_path_of(resident.community_id))
        return service.reissue_card(resident_id=resident_id,
                                    actor_user_id=current_principal().user_id)


# --- the kiosk page (HTML; the token of a kiosk link, not a login) --------------------------

KIOSK_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _kiosk_headers(response):  # type: ignore[no-untyped-def]
    response.headers["Content-Security-Policy"] = KIOSK_CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _kiosk_event(event_id: int):  # type: ignore[no-untyped-def]
    token = request.headers.get("X-Kiosk-Token") or request.args.get("k")
    return service.check_kiosk(event_id=event_id, token=token, now=_now())


def _direction() -> str:
    return "out" if request.args.get("direction") == "out" else "in"


@kiosk_bp.get("/events/<int:event_id>/kiosk")
@policy(PUBLIC)
def kiosk_page(event_id: int):  # type: ignore[no-untyped-def]
    """The full-screen kiosk: rotating code, event name, live count (JS refreshes it)."""
    event = _kiosk_event(event_id)
    html = render_template("events/kiosk.html", event=event)
    return _kiosk_headers(make_response(html))


@kiosk_bp.get("/events/<int:event_id>/kiosk/state")
@policy(PUBLIC)
def kiosk_state(event_id: int):  # type: ignore[no-untyped-def]
    """The kiosk's poll: current code link, when to refresh, people inside."""
    event = _kiosk_event(event_id)
    return _kiosk_headers(make_response(jsonify(
        service.kiosk_state(event=event, direction=_direction(), now=_now()))))


@kiosk_bp.get("/events/<int:event_id>/kiosk/code.<any(png, svg):extension>")
@policy(PUBLIC)
def kiosk_code(event_id: int, extension: str):  # type: ignore[no-untyped-def]
    """The current code as PNG (what the page shows: ~1 ms to draw) or SVG."""
    event = _kiosk_event(event_id)
    code = service.checkin_code(event_id=event.id, direction=_direction(), now=_now())
    return _kiosk_headers(_image(code["url"], extension, rotating=True))
