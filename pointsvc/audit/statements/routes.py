"""Monthly statements API: a resident's own, or a resident's for staff in scope."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ...errors import wants_english
from ...ledger.awards import award_subject
from ...security.authz import current_principal, policy, require_scope
from ..streaming import export_response
from . import service
from .schemas import MonthlyStatementArgs, MonthlyStatementOut

blp = Blueprint("audit_statements", __name__, url_prefix="/api/v1", description="Audit: statements")


def _answer(args, *, resident_id: int, month: str):  # type: ignore[no-untyped-def]
    english = wants_english()
    statement = service.monthly_statement(resident_id=resident_id, month=month,
                                          english=english)
    if args["format"] == "csv":
        return export_response(export_format="csv", columns=service.CSV_COLUMNS,
                               rows=service.csv_rows(statement, english=english),
                               filename=f"statement-{resident_id}-{month}")
    return statement


@blp.route("/me/statements/<string:month>")
class MyStatement(MethodView):
    @blp.arguments(MonthlyStatementArgs, location="query")
    @blp.response(200, MonthlyStatementOut)
    @policy("resident.self")
    def get(self, args, month):
        """My statement for a month (YYYY-MM, my community's calendar): opening and
        closing balance, every entry with its reason, totals."""
        return _answer(args, resident_id=current_principal().resident_id, month=month)


@blp.route("/residents/<int:resident_id>/statements/<string:month>")
class ResidentStatement(MethodView):
    @blp.arguments(MonthlyStatementArgs, location="query")
    @blp.response(200, MonthlyStatementOut)
    @policy("ledger.read")
    def get(self, args, resident_id, month):
        """A resident's monthly statement (staff whose area covers the resident)."""
        require_scope("ledger.read", award_subject(resident_id=resident_id).community_path)
        return _answer(args, resident_id=resident_id, month=month)
