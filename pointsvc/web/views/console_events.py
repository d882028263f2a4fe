"""The staff console's events: list in scope (paged), create, edit, publish, cancel, kiosk
links (create, revoke), live attendance, close and approve — the service calls of
pointsvc/events/routes.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from ...common import as_utc, utcnow
from ...errors import Conflict, DomainError, ValidationFailed
from ...events import service as events
from ...events.models import CATEGORIES, EVENT_STATUSES, KioskLink
from ...events.schemas import EventIn, EventPatch
from ...extensions import db
from ...ledger import idempotency
from ...ledger import rules as rulebook
from ...orgs.models import OrgNode
from ...security.authz import current_principal, node_path_of, require_scope
from .. import format as fmt
from ..forms import Form, new_form_key
from ..i18n import is_english
from ..labels import event_label
from ..session import login_required
from . import bp
from .checkin import _now

PAGE = 20
CURSOR_MAX = 200
# The form's fields, in the order the page shows them.
TEXT_FIELDS = ("title", "description", "place")
NUMBER_FIELDS = ("capacity", "points_cap")


def _staff_event(event_id: int, action: str):  # type: ignore[no-untyped-def]
    """The event, if the staff member holds `action` on its node (403 otherwise)."""
    event = events.get_event(event_id=event_id)
    require_scope(action, events.event_path(event))
    return event


def _nodes() -> list[OrgNode]:
    """Nodes an event may be created on: those in the staff member's events.manage scope."""
    paths = current_principal().scope_paths("events.manage")
    if not paths:
        return []
    return list(db.session.scalars(
        select(OrgNode).where(or_(*[OrgNode.path.startswith(p, autoescape=True) for p in paths]),
                              OrgNode.level != "grid").order_by(OrgNode.path).limit(200)))


def _rules() -> list:
    """Rules that pay points at the top of the staff member's scope (events need points)."""
    paths = current_principal().scope_paths("events.manage")
    if not paths:
        return []
    return [rule for rule in rulebook.effective_rules(node_path=paths[0])
            if rulebook.is_active(rule) and rule.points > 0]


def _read_event(form: Form, *, new: bool = True) -> dict[str, Any] | None:
    """The form as the API's EventIn body (new) or a whole EventPatch body, or None with the
    field errors set. On an edit an emptied optional field clears it (no limit, no cap)."""
    body: dict[str, Any] = {"category": form.value("category"),
                            "rule_code": form.value("rule_code"),
                            "signup_required": form.value("signup_required") == "1",
                            "approval_required": form.value("approval_required") == "1"}
    if new:
        node = form.integer("org_node_id", maximum=2**62)
        if node is not None:
            body["org_node_id"] = node
    for name in TEXT_FIELDS:
        value = form.text(name, max_length=4000, required=name != "description")
        if value is not None or (not new and name == "description"):
            body[name] = value
    for name in NUMBER_FIELDS:
        number = form.integer(name, maximum=1_000_000, minimum=0 if name == "points_cap" else 1,
                              required=False)
        if number is not None or (not new and name not in form.errors):
            body[name] = number
    for name in ("starts_at", "ends_at"):
        moment = form.moment(name)
        if moment is not None:
            body[name] = moment.isoformat()
    if not form.ok:
        return None
    return form.load(EventIn() if new else EventPatch(), body, _field_message)


def _field_message(name: str, messages: Any) -> str:
    """The API's message for a field, in words of the page's language where we have them."""
    if name in ("category", "rule_code"):
        return _("Choose one.")
    if name == "ends_at":
        return _("The end must be after the start.")
    if name == "radius_m":
        return _("Latitude, longitude and radius go together.")
    text = messages[0] if isinstance(messages, list) and messages else str(messages)
    return _("Please check this field.") + (f" ({text})" if text else "")


def _create_page(form: Form, status: int = 200, event=None):  # type: ignore[no-untyped-def]
    english = is_english()
    nodes, rules = ([] if event else _nodes()), _rules()
    return render_template(
        "web/console/event_new.html", form=form, event=event,
        nodes=([n.id for n in nodes], [n.name_en if english else n.name_zh for n in nodes]),
        rules=([r.code for r in rules], [r.title_en if english else r.title_zh for r in rules]),
        categories=(list(CATEGORIES), [event_label("category", c) for c in CATEGORIES])), status


