"""The console's audit search: the filters of GET /api/v1/audit/transactions as a form, keyset
pages, the totals of the filtered set, and the same search exported as CSV or NDJSON through
the service's streamed export (as …/transactions/export)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import render_template, request
from flask_babel import get_timezone
from flask_babel import gettext as _
from sqlalchemy import or_, select

from ...audit.search import service as audit_search
from ...audit.search.schemas import SearchFilters
from ...errors import DomainError, ValidationFailed
from ...extensions import db
from ...ledger.models import TRANSACTION_KINDS
from ...orgs.models import OrgNode
from ...security.authz import current_principal, node_path_of, require_scope
from ..forms import MAX_ID, Form
from ..i18n import is_english
from ..labels import kind_label
from ..session import login_required
from . import bp

PAGE = 20
CURSOR_MAX = 200
# Cursors of the newer pages, carried in the links so "newer" can go back; the oldest are
# dropped past this many (then "newer" leads to the first page).
BACK_MAX = 20
ID_FIELDS = ("node_id", "resident_id", "merchant_id", "actor_id")
TEXT_FIELDS = {"rule": 64, "reference_type": 32, "reference_id": 64}
AMOUNT_MAX = 2**63 - 1
# The filters as they travel in links (page, older/newer, export).
LINK_FIELDS = (*ID_FIELDS, "kind", *TEXT_FIELDS, "min_amount", "max_amount", "from", "to")


def _nodes(action: str) -> list[OrgNode]:
    """Nodes the staff member may search: those under their `action` scope (no grids)."""
    paths = current_principal().scope_paths(action)
    if not paths:
        return []
    return list(db.session.scalars(
        select(OrgNode).where(or_(*[OrgNode.path.startswith(p, autoescape=True) for p in paths]),
                              OrgNode.level != "grid").order_by(OrgNode.path).limit(200)))


def _day(form: Form, name: str, *, end: bool) -> datetime | None:
    """A date typed in the community's zone: its first instant (or the next day's, for `to`)."""
    value = form.value(name)
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        form.errors[name] = _("Enter a date.")
        return None
    if end:
        if day == date.max:
            form.errors[name] = _("Enter a date.")
            return None
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=ZoneInfo(str(get_timezone())))


def _read_filters(form: Form, kinds: list[str]) -> dict[str, Any] | None:
    """The form as the API's SearchFilters, or None with the field errors set."""
    body: dict[str, Any] = {}
    for name in ID_FIELDS:
        number = form.integer(name, maximum=MAX_ID, required=False)
        if number is not None:
            body[name] = number
    for name, length in TEXT_FIELDS.items():
        value = form.text(name, max_length=length, required=False)
        if value is not None:
            body[name] = value
    for name in ("min_amount", "max_amount"):
        number = form.integer(name, maximum=AMOUNT_MAX, minimum=0, required=False)
        if number is not None:
            body[name] = number
    if any(kind not in TRANSACTION_KINDS for kind in kinds):
        form.errors["kind"] = _("Choose one.")
    elif kinds:
        body["kind"] = kinds
    for name in ("from", "to"):
        moment = _day(form, name, end=name == "to")
        if moment is not None:
            body[name] = moment.isoformat()
    if not form.ok:
        return None
    return form.load(SearchFilters(), body, _field_message)


def _field_message(name: str, messages: Any) -> str:
    """The API's message for a field, in words of the page's language where we have them."""
    if name == "min_amount":
        return _("The lowest amount is larger than the highest.")
    if name == "from":
        return _("The first day must not be after the last day.")
    text = messages[0] if isinstance(messages, list) and messages else str(messages)
    return _("Please check this field.") + (f" ({text})" if text else "")


def _roots(action: str, args: dict[str, Any]) -> list[str]:
    """The subtrees searched: the chosen node's (403 outside the scope) or all of the scope."""
    node_id = args.get("node_id")
    if node_id is not None:
        path = node_path_of(node_id)
        require_scope(action, path)
        return [path]
    return current_principal().scope_paths(action)


def _may_read_memos(roots: list[str]) -> bool:
    principal = current_principal()
    return all(principal.covers("ledger.read", root) for root in roots)


def _link_args(form: Form, kinds: list[str]) -> dict[str, Any]:
    """The filters as typed, for the links of this page (empty ones left out)."""
    values: dict[str, Any] = {name: form.value(name) for name in LINK_FIELDS
                              if name != "kind" and form.value(name)}
    if kinds:
        values["kind"] = kinds
    return values


def _page(form: Form, kinds: list[str], status: int, **context):  # type: ignore[no-untyped-def]
    english = is_english()
    principal = current_principal()
    nodes = _nodes("audit.search")
    return render_template(
        "web/console/audit.html", form=form, kinds=kinds,
        nodes=([n.id for n in nodes], [n.name_en if english else n.name_zh for n in nodes]),
        all_kinds=[(kind, kind_label(kind)) for kind in TRANSACTION_KINDS],
        may_export=principal.may("audit.export"), **context), status


@bp.get("/console/audit")
@login_required("audit.search", login_endpoint="web.till_login")
def console_audit():
    form = Form(request.args)
    kinds = request.args.getlist("kind")
    args = _read_filters(form, kinds)
    cursor = form.text("cursor", max_length=CURSOR_MAX, required=False)
    back_raw = form.value("back")
    back = [c for c in back_raw.split(".") if c][-BACK_MAX:] if len(back_raw) < 8000 else []
    if args is None or not form.ok:
        return _page(form, kinds, 422, searched=False)
    roots = _roots("audit.search", args)
    filters = audit_search.Filters.from_args(args)
    try:
        found = audit_search.search(filters=filters, roots=roots, limit=PAGE, cursor=cursor,
                                    with_totals=True, with_memos=_may_read_memos(roots),
                                    english=is_english())
    except (ValidationFailed, DomainError):
        form.errors["cursor"] = _("This page link is no longer valid. Start again.")
        return _page(form, kinds, 422, searched=False)
    totals = found["totals"] or audit_search.totals(filters=filters, roots=roots)
    links = _link_args(form, kinds)
    newer = None
    if cursor:
        # The page before this one: the last cursor on the stack, or the first page.
        newer = {**links, **({"cursor": back[-1], "back": ".".join(back[:-1])} if back else {})}
    older = None
    if found["next_cursor"]:
        stack = [*back, cursor] if cursor else back
        older = {**links, "cursor": found["next_cursor"],
                 **({"back": ".".join(stack[-BACK_MAX:])} if stack else {})}
    return _page(form, kinds, 200, searched=True, items=found["items"], totals=totals,
                 links=links, newer=newer, older=older, first=not cursor)


@bp.get("/console/audit/export.<any(csv, ndjson):export_format>")
@login_required("audit.export", login_endpoint="web.till_login")
def console_audit_export(export_format: str):
    """The same search as a download (as GET /api/v1/audit/transactions/export), streamed."""
    form = Form(request.args)
    kinds = request.args.getlist("kind")
    args = _read_filters(form, kinds)
    if args is None:
        return _page(form, kinds, 422, searched=False)
    roots = _roots("audit.export", args)
    return audit_search.logged_export(
        filters=audit_search.Filters.from_args(args), roots=roots, export_format=export_format,
        with_memos=_may_read_memos(roots), actor_user_id=current_principal().user_id,
        node_id=args.get("node_id"))
