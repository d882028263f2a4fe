"""The signed-in person's own settings: leaderboard privacy (residents) and password."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...errors import ValidationFailed
from ...extensions import db
from ...people import service as people
from ...people.models import PRIVACY_CHOICES, Resident
from ...security import service as security
from ...security.authz import AUTHENTICATED, current_principal
from ...security.passwords import MIN_PASSWORD_LENGTH
from .. import session as pages
from ..forms import Form
from ..session import login_required
from . import bp


@bp.route("/wallet/privacy", methods=["GET", "POST"])
@login_required("resident.self")
def privacy():
    """Whether leaderboards show the resident's name, a masked name, or nothing."""
    principal = current_principal()
    form = Form(request.form if request.method == "POST" else {})
    saved = False
    if request.method == "POST":
        choice = form.value("privacy")
        if choice not in PRIVACY_CHOICES:
            form.errors["privacy"] = _("Choose one.")
            return _privacy_page(form, saved, 422)
        people.update_me(principal=principal, changes={"privacy": choice})
        saved = True
    return _privacy_page(form, saved)


def _privacy_page(form: Form, saved: bool, status: int = 200):  # type: ignore[no-untyped-def]
    current = db.session.get(Resident, current_principal().resident_id).privacy
    return render_template("web/wallet/privacy.html", form=form, current=current,
                           saved=saved), status


@bp.route("/account/password", methods=["GET", "POST"])
@login_required(AUTHENTICATED)
def password():
    """Change the password; that ends every session, this one too, so sign in again."""
    form = Form(request.form if request.method == "POST" else {})
    if request.method == "GET":
        return render_template("web/password.html", form=form)
    current = form.text("current_password", max_length=256)
    new = form.text("new_password", max_length=256)
    if new is not None and len(new) < MIN_PASSWORD_LENGTH:
        form.errors["new_password"] = _("At least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
    if new is not None and form.value("repeat") != new:
        form.errors["repeat"] = _("The two new passwords differ.")
    form.raw = {}  # never echo a password back
    if not form.ok:
        return render_template("web/password.html", form=form), 422
    try:
        security.change_password(user_id=current_principal().user_id,
                                 current_password=current or "", new_password=new or "")
    except ValidationFailed as err:
        for field in (err.errors or {}):
            form.errors[field] = (_("Wrong password.") if field == "current_password"
                                  else _("Must differ from the current one."))
        return render_template("web/password.html", form=form), 422
    pages.sign_out()
    return redirect(url_for("web.login", changed=1))
