"""Page tests: the redemption world (merchants, residents, staff) and a signed-in browser-ish
client that reads CSRF tokens from the pages it gets, as a browser would."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pointsvc.extensions import db
from pointsvc.people.models import User
from tests.factories import PASSWORD
from tests.redemption.conftest import World, fund, world  # noqa: F401  (fixture re-export)

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY = re.compile(r'name="key" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def key_of(html: str) -> str:
    match = KEY.search(html)
    assert match, "the form has no idempotency key"
    return match.group(1)


def login_name(app: Flask, user_id: int) -> str:
    """What the person types to sign in: the phone of a resident, else the user name."""
    with app.app_context():
        user = db.session.get(User, user_id)
        name = user.phone or user.username
        db.session.remove()
        return name


class Page:
    """A test client that signs in through the login form and posts forms with their token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token: str | None = None

    def get(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        response = self.client.get(url, **kwargs)
        self._remember(response)
        return response

    def _remember(self, response) -> None:  # type: ignore[no-untyped-def]
        if response.mimetype == "text/html":
            match = TOKEN.search(response.get_data(as_text=True))
            if match:
                self.token = match.group(1)

    def post(self, url: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
        if self.token is None:
            self.get("/login")
        response = self.client.post(url, data={"csrf_token": self.token, **(data or {})},
                                    **kwargs)
        self._remember(response)
        return response

    def sign_in(self, app: Flask, user_id: int, *, till: bool = False):  # type: ignore[no-untyped-def]
        url = "/till/login" if till else "/login"
        self.get(url)
        response = self.post(url, {"identifier": login_name(app, user_id),
                                   "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        # As a browser does: follow the redirect (signing in starts a new CSRF token).
        self.get(response.location)
        return response


@pytest.fixture
def page(client: FlaskClient) -> Page:
    return Page(client)


@pytest.fixture
def resident_page(app: Flask, world: World) -> Page:  # noqa: F811
    page = Page(app.test_client())
    page.sign_in(app, world.resident_user)
    return page


@pytest.fixture
def till_page(app: Flask, world: World) -> Page:  # noqa: F811
    page = Page(app.test_client())
    page.sign_in(app, world.shop_operator, till=True)
    return page


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    """The visible words of a page, whitespace squeezed."""
    html = response.get_data(as_text=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
