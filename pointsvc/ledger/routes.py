"""Ledger endpoints: rules, awards, approvals, transactions, accounts, seals and keys."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from .. import UPLOAD_ENDPOINTS
from ..common import PageArgs, decode_id_cursor, page_of
from ..errors import wants_english
from ..extensions import db
from ..security.authz import (
    AUTHENTICATED,
    PUBLIC,
    current_principal,
    node_path_of,
    policy,
    require_member_or_scope,
    require_owner_or_scope,
    require_scope,
)
from . import awards, bulk, idempotency, reading, seals
from . import rules as rulebook
from .models import Memo, PendingAward, Seal
from .schemas import (
    AccountOut,
    AwardIn,
    BulkAwardIn,
    BulkAwardOut,
    ConsistencyArgs,
    ConsistencyOut,
    DecisionIn,
    KeyList,
    PendingListArgs,
    PendingOut,
    PendingPage,
    PolicyIn,
    PolicyOut,
    ProofArgs,
    ProofOut,
    RejectIn,
    ReversalIn,
    RuleEdit,
    RuleIn,
    RuleList,
    RuleListArgs,
    RuleOut,
    SealOut,
    SealPage,
    StatementArgs,
    StatementPage,
    TransactionOut,
)

blp = Blueprint("ledger", __name__, url_prefix="/api/v1", description="Points ledger")

# 10,000 bulk items with memos can pass the default 1 MiB body limit.
UPLOAD_ENDPOINTS["ledger.BulkAwards"] = (frozenset({"application/json"}), "BULK_MAX_BYTES")


def _once(fingerprint_body: Any, work) -> Any:  # type: ignore[no-untyped-def]
    """Run a points-moving request at most once per caller and Idempotency-Key."""
    return idempotency.respond_once(scope=f"user:{current_principal().user_id}",
                                    fingerprint_body=fingerprint_body, work=work)


# --- rules -------------------------------------------------------------------------------


@blp.route("/rules")
class Rules(MethodView):
    @blp.arguments(RuleListArgs, location="query")
    @blp.response(200, RuleList)
    @policy(AUTHENTICATED)
    def get(self, args):
        """The rule book in force at a node (default: the caller's community)."""
        principal = current_principal()
        node_id = args.get("node_id") or principal.community_id
        if node_id is None:
            paths = principal.scope_paths("rules.read")
            if not paths:
                return {"items": []}
            path = paths[0]
        else:
            path = node_path_of(node_id)
        require_member_or_scope("rules.read", path)
        return {"items": rulebook.effective_rules(node_path=path)}

    @blp.arguments(RuleIn)
    @blp.response(201, RuleOut)
    @policy("rules.manage")
    def post(self, body):
        """Define a rule on a node; it applies to the node's whole subtree."""
        require_scope("rules.manage", node_path_of(body["org_node_id"]))
        node_id = body.pop("org_node_id")
        return rulebook.create_rule(
            org_node_id=node_id, actor_user_id=current_principal().user_id, values=body
        )


@blp.route("/rules/<int:rule_id>")
class RuleItem(MethodView):
    @blp.response(200, RuleOut)
    @policy(AUTHENTICATED)
    def get(self, rule_id):
        """One version of a rule."""
        rule = rulebook.get_rule(rule_id=rule_id)
        require_member_or_scope("rules.read", node_path_of(rule.org_node_id))
        return rule

    @blp.arguments(RuleEdit)
    @blp.response(200, RuleOut)
    @policy("rules.manage")
    def patch(self, body, rule_id):
        """Edit a rule: makes the next version; earlier postings keep their version."""
        rule = rulebook.get_rule(rule_id=rule_id)
        require_scope("rules.manage", node_path_of(rule.org_node_id))
        return rulebook.edit_rule(
            rule_id=rule_id, actor_user_id=current_principal().user_id, changes=body
        )


@blp.route("/rules/<int:rule_id>/versions")
class RuleVersions(MethodView):
    @blp.response(200, RuleList)
    @policy(AUTHENTICATED)
    def get(self, rule_id):
        """Every version of the rule, newest first."""
        rule = rulebook.get_rule(rule_id=rule_id)
        require_member_or_scope("rules.read", node_path_of(rule.org_node_id))
        return {"items": rulebook.versions_of(rule_id=rule_id)}


# --- awards and approvals ------------------------------------------------------------------


@blp.route("/awards")
class Awards(MethodView):
    @blp.arguments(AwardIn)
    @blp.response(201, TransactionOut)
    @blp.alt_response(202, schema=PendingOut, description="Waiting for approval")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True,
                          "schema": {"type": "string", "maxLength": 128}}])
    @policy("awards.create")
    def post(self, body):
        """Award (or, with a negative rule, deduct) points to a resident under a rule."""
        actor = current_principal().user_id
        resident = awards.award_subject(resident_id=body["resident_id"],
                                        rule_code=body.get("rule_code"), actor_user_id=actor)
        require_scope("awards.create", resident.community_path)
        awards.refuse_self_dealing(actor_user_id=actor, resident=resident, action="award")
        award = awards.AwardRequest(
            resident_id=resident.id,
            rule_code=body.get("rule_code"),
            quantity=body.get("quantity"),
            points=body.get("points"),
            memo=body.get("memo"),
            evidence_ref=body.get("evidence_ref"),
        )
        return _once(body, lambda: awards.submit_award(actor_user_id=actor, request=award,
                                                       resident=resident))


