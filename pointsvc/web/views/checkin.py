"""/K/<token>: an event's check-in (or check-out) link, opened by a resident's phone camera.

Opening it records the scan (DESIGN.md §4: the link completes the action for a signed-in
resident, or asks them to sign in first and then completes it) and says what happened in
plain words. It is a GET because a camera opens links with GET; what makes a check-in
genuine is the code itself, which rotates every 30 s on the event's screen — not the
request method. A repeat says "already checked in at …" and records nothing new.
"""

from __future__ import annotations

import secrets

from flask import current_app, render_template
from flask_babel import lazy_gettext as _l

from ...errors import DomainError
from ...events import service as events
from ...security.authz import current_principal
from ..session import login_required
from . import bp

# Reason codes of refused scans (events.service.REASON_STATUS), in plain words.
WHY_NOT = {
    "expired": _l("The code on the screen has changed since. Scan it again."),
    "not_yet_valid": _l("This code is not valid yet. Check your phone's clock and scan again."),
    "invalid": _l("This is not a valid check-in code."),
    "wrong_type": _l("This is not a check-in code."),
    "wrong_event": _l("This code belongs to another event."),
    "revoked": _l("This code has been replaced."),
    "not_checked_in": _l("You have not checked in to this event, so you cannot check out."),
    "outside_geofence": _l("You seem to be too far from the event."),
    "event_closed": _l("This event is over; check-in has closed."),
    "not_signed_up": _l("This event is for residents who signed up."),
    "overlapping_event": _l("You are checked in at another event at the same time."),
    "rate_limited": _l("Too many scans. Wait a minute and try again."),
    "nonce_reused": _l("This scan was already sent. Scan the screen again."),
    "not_in_scope": _l("This event is not open to residents of your community."),
    "forbidden": _l("This event is not open to residents of your community."),
    "not_found": _l("This event no longer exists."),
}


def _now():  # type: ignore[no-untyped-def]
    """The events clock the API routes read (tests set EVENTS_CLOCK)."""
    override = current_app.config.get("EVENTS_CLOCK")
    return override() if override else None


@bp.get("/K/<token>")
@login_required("resident.self")
def checkin_link(token: str):
    principal = current_principal()
    # The server is the client here: a fresh nonce per opening (the unique scan per
    # resident, event, direction and 30-s step still stops a double check-in).
    item = {"code": token, "nonce": "web-" + secrets.token_hex(12), "scanned_at": None}
    try:
        outcome = events.resident_checkin(
            resident_id=principal.resident_id, community_path=principal.community_path,
            user_id=principal.user_id, item=item, now=_now())
    except DomainError as err:
        from ...extensions import db

        db.session.rollback()
        why = WHY_NOT.get(err.code)
        return render_template("web/checkin.html", ok=False, code=err.code,
                               why=str(why) if why else None), err.status
    event = events.get_event(event_id=outcome.body["event_id"])
    return render_template("web/checkin.html", ok=True, event=event, scan=outcome.body,
                           duplicate=outcome.duplicate), (200 if outcome.duplicate else 201)
