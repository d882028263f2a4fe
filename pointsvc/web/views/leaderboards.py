"""The resident's leaderboards: the boards of their own branch (grid, community, street,
district) by period, category and metric, and "my place" — the leaderboards service calls
behind GET /api/v1/leaderboards and /api/v1/leaderboards/me."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from ...errors import DomainError
from ...leaderboards import service as boards
from ...security.authz import current_principal, node_path_of, require_member_or_scope
from ..forms import Form
from ..i18n import is_english
from ..session import login_required
from . import bp

PAGE = 20
METRICS = ("points", "hours")


def _choice(form: Form, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = form.value(name) or default
    if value not in allowed:
        form.errors[name] = _("Choose one.")
        return default
    return value


@bp.get("/wallet/leaderboards")
@login_required("resident.self")
def leaderboards():
    form = Form(request.args)
    period = _choice(form, "period", boards.PERIODS, "month")
    category = _choice(form, "category", boards.CATEGORIES, "all")
    metric = _choice(form, "metric", METRICS, "points")
    level = _choice(form, "level", boards.BOARD_LEVELS, "community")
    cursor = form.text("cursor", max_length=64, required=False)
    english = is_english()
    place = boards.my_place(resident_id=current_principal().resident_id, period=period, at=None,
                            category=category, metric=metric, english=english)
    levels = [entry["scope"]["level"] for entry in place["scopes"]]
    if level not in levels:
        level = "community"
    mine = next(entry for entry in place["scopes"] if entry["scope"]["level"] == level)
    board = None
    if form.ok:
        scope_id = mine["scope"]["id"]
        require_member_or_scope("leaderboards.read", node_path_of(scope_id))
        try:
            board = boards.board(scope_id=scope_id, period=period, at=None, category=category,
                                 metric=metric, limit=PAGE, cursor=cursor,
                                 me=current_principal().resident_id, english=english)
        except DomainError:
            form.errors["cursor"] = _("This page link is no longer valid. Start again.")
    query = {"period": period, "category": category, "metric": metric, "level": level}
    return render_template("web/wallet/leaderboards.html", form=form, place=place, mine=mine,
                           board=board, levels=levels, query=query, first=not cursor,
                           periods=boards.PERIODS, categories=boards.CATEGORIES,
                           metrics=METRICS), (200 if form.ok else 422)