@blp.route("/awards/bulk")
class BulkAwards(MethodView):
    @blp.arguments(BulkAwardIn)
    @blp.response(201, BulkAwardOut)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True,
                          "schema": {"type": "string", "maxLength": 128}}])
    @policy("awards.create")
    def post(self, body):
        """Up to 10,000 awards in one request, all or nothing (422 lists every bad item)."""
        principal = current_principal()
        return _once(
            body,
            lambda: bulk.bulk_award(
                actor_user_id=principal.user_id,
                scope_paths=principal.scope_paths("awards.create"),
                items=body["items"],
            ),
        )


@blp.route("/approvals")
class Approvals(MethodView):
    @blp.arguments(PendingListArgs, location="query")
    @blp.response(200, PendingPage)
    @policy("awards.approve")
    def get(self, args):
        """Awards waiting for (or past) a second staff member's decision, in scope."""
        from ..orgs.models import OrgNode

        paths = current_principal().scope_paths("awards.approve")
        query = (
            select(PendingAward)
            .join(OrgNode, OrgNode.id == PendingAward.community_id)
            .where(PendingAward.status == args["status"])
            .where(db.or_(*[OrgNode.path.startswith(p, autoescape=True) for p in paths]))
        )
        if args.get("community_id"):
            query = query.where(PendingAward.community_id == args["community_id"])
        if args["cursor"]:
            query = query.where(PendingAward.id > decode_id_cursor(args["cursor"]))
        rows = list(db.session.scalars(query.order_by(PendingAward.id).limit(args["limit"] + 1)))
        page, next_cursor = page_of(rows, limit=args["limit"], key=lambda p: [p.id])
        return {"items": [awards.pending_json(p) for p in page], "next_cursor": next_cursor}


def _pending_in_scope(pending_id: int, action: str) -> PendingAward:
    pending = awards.get_pending(pending_id=pending_id)
    require_scope(action, awards.community_path(community_id=pending.community_id))
    return pending


@blp.route("/approvals/<int:pending_id>")
class ApprovalItem(MethodView):
    @blp.response(200, PendingOut)
    @policy("awards.approve")
    def get(self, pending_id):
        """One approval request."""
        return awards.pending_json(_pending_in_scope(pending_id, "awards.approve"))


