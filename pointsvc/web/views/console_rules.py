"""The console's rule book: the rules in force, one rule with its versions, create a rule and
edit one (a new version) — the service calls of the /api/v1/rules routes, under the same
policies (rules.read, rules.manage on the rule's node)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from ...common import as_utc
from ...errors import Conflict, ValidationFailed
from ...extensions import db
from ...ledger import rules as rulebook
from ...ledger.models import CATEGORIES, UNITS
from ...ledger.schemas import RuleEdit, RuleIn
from ...orgs.models import OrgNode
from ...security.authz import (
    current_principal,
    node_path_of,
    require_member_or_scope,
    require_scope,
)
from .. import format as fmt
from ..forms import MAX_ID, Form
from ..i18n import is_english
from ..labels import event_label
from ..session import login_required
from . import bp

POINTS_MAX = 10_000
CAP_MAX = 10**7
TITLES = {"title_zh": 200, "title_en": 300}
CAPS = ("cap_day", "cap_week", "cap_month")
MINUS = ("-", "−")


def _nodes() -> list[OrgNode]:
    """Nodes a rule may be defined on: those in the staff member's rules.manage scope."""
    paths = current_principal().scope_paths("rules.manage")
    if not paths:
        return []
    return list(db.session.scalars(
        select(OrgNode).where(or_(*[OrgNode.path.startswith(p, autoescape=True) for p in paths]),
                              OrgNode.level != "grid").order_by(OrgNode.path).limit(200)))


def _may_edit(rule) -> bool:  # type: ignore[no-untyped-def]
    return rule.is_current and current_principal().covers(
        "rules.manage", node_path_of(rule.org_node_id))


def _signed(form: Form, name: str) -> int | None:
    """A whole number that may be negative (deductions), within the API's bounds."""
    value = form.value(name)
    if not value:
        form.errors[name] = _("This field is required.")
        return None
    digits = value[1:] if value[:1] in (*MINUS, "+") else value
    if not digits.isascii() or not digits.isdigit():
        form.errors[name] = _("Enter a whole number.")
        return None
    number = -int(digits) if value[:1] in MINUS else int(digits)
    if not -POINTS_MAX <= number <= POINTS_MAX or number == 0:
        form.errors[name] = _("Enter a number from -%(n)d to %(n)d, not 0.", n=POINTS_MAX)
        return None
    return number


def _read_rule(form: Form, *, new: bool) -> dict[str, Any] | None:
    """The form as the API's RuleIn (new) or a full RuleEdit body, or None with errors set."""
    body: dict[str, Any] = {"category": form.value("category"), "unit": form.value("unit"),
                            "approval_required": form.value("approval_required") == "1"}
    if new:
        node = form.integer("org_node_id", maximum=MAX_ID)
        if node is not None:
            body["org_node_id"] = node
        code = form.text("code", max_length=64)
        if code is not None:
            body["code"] = code
    else:
        body["retired"] = form.value("retired") == "1"
    for name, length in TITLES.items():
        value = form.text(name, max_length=length)
        if value is not None:
            body[name] = value
    points = _signed(form, "points")
    if points is not None:
        body["points"] = points
    for name in CAPS:
        cap = form.integer(name, maximum=CAP_MAX, required=False)
        if cap is not None or not new:
            body[name] = cap  # empty on an edit: no cap any more
    for name in ("active_from", "active_until"):
        moment = form.moment(name, required=False)
        if moment is not None or not new:
            body[name] = moment.isoformat() if moment else None
    if not form.ok:
        return None
    return form.load(RuleIn() if new else RuleEdit(), body, _field_message)


def _field_message(name: str, messages: Any) -> str:
    """The API's message for a field, in words of the page's language where we have them."""
    if name in ("category", "unit", "org_node_id"):
        return _("Choose one.")
    if name == "code":
        return _("Lower-case letters, digits, _ . and - (start with a letter or digit).")
    if name == "active_until":
        return _("The end must be after the start.")
    text = messages[0] if isinstance(messages, list) and messages else str(messages)
    return _("Please check this field.") + (f" ({text})" if text else "")


