"""The OpenAPI document: served, documented security, committed copy current, /docs offline."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from pointsvc import create_app
from pointsvc.cli import openapi_text
from pointsvc.security.authz import PUBLIC
from tests.conftest import test_config as base_config

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def spec_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    # The document does not depend on the database; this one is never opened.
    path = tmp_path_factory.mktemp("spec") / "unused.db"
    return create_app(base_config(f"sqlite:///{path}"))


def test_openapi_json_is_served(spec_app):
    r = spec_app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/auth/token" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    problem = spec["components"]["schemas"]["Problem"]
    assert {"code", "title", "status", "type"} <= set(problem["required"])
    default_error = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert default_error["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves(spec_app):
    spec = spec_app.test_client().get("/api/v1/openapi.json").get_json()
    for ref in set(_refs(spec)):
        assert ref.startswith("#/components/"), ref
        _, _, kind, name = ref.split("/", 3)
        assert name in spec["components"].get(kind, {}), f"dangling $ref {ref}"


def test_operations_document_their_security(spec_app):
    """Protected operations ask for a bearer token in the document; public ones do not."""
    spec = spec_app.test_client().get("/api/v1/openapi.json").get_json()
    checked = 0
    for rule in spec_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith("api-docs"):
            continue
        view = spec_app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            handler = getattr(view_class, method.lower(), None) if view_class else view
            action = getattr(handler, "_policy", None)
            operation = spec["paths"].get(path, {}).get(method.lower())
            if operation is None or action is None:
                continue  # a missing policy is test_authz_matrix's business
            checked += 1
            if action == PUBLIC:
                assert "security" not in operation, f"{method} {path} is public"
            else:
                assert operation.get("security") == [{"bearerAuth": []}], f"{method} {path}"
    assert checked >= 5


def test_committed_document_is_current(spec_app, tmp_path):
    """docs/openapi.json is what `flask openapi write` produces from the code today."""
    target = tmp_path / "openapi.json"
    result = spec_app.test_cli_runner().invoke(args=["openapi", "write", str(target)])
    assert result.exit_code == 0, result.output
    generated = target.read_text(encoding="utf-8")
    with spec_app.app_context():
        assert generated == openapi_text()
    json.loads(generated)
    assert COMMITTED.exists(), "docs/openapi.json is missing: run `make openapi` and commit it"
    assert COMMITTED.read_text(encoding="utf-8") == generated, (
        "docs/openapi.json is out of date with the code: run `make openapi` and commit the result"
    )


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])
        if tag == "img" and attributes.get("src"):
            self.urls.append(attributes["src"])


def test_docs_page_needs_no_other_host(spec_app):
    client = spec_app.test_client()
    r = client.get("/docs")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    parser = _Assets()
    parser.feed(html)
    assert len(parser.urls) >= 3, parser.urls  # the bundle, the preset and the stylesheet
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"/docs loads {url} from another host"
        assert url.startswith("/"), url
        with client.get(url) as asset:
            assert asset.status_code == 200, url
            assert len(asset.data) > 1000, url
    assert "/api/v1/openapi.json" in html
    assert not re.search(r"https?://", html), "the page names another host"


def test_docs_assets_do_not_escape_their_folder(spec_app):
    client = spec_app.test_client()
    for url in (
        "/docs/assets/../../pyproject.toml",
        "/docs/assets/%2e%2e/%2e%2e/wsgi.py",
        "/docs/assets/no-such-file.js",
    ):
        with client.get(url) as r:
            assert r.status_code == 404, url