@blp.route("/approvals/<int:pending_id>/approve")
class Approve(MethodView):
    @blp.arguments(DecisionIn)
    @blp.response(200, PendingOut)
    @policy("awards.approve")
    def post(self, body, pending_id):
        """Approve: the points post now. The requester cannot approve their own request."""
        _pending_in_scope(pending_id, "awards.approve")
        return awards.decide(pending_id=pending_id, actor_user_id=current_principal().user_id,
                             approve=True, reason=body.get("reason"))


@blp.route("/approvals/<int:pending_id>/reject")
class Reject(MethodView):
    @blp.arguments(RejectIn)
    @blp.response(200, PendingOut)
    @policy("awards.approve")
    def post(self, body, pending_id):
        """Reject with a reason; nothing posts."""
        _pending_in_scope(pending_id, "awards.approve")
        return awards.decide(pending_id=pending_id, actor_user_id=current_principal().user_id,
                             approve=False, reason=body["reason"])


# --- transactions ---------------------------------------------------------------------------


def _transaction_visible(transaction_id: int):  # type: ignore[no-untyped-def]
    transaction = awards.get_transaction(transaction_id=transaction_id)
    require_owner_or_scope(
        "ledger.read",
        awards.community_path(community_id=transaction.community_id),
        resident_id=transaction.subject_resident_id,
    )
    return transaction


@blp.route("/transactions/<int:transaction_id>")
class TransactionItem(MethodView):
    @blp.response(200, TransactionOut)
    @policy(AUTHENTICATED)
    def get(self, transaction_id):
        """One transaction with its entries (the resident it concerns, or staff in scope)."""
        transaction = _transaction_visible(transaction_id)
        body = awards.transaction_json(transaction)
        memo = db.session.get(Memo, transaction.id)
        body["memo"] = memo.memo if memo else None
        body["evidence_ref"] = memo.evidence_ref if memo else None
        return body


@blp.route("/transactions/<int:transaction_id>/reversal")
class Reversal(MethodView):
    @blp.arguments(ReversalIn)
    @blp.response(201, TransactionOut)
    @blp.alt_response(200, schema=TransactionOut, description="Already reversed: the reversal")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True,
                          "schema": {"type": "string", "maxLength": 128}}])
    @policy("ledger.reverse")
    def post(self, body, transaction_id):
        """Reverse a transaction exactly, at most once."""
        transaction = awards.get_transaction(transaction_id=transaction_id)
        require_scope("ledger.reverse",
                      awards.community_path(community_id=transaction.community_id))
        actor = current_principal().user_id
        return _once(
            {"transaction_id": transaction_id, **body},
            lambda: awards.reverse(transaction_id=transaction_id, actor_user_id=actor,
                                   reason=body["reason"]),
        )


@blp.route("/transactions/<int:transaction_id>/proof")
class Proof(MethodView):
    @blp.arguments(ProofArgs, location="query")
    @blp.response(200, ProofOut)
    @policy(AUTHENTICATED)
    def get(self, args, transaction_id):
        """Inclusion proof of the transaction in a seal (RFC 9162 audit path)."""
        _transaction_visible(transaction_id)
        return seals.inclusion(transaction_id=transaction_id, seq=args.get("seal"))


# --- accounts ---------------------------------------------------------------------------


def _account_visible(account_id: int) -> reading.AccountView:
    account = reading.account_view(account_id=account_id)
    require_owner_or_scope(
        "ledger.read",
        account.scope_path,
        resident_id=account.owner_id if account.kind == "resident" else None,
        merchant_id=account.owner_id if account.kind == "merchant" else None,
    )
    return account


@blp.route("/accounts/<int:account_id>")
class AccountItem(MethodView):
    @blp.response(200, AccountOut)
    @policy(AUTHENTICATED)
    def get(self, account_id):
        """Balance and totals of an account (its owner, or staff in scope)."""
        return reading.account_json(_account_visible(account_id))


