"""The authorisation matrix, generic over app.url_map (so it covers endpoints added later).

1. Every /api/v1 view method declares a policy (@policy sets `_policy`).
2. For each role — anonymous, resident of A, organizer/auditor/admin of A, a merchant
   operator of A — call every endpoint with path ids (and body ids) of community B:
   never a 5xx; anonymous gets 401 wherever a token is needed; staff of A never get a 2xx on
   staff endpoints that touch B's objects.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from pointsvc.security.authz import ACTIONS, PUBLIC, STAFF, policy_of
from tests.factories import (
    auth,
    make_household,
    make_merchant,
    make_operator,
    make_resident,
    make_tree,
    make_user,
)

UNKNOWN_ID = 987_654_321
# Views that are not ours (flask-smorest serves the document itself).
NO_POLICY_NEEDED = {"api-docs.openapi_json"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def api_rules(app: Flask):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint not in NO_POLICY_NEEDED:
            for method in METHODS:
                if method in (rule.methods or ()):
                    yield rule, method


def test_every_api_view_declares_a_policy(app):
    missing = []
    with app.test_request_context():
        for rule, method in api_rules(app):
            action = policy_of(rule.endpoint, method)
            if action is None:
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
            else:
                assert action in ACTIONS, f"{method} {rule.rule}: unknown action {action!r}"
    assert not missing, "views without @policy(...):\n  " + "\n  ".join(missing)
    assert sum(1 for _ in api_rules(app)) >= 10


@dataclass
class CommunityB:
    ids: dict[str, int] = field(default_factory=dict)
    rule_code: str | None = None

    def for_param(self, name: str, rule: str) -> int:
        if name == "user_id" and "/operators/" in rule:
            return self.ids.get("operator_user_id", UNKNOWN_ID)
        if name == "user_id":
            return self.ids.get("staff_user_id", UNKNOWN_ID)
        if name in ("node_id", "org_node_id"):
            return self.ids["grid"]
        if name in ("community_id", "parent_id"):
            return self.ids["community"]
        return self.ids.get(name, UNKNOWN_ID)


def _try(build):  # type: ignore[no-untyped-def]
    """Objects of other domains are built best-effort: an unknown id still exercises 4xx."""
    try:
        return build()
    except Exception:  # noqa: BLE001 - the other domain's API moved; fall back to UNKNOWN_ID
        return None


def build_community_b(app: Flask, client, tree) -> CommunityB:
    b = CommunityB()
    b.ids["community"] = tree.community_b
    b.ids["grid"] = tree.grid_b
    b.ids["household_id"] = make_household(app, community_id=tree.community_b)
    user_b, b.ids["resident_id"] = make_resident(
        app, community_id=tree.community_b, household_id=b.ids["household_id"], name="乙居民"
    )
    b.ids["merchant_id"] = make_merchant(app, node_id=tree.community_b, name="乙超市")
    b.ids["operator_user_id"] = make_operator(app, merchant_id=b.ids["merchant_id"])
    b.ids["staff_user_id"] = make_user(app, role="organizer", node_id=tree.community_b)
    organizer_b = b.ids["staff_user_id"]
    with app.app_context():
        from sqlalchemy import select

        from pointsvc.extensions import db
        from pointsvc.people.models import RoleGrant

        b.ids["grant_id"] = db.session.scalar(
            select(RoleGrant.id).where(RoleGrant.user_id == organizer_b)
        )

    def rules() -> None:
        from pointsvc.ledger import rules as rulebook

        with app.app_context():
            for code, extra in (("b-clean", {}), ("b-big", {"approval_required": True})):
                rule = rulebook.create_rule(
                    org_node_id=tree.community_b,
                    actor_user_id=organizer_b,
                    values={"code": code, "title_zh": "乙规则", "title_en": "B rule",
                            "category": "environment", "points": 5, "unit": "action", **extra},
                )
                b.ids.setdefault("rule_id", rule.id)
        b.rule_code = "b-clean"

    def award(code: str) -> dict[str, Any]:
        r = client.post(
            "/api/v1/awards",
            json={"resident_id": b.ids["resident_id"], "rule_code": code, "quantity": 1},
            headers=auth(app, organizer_b, **{"Idempotency-Key": uuid.uuid4().hex}),
        )
        assert r.status_code in (201, 202), r.get_json()
        return r.get_json()

    def ledger_objects() -> None:
        b.ids["transaction_id"] = award("b-clean")["id"]
        b.ids["pending_id"] = award("b-big")["id"]
        from pointsvc.ledger.reading import find_account

        with app.app_context():
            b.ids["account_id"] = find_account(kind="resident", owner_id=b.ids["resident_id"]).id

    _try(rules)
    if b.rule_code:
        _try(ledger_objects)
    assert user_b
    return b


_ID_FIELD = re.compile(r".*_id$")


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example_body(spec: dict, path: str, method: str, b: CommunityB) -> tuple[Any, bool]:
    """A plausible body from the OpenAPI schema, pointing at B; and whether it names B."""
    operation = spec["paths"].get(path, {}).get(method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return {}, False
    return _example(spec, _resolve(spec, schema), b, "")


def _example(spec: dict, schema: dict, b: CommunityB, name: str) -> tuple[Any, bool]:
    schema = _resolve(spec, schema)
    kind = schema.get("type", "object")
    if "enum" in schema:
        return schema["enum"][0], False
    if kind == "object":
        body, names_b = {}, False
        properties = schema.get("properties", {})
        # Required fields, ids (to point at B), and for a PATCH at least one field.
        wanted = set(schema.get("required", [])) | {"rule_code", "quantity"}
        wanted |= {prop for prop in properties if _ID_FIELD.match(prop)}
        if not wanted & set(properties):
            wanted |= set(list(properties)[:1])
        for prop, sub in properties.items():
            if prop in wanted:
                if _resolve(spec, sub).get("readOnly"):
                    continue
                body[prop], named = _example(spec, sub, b, prop)
                names_b = names_b or named
        return body, names_b
    if kind == "array":
        if schema.get("minItems"):
            item, named = _example(spec, schema.get("items", {}), b, name)
            return [item] * schema["minItems"], named
        return [], False
    if kind == "integer":
        if _ID_FIELD.match(name) or name == "parent_id":
            value = b.for_param(name, "")
            return value, value != UNKNOWN_ID
        return max(1, int(schema.get("minimum", 1))), False
    if kind == "number":
        return 1, False
    if kind == "boolean":
        return False, False
    if name == "rule_code" and b.rule_code:
        return b.rule_code, True
    if "phone" in name:
        return "13800138000", False
    if schema.get("format") == "date-time":
        return "2030-01-01T00:00:00+08:00", False
    if schema.get("format") == "date":
        return "2030-01-01", False
    # Lower-case ASCII passes the usual code/username patterns, so checks after parsing run.
    length = min(max(int(schema.get("minLength", 1)), 10), int(schema.get("maxLength", 10)))
    return ("test-" + uuid.uuid4().hex)[:length], False


def _belongs_to_b(item: Any, tree) -> bool:  # type: ignore[no-untyped-def]
    if not isinstance(item, dict):
        return False
    b_nodes = {tree.community_b, tree.grid_b}
    b_path = f"/{tree.district}/{tree.street}/{tree.community_b}/"
    return (
        item.get("community_id") in b_nodes
        or item.get("org_node_id") in b_nodes
        or str(item.get("path", "")).startswith(b_path)
    )


def _path_value(rule, arg: str, b: CommunityB) -> Any:  # type: ignore[no-untyped-def]
    """An id of B for integer parameters; a value the converter accepts for the others."""
    from werkzeug.routing.converters import AnyConverter, IntegerConverter

    converter = rule._converters.get(arg)
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    if converter is None or isinstance(converter, IntegerConverter):
        return b.for_param(arg, rule.rule)
    return "x"


def _is_staff_action(action: str) -> bool:
    roles = ACTIONS[action]
    return bool(roles) and roles <= STAFF


def test_roles_of_community_a_against_community_b(app, client):
    tree = make_tree(app)
    b = build_community_b(app, client, tree)
    merchant_a = make_merchant(app, node_id=tree.community_a, name="甲超市")
    roles: dict[str, dict[str, str]] = {
        "anonymous": {},
        "resident_a": auth(app, make_resident(app, community_id=tree.community_a)[0]),
        "organizer_a": auth(app, make_user(app, role="organizer", node_id=tree.community_a)),
        "auditor_a": auth(app, make_user(app, role="auditor", node_id=tree.community_a)),
        "admin_a": auth(app, make_user(app, role="admin", node_id=tree.community_a)),
        "operator_a": auth(app, make_operator(app, merchant_id=merchant_a)),
    }
    staff_roles = {"organizer_a", "auditor_a", "admin_a"}
    with app.app_context():
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    failures: list[str] = []
    calls = 0
    for (rule, method), (role, headers) in itertools.product(
        sorted(api_rules(app), key=lambda rm: (rm[0].rule, rm[1])), roles.items()
    ):
        values = {arg: _path_value(rule, arg, b) for arg in rule.arguments}
        url = rule.rule
        for arg, value in values.items():
            url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", str(value), url)
        spec_path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        body, body_names_b = example_body(spec, spec_path, method, b)
        send = dict(headers)
        kwargs: dict[str, Any] = {}
        if method != "GET":
            send["Idempotency-Key"] = uuid.uuid4().hex
            kwargs["json"] = body
        response = client.open(url, method=method, headers=send, **kwargs)
        calls += 1
        status = response.status_code
        with app.test_request_context():
            action = policy_of(rule.endpoint, method)
        where = f"{role:12} {method:6} {url} [{action}] -> {status}"
        if status >= 500:
            failures.append(f"5xx: {where}: {response.get_data(as_text=True)[:200]}")
        if role == "anonymous" and action != PUBLIC and status != 401:
            failures.append(f"anonymous not 401: {where}")
        touches_b = bool(rule.arguments) or body_names_b
        if (
            role in staff_roles
            and action is not None
            and _is_staff_action(action)
            and touches_b
            and 200 <= status < 300
        ):
            failures.append(f"staff of A reached B: {where}")
        if (
            role in staff_roles
            and method == "GET"
            and not rule.arguments
            and action is not None
            and _is_staff_action(action)
            and status == 200
        ):
            leaked = [item for item in (response.get_json() or {}).get("items", [])
                      if _belongs_to_b(item, tree)]
            if leaked:
                failures.append(f"list shows B's objects to staff of A: {where}: {leaked[:2]}")
        if response.mimetype not in ("application/json", "application/problem+json") and (
            status != 204
        ):
            # A document named by its path (the service certificate, …/*.pdf) is the
            # one non-JSON success; its errors are still problem+json.
            if rule.rule.endswith(".pdf") and response.mimetype == "application/pdf":
                continue
            # So is a streamed export (…/export): CSV or NDJSON.
            if rule.rule.endswith("/export") and response.mimetype in (
                    "text/csv", "application/x-ndjson"):
                continue
            failures.append(f"not JSON: {where} ({response.mimetype})")
    assert calls >= 6 * 10
    assert not failures, f"{len(failures)} violations:\n" + "\n".join(failures)
