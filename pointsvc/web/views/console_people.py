"""The staff console's residents: the list in scope (paged, search by name) and the CSV
import with its result — the service calls of GET /api/v1/residents and POST …/import."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...errors import DomainError
from ...extensions import db
from ...people import service as people
from ...security.authz import current_principal, require_scope
from ..forms import Form
from ..i18n import is_english
from ..session import login_required
from . import bp

PAGE = 25
# The importer's refusals of a whole file (people/importer.py), shown next to the file field.
FILE_PROBLEMS = ("undecodable_file", "malformed_csv", "invalid_csv_header", "too_many_rows")
CURSOR_MAX = 200


def _communities(action: str) -> list[tuple[int, str]]:
    """Communities under the staff member's scope, for the import's default community."""
    from sqlalchemy import or_, select

    from ...orgs.models import OrgNode

    paths = current_principal().scope_paths(action)
    if not paths:
        return []
    english = is_english()
    return [(node.id, node.name_en if english else node.name_zh) for node in db.session.scalars(
        select(OrgNode).where(or_(*[OrgNode.path.startswith(p, autoescape=True) for p in paths]),
                              OrgNode.level == "community").order_by(OrgNode.path).limit(200))]


@bp.get("/console/people")
@login_required("people.read", login_endpoint="web.till_login")
def console_people():
    form = Form(request.args)
    q = form.text("q", max_length=64, required=False)
    cursor = form.text("cursor", max_length=CURSOR_MAX, required=False)
    principal = current_principal()
    items: list[dict[str, Any]] = []
    next_cursor = None
    if form.ok:
        try:
            records, next_cursor = people.list_residents(
                scope_paths=principal.scope_paths("people.read"), limit=PAGE, cursor=cursor,
                q=q)
        except DomainError:
            form.errors["cursor"] = _("This page link is no longer valid. Start again.")
        else:
            items = [people.present_resident(record=r, principal=principal) for r in records]
    names = dict(_communities("people.read"))
    return render_template("web/console/people.html", form=form, items=items, q=q,
                           next_cursor=next_cursor, first=not cursor, communities=names,
                           may_manage=principal.may("people.manage")), (200 if form.ok else 422)


def _import_page(form: Form, status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    return render_template("web/console/people_import.html", form=form,
                           communities=_communities("people.manage"),
                           max_rows=current_app.config["IMPORT_MAX_ROWS"], **context), status


@bp.get("/console/people/import")
@login_required("people.manage", login_endpoint="web.till_login")
def console_people_import():
    return _import_page(Form({}))


@bp.post("/console/people/import")
@login_required("people.manage", login_endpoint="web.till_login")
def console_people_import_post():
    """Import the file (as POST /api/v1/residents/import) and list what happened: rows
    imported, unchanged, and every bad row by line. Page uploads are limited to 1 MiB."""
    form = Form(request.form)
    community_id = form.integer("community_id", maximum=2**62, required=False)
    partial = form.value("partial") == "1"
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        form.errors["file"] = _("Choose a CSV file.")
    if not form.ok:
        return _import_page(form, 422)
    if community_id is not None:
        try:
            community = people.community_for_input(community_id=community_id)
        except DomainError:
            form.errors["community_id"] = _("Choose one.")
            return _import_page(form, 422)
        require_scope("people.manage", community.path)
    try:
        result = people.import_residents(
            data=upload.read(), default_community_id=community_id, partial=partial,
            scope_paths=current_principal().scope_paths("people.manage"),
            max_rows=current_app.config["IMPORT_MAX_ROWS"])
    except DomainError as err:
        db.session.rollback()
        if err.code == "import_failed":
            return _import_page(form, 422, refused={
                "rows": err.extra.get("rows"), "failed": err.extra.get("failed"),
                "errors": _translated(err.extra.get("row_errors", []))})
        if err.code in FILE_PROBLEMS:
            form.errors["file"] = _file_problem(err)
            return _import_page(form, 422)
        raise
    return _import_page(Form({}), result={**result, "errors": _translated(result["errors"])})


def _translated(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**error, "message": row_message(str(error.get("message", "")))} for error in errors]


def _file_problem(err: DomainError) -> str:
    if err.code == "undecodable_file":
        return _("The file is neither UTF-8 nor GBK text.")
    if err.code == "too_many_rows":
        return _("The file has %(n)s rows; at most %(m)s can be imported at once.",
                 n=err.extra.get("rows"), m=err.extra.get("max_rows"))
    return _("This file cannot be read as a resident list.") + (
        f" ({err.detail})" if err.detail else "")


# The importer's row messages (people/importer.py) in the page's language; a message not
# listed here is shown as the importer wrote it.
_FIXED = {
    "Not a valid mainland mobile number.": _l("Not a valid mainland mobile number."),
    "Community outside your area (not_in_scope).": _l("This community is outside your area."),
    "Already registered to an account that is not a resident.": _l(
        "This phone belongs to an account that is not a resident."),
    "Already registered to a resident of another community.": _l(
        "This phone belongs to a resident of another community."),
    "Already registered to a resident with a different name.": _l(
        "This phone belongs to a resident with a different name."),
}
_PATTERNS = (
    (re.compile(r"^Same phone as line (\d+)\.$"), _l("Same phone as line %(n)s.")),
    (re.compile(r"^No community with id (\d+)\.$"), _l("No community with id %(n)s.")),
    (re.compile(r"^Expected (\d+) fields, got (\d+)\.$"), _l("Expected %(n)s fields, got %(m)s.")),
)


def row_message(message: str) -> str:
    if message in _FIXED:
        return str(_FIXED[message])
    for pattern, words in _PATTERNS:
        found = pattern.match(message)
        if found:
            values = dict(zip(("n", "m"), found.groups(), strict=False))
            return str(words) % values
    return message