@bp.get("/console/events")
@login_required("events.read", login_endpoint="web.till_login")
def console_events():
    form = Form(request.args)
    status = form.value("status") or None
    if status is not None and status not in EVENT_STATUSES:
        form.errors["status"] = _("Choose one.")
    cursor = form.text("cursor", max_length=CURSOR_MAX, required=False)
    items: list[dict[str, Any]] = []
    next_cursor = None
    if form.ok:
        try:
            items, next_cursor = events.events_in_scope(
                scope_paths=current_principal().scope_paths("events.read"),
                status=status, limit=PAGE, cursor=cursor)
        except (ValidationFailed, DomainError):
            form.errors["cursor"] = _("This page link is no longer valid. Start again.")
    return render_template("web/console/events.html", items=items, next_cursor=next_cursor,
                           status=status, statuses=EVENT_STATUSES, form=form, first=not cursor,
                           may_manage=current_principal().may("events.manage")), (
        200 if form.ok else 422)


@bp.route("/console/events/new", methods=["GET", "POST"])
@login_required("events.manage", login_endpoint="web.till_login")
def console_event_new():
    if request.method == "GET":
        return _create_page(Form({"signup_required": "1"}))
    form = Form(request.form)
    body = _read_event(form)
    if body is None:
        return _create_page(form, 422)
    node_id = body.pop("org_node_id")
    require_scope("events.manage", node_path_of(node_id))
    try:
        event = events.create_event(org_node_id=node_id, values=body,
                                    actor_user_id=current_principal().user_id)
    except ValidationFailed as err:  # the service's checks: times in order, a paying rule
        db.session.rollback()
        form.add_errors(err.errors, _field_message)
        return _create_page(form, 422)
    except DomainError as err:
        if err.code != "rule_not_found":
            raise
        db.session.rollback()
        form.errors["rule_code"] = _("No such rule here.")
        return _create_page(form, 422)
    return redirect(url_for("web.console_event", event_id=event.id))


def _kiosk_links(event_id: int) -> list[dict[str, Any]]:
    """The event's kiosk links that still work (newest first): when made, until when."""
    now = _now() or utcnow()
    rows = db.session.execute(
        select(KioskLink.id, KioskLink.created_at, KioskLink.expires_at)
        .where(KioskLink.event_id == event_id, KioskLink.revoked_at.is_(None))
        .order_by(KioskLink.id.desc()).limit(50)).all()
    return [{"id": row.id, "created_at": as_utc(row.created_at),
             "expires_at": as_utc(row.expires_at)}
            for row in rows if as_utc(row.expires_at) > now]


def _event_page(event, status: int = 200, **extra):  # type: ignore[no-untyped-def]
    principal = current_principal()
    path = events.event_path(event)
    may_manage = principal.covers("events.manage", path)
    return render_template(
        "web/console/event.html", event=events.event_json(
            event, inside=events.inside_count(event_id=event.id)),
        may_manage=may_manage, links=_kiosk_links(event.id) if may_manage else [],
        may_approve=principal.covers("events.approve", path), key=new_form_key(),
        **extra), status


@bp.get("/console/events/<int:event_id>")
@login_required("events.read", login_endpoint="web.till_login")
def console_event(event_id: int):
    return _event_page(_staff_event(event_id, "events.read"))


@bp.post("/console/events/<int:event_id>/<any(publish, cancel):action>")
@login_required("events.manage", login_endpoint="web.till_login")
def console_event_transition(event_id: int, action: str):
    _staff_event(event_id, "events.manage")
    change = events.publish_event if action == "publish" else events.cancel_event
    change(event_id=event_id, actor_user_id=current_principal().user_id)
    return redirect(url_for("web.console_event", event_id=event_id))


@bp.post("/console/events/<int:event_id>/kiosk-link")
@login_required("events.manage", login_endpoint="web.till_login")
def console_kiosk_link(event_id: int):
    """A kiosk link (as POST /api/v1/events/{id}/kiosk-links): shown once, to open on a
    screen at the event."""
    event = _staff_event(event_id, "events.manage")
    link = events.create_kiosk_link(event_id=event_id,
                                    actor_user_id=current_principal().user_id, now=_now())
    link["url"] = request.host_url.rstrip("/") + link["path"]
    return _event_page(event, 201, kiosk=link)


@bp.post("/console/events/<int:event_id>/kiosk-links/<int:link_id>/revoke")
@login_required("events.manage", login_endpoint="web.till_login")
def console_kiosk_revoke(event_id: int, link_id: int):
    """Stop a kiosk link working (as POST …/kiosk-links/{id}/revoke): a lost screen."""
    _staff_event(event_id, "events.manage")
    events.revoke_kiosk_link(event_id=event_id, link_id=link_id,
                             actor_user_id=current_principal().user_id)
    return redirect(url_for("web.console_event", event_id=event_id))


