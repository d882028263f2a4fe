"""Personal-data requests (PIPL): my data export, and erasure of a resident by an admin."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from ...security.authz import current_principal, policy, require_scope
from . import service
from .schemas import ErasureIn, ErasureOut

blp = Blueprint("audit_privacy", __name__, url_prefix="/api/v1", description="Audit: privacy")

EXPORT_DOC = {"200": {"description": "Everything held about me, one JSON document "
                                     "(sections listed in docs/audit.md)",
                      "content": {"application/json": {}}}}


@blp.route("/me/export")
class MyExport(MethodView):
    @blp.doc(responses=EXPORT_DOC)
    @policy("resident.self")
    def get(self):
        """Everything the service holds about me, streamed as one JSON document."""
        resident_id, user_id = service.resident_of_user(user_id=current_principal().user_id)
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def chunks():  # type: ignore[no-untyped-def]
            # Its own app context (and so its own session), entered only when the body is
            # read: a response never read leaves no context pushed (stream_with_context would).
            with app.app_context():
                yield from service.export_chunks(resident_id=resident_id, user_id=user_id)

        response = Response(chunks(), mimetype="application/json")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="personal-data-{resident_id}.json"')
        response.headers["Cache-Control"] = "private, no-store"
        return response


@blp.route("/residents/<int:resident_id>/erasure")
class ResidentErasure(MethodView):
    @blp.arguments(ErasureIn)
    @blp.response(201, ErasureOut)
    @blp.alt_response(200, schema=ErasureOut, description="Already erased: the same record")
    @policy("privacy.erase")
    def post(self, body, resident_id):
        """Erase a resident's personal data (irreversible; a repeat returns the same record)."""
        require_scope("privacy.erase",
                      service.resident_community_path(resident_id=resident_id))
        result = service.erase(resident_id=resident_id,
                               actor_user_id=current_principal().user_id,
                               reason_code=body["reason_code"])
        return service.erasure_json(result), 201 if result.created else 200
