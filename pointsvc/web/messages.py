"""Plain-words explanations of the API's error codes, in the page's language.

The codes are the API's (errors.py); the sentences say what happened and what to do next.
A code without its own sentence falls back to the API's bilingual title.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..errors import TITLES
from .i18n import is_english

EXPLAIN = {
    "expired": _l("This pay code has expired. Ask the customer to refresh it and scan again."),
    "already_used": _l("This pay code has already been used. Ask the customer for a new one."),
    "wrong_type": _l("This is not the right kind of code."),
    "invalid": _l("This code is not valid. Scan it again or type it carefully."),
    "revoked": _l("This merchant code has been replaced. Ask the shop for its new code."),
    "insufficient_points": _l("Not enough points."),
    "out_of_stock": _l("This item is out of stock."),
    "offer_limit_reached": _l("The limit for this item has been reached."),
    "offer_not_available": _l("This item cannot be redeemed now."),
    "daily_limit_reached": _l("Today's spending limit has been reached."),
    "merchant_suspended": _l("This merchant is suspended and cannot take points now."),
    "merchant_not_active": _l("This merchant is not open for points yet."),
    "cross_district": _l("Points can only be spent in your own district."),
    "refund_window_closed": _l("The refund period for this payment has ended."),
    "refund_exceeds_redeemed": _l("The refund is more than what is left of this payment."),
    "invalid_credentials": _l("Wrong phone number, user name or password."),
    "account_locked": _l("Too many failed sign-ins. Try again later."),
    "account_disabled": _l("This account is disabled."),
    "forbidden": _l("You are not allowed to open this page."),
    "residents_only": _l("This page is for residents. Sign out and sign in with a resident's "
                         "phone number."),
    "merchants_only": _l("This page is for merchants' tills. Sign in with the shop's account."),
    "not_in_scope": _l("This belongs to someone else."),
    "not_found": _l("Page not found."),
    "validation_failed": _l("Please check what you entered."),
    "rate_limited": _l("Too many attempts. Wait a minute and try again."),
    "csrf": _l("The form has expired. Go back, reload the page and try again."),
    "idempotency_key_required": _l("The form has expired. Go back and try again."),
    "idempotency_key_reused": _l("This form was already used for something else. Start again."),
    "idempotency_in_progress": _l("Still working on the first try. Wait a moment."),
    "internal_error": _l("Something went wrong on our side. Try again in a moment."),
}


def explain(code: str) -> str:
    if code in EXPLAIN:
        return str(EXPLAIN[code])
    zh, en = TITLES.get(code, (code, code))
    return en if is_english() else zh
