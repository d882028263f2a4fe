"""The points-moving things a page does, each exactly as its API route does it.

A page form cannot send an Idempotency-Key header, so each rendered confirm form carries
its own key in a hidden field; these functions run the same service calls as
redemption/routes.py under ledger.idempotency.run_once with that key and the same
per-user scope. A double-clicked confirm therefore never spends twice: the second request
replays the first one's receipt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..ledger import idempotency
from ..ledger.models import IdempotencyKey
from ..redemption import service as redemption
from ..security.authz import current_principal

# How long a second submit of the same form waits for the first one's stored answer.
REPLAY_WAIT_SECONDS = 3.0


def _now() -> datetime | None:
    """The redemption clock the API routes read (tests set REDEMPTION_CLOCK)."""
    override = current_app.config.get("REDEMPTION_CLOCK")
    return override() if override else None


def _scope() -> str:
    return f"user:{current_principal().user_id}"


def _answer(scope: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    found = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))
    db.session.rollback()
    if found is None or found.status_code == idempotency.PENDING:
        return None
    return idempotency._replay(found, fingerprint).body


def _once(*, route: str, key: str, body: dict[str, Any],
          work: Callable[[], tuple[int, Any]],
          first: Callable[[], None] | None = None) -> dict[str, Any]:
    """run_once with the form's key; `first` (spending the pay code) runs only once too."""
    if not idempotency.KEY_PATTERN.match(key or ""):
        raise DomainError("idempotency_key_required", "the form lost its key", status=400)
    scope = _scope()
    fingerprint = idempotency.request_fingerprint(route=route, body=body)
    if first is not None:
        stored = _answer(scope, key, fingerprint)
        if stored is not None:
            return stored
        try:
            first()
        except DomainError as err:
            # A double submit whose twin already spent the code: show the twin's receipt.
            if err.code != "already_used":
                raise
            stored = _await_answer(scope, key, fingerprint)
            if stored is None:
                raise
            return stored
    result, _replayed = idempotency.run_once(scope=scope, key=key, fingerprint=fingerprint,
                                             work=work)
    return result.body


def _await_answer(scope: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while True:
        stored = _answer(scope, key, fingerprint)
        if stored is not None or time.monotonic() > deadline:
            return stored
        time.sleep(0.1)


def charge_paycode(*, key: str, pay_code: str, offer_id: int | None, quantity: int | None,
                   points: int | None) -> dict[str, Any]:
    """The till scans a pay code (as POST /api/v1/redemptions, captured at once)."""
    principal = current_principal()
    now = _now()
    scanned: dict[str, int] = {}
    body = {"pay_code": pay_code, "offer_id": offer_id, "quantity": quantity, "points": points}

    def spend_code() -> None:
        scanned["resident_id"] = redemption.consume_paycode(
            text=pay_code, actor_user_id=principal.user_id, now=now)
        redemption.expire_holds(now=now, resident_id=scanned["resident_id"])

    def work() -> tuple[int, dict[str, Any]]:
        return redemption.redeem(request=redemption.SpendRequest(
            channel="paycode", resident_id=scanned["resident_id"],
            merchant_id=principal.merchant_id, actor_user_id=principal.user_id,
            offer_id=offer_id, quantity=quantity, points=points), now=now)

    return _once(route="web:till/charge", key=key, body=body, work=work, first=spend_code)


def pay_merchant(*, key: str, merchant_code: str, offer_id: int | None, quantity: int | None,
                 points: int | None) -> dict[str, Any]:
    """A resident pays at a merchant's sticker (as POST /api/v1/payments)."""
    principal = current_principal()
    now = _now()
    redemption.expire_holds(now=now, resident_id=principal.resident_id)
    body = {"merchant_code": merchant_code, "offer_id": offer_id, "quantity": quantity,
            "points": points}

    def work() -> tuple[int, dict[str, Any]]:
        merchant_id = redemption.read_merchant_code(text=merchant_code)
        return redemption.redeem(request=redemption.SpendRequest(
            channel="merchant_code", resident_id=principal.resident_id,
            merchant_id=merchant_id, actor_user_id=principal.user_id, offer_id=offer_id,
            quantity=quantity, points=points), now=now)

    return _once(route="web:pay", key=key, body=body, work=work)


def refund(*, key: str, redemption_id: int, points: int, reason: str) -> dict[str, Any]:
    """The till refunds part of a redemption (as POST /api/v1/redemptions/{id}/refunds)."""
    actor = current_principal().user_id
    now = _now()
    body = {"redemption_id": redemption_id, "points": points, "reason": reason}
    return _once(route="web:till/refund", key=key, body=body,
                 work=lambda: redemption.refund(redemption_id=redemption_id, points=points,
                                                reason=reason, actor_user_id=actor, now=now))


def award(*, key: str, resident_id: int, rule_code: str, quantity: int,
          memo: str | None) -> tuple[int, dict[str, Any]]:
    """Staff award under a rule (as POST /api/v1/awards): 201 posted, or 202 waiting for a
    second staff member. The caller has checked scope (authz.require_scope)."""
    from ..ledger import awards

    actor = current_principal().user_id
    resident = awards.award_subject(resident_id=resident_id, rule_code=rule_code,
                                    actor_user_id=actor)
    awards.refuse_self_dealing(actor_user_id=actor, resident=resident, action="award")
    request = awards.AwardRequest(resident_id=resident.id, rule_code=rule_code,
                                  quantity=quantity, memo=memo)
    body = {"resident_id": resident_id, "rule_code": rule_code, "quantity": quantity,
            "memo": memo}
    if not idempotency.KEY_PATTERN.match(key or ""):
        raise DomainError("idempotency_key_required", "the form lost its key", status=400)
    result, _replayed = idempotency.run_once(
        scope=_scope(), key=key,
        fingerprint=idempotency.request_fingerprint(route="web:console/award", body=body),
        work=lambda: awards.submit_award(actor_user_id=actor, request=request,
                                         resident=resident))
    return result.status, result.body


def bulk_preview(*, items: list[dict[str, Any]]) -> dict[int, str]:
    """Every item the bulk award would refuse, by index, and nothing posted: the same
    validation as POST /api/v1/awards/bulk, in a transaction that is rolled back."""
    from ..ledger import bulk

    principal = current_principal()
    try:
        errors, _plan = bulk.validate_items(
            actor_user_id=principal.user_id, scope_paths=principal.scope_paths("awards.create"),
            items=[{**item, "_index": index} for index, item in enumerate(items)])
    finally:
        db.session.rollback()  # validation reserves cap room; a preview keeps none
    return {index: messages[0] for index, messages in errors.items()}


def bulk_award(*, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Post every item or none (as POST /api/v1/awards/bulk)."""
    from ..ledger import bulk

    principal = current_principal()
    if not idempotency.KEY_PATTERN.match(key or ""):
        raise DomainError("idempotency_key_required", "the form lost its key", status=400)
    result, _replayed = idempotency.run_once(
        scope=_scope(), key=key,
        fingerprint=idempotency.request_fingerprint(route="web:console/bulk",
                                                    body={"items": items}),
        work=lambda: bulk.bulk_award(actor_user_id=principal.user_id,
                                     scope_paths=principal.scope_paths("awards.create"),
                                     items=[dict(item) for item in items]))
    return result.body