def _edit_form(event) -> Form:  # type: ignore[no-untyped-def]
    """The edit form filled with the event's values, times in the community's zone."""
    values = {name: "" if getattr(event, name) is None else str(getattr(event, name))
              for name in ("category", "rule_code", *TEXT_FIELDS, *NUMBER_FIELDS)}
    for name in ("starts_at", "ends_at"):
        values[name] = fmt.local_time(getattr(event, name), "yyyy-MM-dd'T'HH:mm")
    for name in ("signup_required", "approval_required"):
        values[name] = "1" if getattr(event, name) else ""
    return Form(values)


def _changes(event, body: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The fields the form changed: the service is told only those (capacity re-checks the
    wait-list, so an unchanged one is left out)."""
    def same(old: Any, new: Any) -> bool:
        if isinstance(old, datetime) and isinstance(new, datetime):
            return as_utc(old) == as_utc(new)
        return old == new

    return {name: value for name, value in body.items() if not same(getattr(event, name), value)}


@bp.route("/console/events/<int:event_id>/edit", methods=["GET", "POST"])
@login_required("events.manage", login_endpoint="web.till_login")
def console_event_edit(event_id: int):
    """Edit a draft or published event (as PATCH /api/v1/events/{id})."""
    event = _staff_event(event_id, "events.manage")
    if event.status not in ("draft", "published"):  # the service's rule, said before typing
        raise Conflict("invalid_state", f"a {event.status} event cannot be edited")
    if request.method == "GET":
        return _create_page(_edit_form(event), event=event)
    form = Form(request.form)
    body = _read_event(form, new=False)
    if body is None:
        return _create_page(form, 422, event=event)
    changes = _changes(event, body)
    if not changes:
        form.errors["_schema"] = _("Nothing was changed.")
        return _create_page(form, 422, event=event)
    try:
        events.update_event(event_id=event_id, changes=changes,
                            actor_user_id=current_principal().user_id, now=_now())
    except ValidationFailed as err:  # the service's checks: times in order, a paying rule
        db.session.rollback()
        form.add_errors(err.errors, _field_message)
        return _create_page(form, 422, event=event)
    except DomainError as err:
        if err.code != "rule_not_found":
            raise
        db.session.rollback()
        form.errors["rule_code"] = _("No such rule here.")
        return _create_page(form, 422, event=event)
    return redirect(url_for("web.console_event", event_id=event_id))


def _once(event_id: int, action: str, work):  # type: ignore[no-untyped-def]
    """Close and approve run once per rendered form (its key), in the API's per-user scope."""
    key = Form(request.form).value("key")
    if not idempotency.KEY_PATTERN.match(key or ""):
        raise DomainError("idempotency_key_required", "the form lost its key", status=400)
    result, _replayed = idempotency.run_once(
        scope=f"user:{current_principal().user_id}", key=key,
        fingerprint=idempotency.request_fingerprint(
            route=f"web:console/events/{action}", body={"event_id": event_id, "action": action}),
        work=work)
    return result.body


@bp.post("/console/events/<int:event_id>/close")
@login_required("events.manage", login_endpoint="web.till_login")
def console_event_close(event_id: int):
    _staff_event(event_id, "events.manage")
    actor, now = current_principal().user_id, _now()
    summary = _once(event_id, "close", lambda: events.close_event(
        event_id=event_id, actor_user_id=actor, now=now))
    return _event_page(events.get_event(event_id=event_id), summary=summary)


@bp.post("/console/events/<int:event_id>/approve")
@login_required("events.approve", login_endpoint="web.till_login")
def console_event_approve(event_id: int):
    _staff_event(event_id, "events.approve")
    actor, now = current_principal().user_id, _now()
    summary = _once(event_id, "approve", lambda: events.approve_attendance(
        event_id=event_id, actor_user_id=actor, now=now))
    return _event_page(events.get_event(event_id=event_id), summary=summary)


@bp.get("/console/events/<int:event_id>/attendance")
@login_required("events.read", login_endpoint="web.till_login")
def console_attendance(event_id: int):
    """Who is in and the lines so far (as GET /api/v1/events/{id}/attendance); the page
    refreshes itself every 15 s while the event is open (a Refresh header, no script)."""
    event = _staff_event(event_id, "events.read")
    lines = events.attendance_lines(event=event, now=_now())
    live = event.status == "published"
    page = render_template("web/console/attendance.html", event=events.event_json(event),
                           lines=lines, inside=events.inside_count(event_id=event_id),
                           live=live, key=new_form_key(),
                           may_approve=current_principal().covers(
                               "events.approve", events.event_path(event)))
    headers = {"Refresh": "15"} if live else {}
    return page, 200, headers