@blp.route("/accounts/<int:account_id>/entries")
class AccountEntries(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, StatementPage)
    @policy(AUTHENTICATED)
    def get(self, args, account_id):
        """Entries of an account, newest first, keyset-paginated."""
        _account_visible(account_id)
        items, next_cursor = reading.statement(
            account_id=account_id, limit=args["limit"], cursor=args["cursor"],
            start=args.get("start"), end=args.get("end"), category=args.get("category"),
            english=wants_english(),
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/me/account")
class MyAccount(MethodView):
    @blp.response(200, AccountOut)
    @policy("resident.self")
    def get(self):
        """My balance, points held, and totals earned and spent."""
        principal = current_principal()
        account = reading.find_account(kind="resident", owner_id=principal.resident_id)
        return reading.account_json(account, owner_id=principal.resident_id,
                                    community_id=principal.community_id or 0)


@blp.route("/me/entries")
class MyEntries(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, StatementPage)
    @policy("resident.self")
    def get(self, args):
        """My points history, newest first."""
        principal = current_principal()
        account = reading.find_account(kind="resident", owner_id=principal.resident_id)
        if account is None:
            return {"items": [], "next_cursor": None}
        items, next_cursor = reading.statement(
            account_id=account.id, limit=args["limit"], cursor=args["cursor"],
            start=args.get("start"), end=args.get("end"), category=args.get("category"),
            english=wants_english(),
        )
        return {"items": items, "next_cursor": next_cursor}


# --- community policy ---------------------------------------------------------------------


@blp.route("/communities/<int:community_id>/ledger-policy")
class LedgerPolicy(MethodView):
    @blp.response(200, PolicyOut)
    @policy("ledger.read")
    def get(self, community_id):
        """The community's maker-checker threshold."""
        require_scope("ledger.read", node_path_of(community_id))
        return {"community_id": community_id,
                "approval_threshold": awards.approval_threshold(community_id=community_id)}

    @blp.arguments(PolicyIn)
    @blp.response(200, PolicyOut)
    @policy("ledger.policy")
    def put(self, body, community_id):
        """Set the threshold above which awards need a second staff member."""
        require_scope("ledger.policy", node_path_of(community_id))
        threshold = awards.set_approval_threshold(
            community_id=community_id, threshold=body["approval_threshold"],
            actor_user_id=current_principal().user_id,
        )
        return {"community_id": community_id, "approval_threshold": threshold}


# --- transparency log (public) ------------------------------------------------------------


@blp.route("/ledger/seals")
class Seals(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, SealPage)
    @policy(PUBLIC)
    def get(self, args):
        """Signed tree heads, newest first. Anyone may read and check them."""
        query = select(Seal)
        if args["cursor"]:
            query = query.where(Seal.seq < decode_id_cursor(args["cursor"]))
        rows = list(db.session.scalars(query.order_by(Seal.seq.desc()).limit(args["limit"] + 1)))
        page, next_cursor = page_of(rows, limit=args["limit"], key=lambda s: [s.seq])
        return {"items": [seals.seal_json(s) for s in page], "next_cursor": next_cursor}


@blp.route("/ledger/seals/<int:seq>")
class SealItem(MethodView):
    @blp.response(200, SealOut)
    @policy(PUBLIC)
    def get(self, seq):
        """One seal."""
        return seals.seal_json(seals.get_seal(seq=seq))


@blp.route("/ledger/consistency")
class Consistency(MethodView):
    @blp.arguments(ConsistencyArgs, location="query")
    @blp.response(200, ConsistencyOut)
    @policy(PUBLIC)
    def get(self, args):
        """Proof that a later seal extends an earlier one (RFC 9162 consistency proof)."""
        return seals.consistency(old_seq=args["old"], new_seq=args["new"])


@blp.route("/keys")
class Keys(MethodView):
    @blp.response(200, KeyList)
    @policy(PUBLIC)
    def get(self):
        """Public keys for checking seals and signed codes offline."""
        return {"keys": seals.public_keys()}
