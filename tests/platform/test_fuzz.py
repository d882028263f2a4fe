"""Schemathesis fuzzes every operation of our own OpenAPI document: never a 5xx.

Cases are generated from docs/openapi.json (kept current by test_openapi) and sent through
the Flask test client with a district admin's token, so most of them get past
authentication and exercise parsing, validation, scope checks and the services.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.factories import auth, make_tree, make_user

SPEC = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    OPERATIONS = [result.ok() for result in
                  schemathesis.openapi.from_dict(SPEC).get_all_operations()]


@pytest.fixture
def admin_headers(app):
    tree = make_tree(app)
    return auth(app, make_user(app, role="admin", node_id=tree.district))


@pytest.mark.parametrize("operation", OPERATIONS,
                         ids=[f"{op.method.upper()} {op.path}" for op in OPERATIONS])
def test_generated_requests_never_get_a_server_error(app, client, admin_headers, operation):
    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        kwargs = case.as_transport_kwargs(base_url="http://localhost")
        headers = {k: v for k, v in kwargs["headers"].items()
                   if k not in ("Authorization", "Connection", "Accept-Encoding")}
        headers.update(admin_headers)
        url = urlsplit(kwargs["url"])
        response = client.open(
            url.path, method=kwargs["method"], headers=headers,
            query_string=kwargs.get("params") or None,
            json=kwargs.get("json"),
            data=kwargs.get("data"),
        )
        assert response.status_code < 500, (kwargs, response.get_data(as_text=True)[:500])

    run()