def _changes(rule, values: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The fields the form changed (a version that changes nothing would be noise)."""
    def same(old: Any, new: Any) -> bool:
        if isinstance(old, datetime) and isinstance(new, datetime):
            return as_utc(old) == as_utc(new)
        return old == new

    return {name: value for name, value in values.items()
            if not same(getattr(rule, name), value)}


def _form_of(rule) -> Form:  # type: ignore[no-untyped-def]
    """The edit form filled with the rule's values as the page shows them."""
    values: dict[str, Any] = {name: "" if getattr(rule, name) is None else str(getattr(rule, name))
                              for name in ("title_zh", "title_en", "category", "points", "unit",
                                           *CAPS)}
    for name in ("active_from", "active_until"):
        values[name] = fmt.local_time(getattr(rule, name), "yyyy-MM-dd'T'HH:mm")
    for name in ("approval_required", "retired"):
        values[name] = "1" if getattr(rule, name) else ""
    return Form(values)


def _form_page(form: Form, *, rule=None, status: int = 200):  # type: ignore[no-untyped-def]
    english = is_english()
    nodes = _nodes() if rule is None else []
    return render_template(
        "web/console/rule_form.html", form=form, rule=rule,
        nodes=([n.id for n in nodes], [n.name_en if english else n.name_zh for n in nodes]),
        categories=(list(CATEGORIES), [event_label("category", c) for c in CATEGORIES]),
        units=(list(UNITS), [_("per action"), _("per hour (quantity in minutes)")])), status


@bp.get("/console/rules")
@login_required("rules.read", login_endpoint="web.till_login")
def console_rules():
    principal = current_principal()
    paths = principal.scope_paths("rules.read")
    rules = rulebook.effective_rules(node_path=paths[0]) if paths else []
    return render_template("web/console/rules.html", rules=rules,
                           may_manage=principal.may("rules.manage"),
                           editable={rule.id for rule in rules if _may_edit(rule)})


@bp.get("/console/rules/<int:rule_id>")
@login_required("rules.read", login_endpoint="web.till_login")
def console_rule(rule_id: int):
    """One version of a rule and every version of its code (as GET …/rules/{id}/versions)."""
    rule = rulebook.get_rule(rule_id=rule_id)
    require_member_or_scope("rules.read", node_path_of(rule.org_node_id))
    return render_template("web/console/rule.html", rule=rule,
                           versions=rulebook.versions_of(rule_id=rule_id),
                           may_edit=_may_edit(rule))


@bp.route("/console/rules/new", methods=["GET", "POST"])
@login_required("rules.manage", login_endpoint="web.till_login")
def console_rule_new():
    if request.method == "GET":
        return _form_page(Form({"unit": "action"}))
    form = Form(request.form)
    body = _read_rule(form, new=True)
    if body is None:
        return _form_page(form, status=422)
    node_id = body.pop("org_node_id")
    require_scope("rules.manage", node_path_of(node_id))
    try:
        rule = rulebook.create_rule(org_node_id=node_id,
                                    actor_user_id=current_principal().user_id, values=body)
    except Conflict:
        db.session.rollback()
        form.errors["code"] = _("This node already has a rule with this code: edit that one.")
        return _form_page(form, status=422)
    except ValidationFailed as err:
        db.session.rollback()
        form.add_errors(err.errors, _field_message)
        return _form_page(form, status=422)
    return redirect(url_for("web.console_rule", rule_id=rule.id))


@bp.route("/console/rules/<int:rule_id>/edit", methods=["GET", "POST"])
@login_required("rules.manage", login_endpoint="web.till_login")
def console_rule_edit(rule_id: int):
    """Edit a rule (as PATCH /api/v1/rules/{id}): saving makes the next version."""
    rule = rulebook.get_rule(rule_id=rule_id)
    require_scope("rules.manage", node_path_of(rule.org_node_id))
    if not rule.is_current:
        raise Conflict("invalid_state", "only the current version of a rule can be edited")
    if request.method == "GET":
        return _form_page(_form_of(rule), rule=rule)
    form = Form(request.form)
    body = _read_rule(form, new=False)
    if body is None:
        return _form_page(form, rule=rule, status=422)
    changes = _changes(rule, body)
    if not changes:
        form.errors["_schema"] = _("Nothing was changed.")
        return _form_page(form, rule=rule, status=422)
    try:
        successor = rulebook.edit_rule(rule_id=rule_id,
                                       actor_user_id=current_principal().user_id,
                                       changes=changes)
    except ValidationFailed as err:
        db.session.rollback()
        form.add_errors(err.errors, _field_message)
        return _form_page(form, rule=rule, status=422)
    return redirect(url_for("web.console_rule", rule_id=successor.id))
