"""The resident's events: what is on in their community (and above), one event with their
sign-up, signing up and cancelling — the service calls of the /api/v1/events routes."""

from __future__ import annotations

from flask import redirect, render_template, url_for

from ...errors import Forbidden
from ...events import service as events
from ...security.authz import current_principal
from ..session import login_required
from . import bp
from .checkin import _now

PAGE = 50


def _visible(event_id: int):  # type: ignore[no-untyped-def]
    """A published (or past) event on the resident's branch, as GET /api/v1/events/{id}."""
    event = events.get_event(event_id=event_id)
    if event.status == "draft" or not events.on_branch(
            event=event, community_path=current_principal().community_path):
        raise Forbidden("not_in_scope", "this event is not open to your community")
    return event


def _mine(event_id: int) -> dict | None:
    return events.signup_json(events.signup_of(event_id=event_id,
                                               resident_id=current_principal().resident_id))


@bp.get("/wallet/events")
@login_required("resident.self")
def my_events():
    items, _cursor = events.events_for_resident(
        community_path=current_principal().community_path, limit=PAGE, cursor=None,
        upcoming_only=True, now=_now())
    for item in items:
        item["my_signup"] = _mine(item["id"])
    signed = [item for item in items if item["my_signup"]
              and item["my_signup"]["status"] != "cancelled"]
    return render_template("web/wallet/events.html", items=items, signed=signed)


@bp.get("/wallet/events/<int:event_id>")
@login_required("resident.self")
def my_event(event_id: int):
    event = events.event_json(_visible(event_id), signup=_mine(event_id))
    return render_template("web/wallet/event.html", event=event)


@bp.post("/wallet/events/<int:event_id>/signup")
@login_required("resident.self")
def event_signup(event_id: int):
    _visible(event_id)
    principal = current_principal()
    events.signup(event_id=event_id, resident_id=principal.resident_id,
                  actor_user_id=principal.user_id, now=_now())
    return redirect(url_for("web.my_event", event_id=event_id))


@bp.post("/wallet/events/<int:event_id>/cancel")
@login_required("resident.self")
def event_cancel(event_id: int):
    _visible(event_id)
    principal = current_principal()
    events.cancel_signup(event_id=event_id, resident_id=principal.resident_id,
                         actor_user_id=principal.user_id, now=_now())
    return redirect(url_for("web.my_event", event_id=event_id))


@bp.get("/wallet/card")
@login_required("resident.self")
def my_card():
    """The resident card (as GET /api/v1/me/card): staff scan it at events for residents
    without a smartphone; it can be printed."""
    import base64

    from ...codes import render
    from ..session import display_name

    card = events.card_for(resident_id=current_principal().resident_id)
    image = "data:image/svg+xml;base64," + base64.b64encode(render.svg(card["code"])).decode()
    return render_template("web/wallet/card.html", card=card, image=image, name=display_name())
