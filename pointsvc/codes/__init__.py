"""QR codes: the token envelope (envelope.py) and its PNG/SVG renditions (render.py)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from .envelope import CARD, CHECKIN, MERCHANT, PAYCODE, CodeError, CodeType, link
from .envelope import issue as _issue
from .envelope import parse as _parse

__all__ = ["CARD", "CHECKIN", "MERCHANT", "PAYCODE", "CodeError", "CodeType", "issue_code",
           "parse_code", "code_link"]


def issue_code(code_type: CodeType, **values: Any) -> str:
    """A protected token with the service's keys."""
    config = current_app.config
    return _issue(code_type, mac_key=config["QR_MAC_KEY_BYTES"],
                  signing_key=config["ED25519_PRIVATE_KEY"], **values)


def parse_code(text: str, *, expected: CodeType) -> dict[str, Any]:
    """Fields of a valid code of the expected type (bare token or our link), or CodeError."""
    config = current_app.config
    return _parse(text, expected=expected, mac_key=config["QR_MAC_KEY_BYTES"],
                  public_key=config["ED25519_PRIVATE_KEY"].public_key(),
                  public_host=config["PUBLIC_HOST"])


def code_link(code_type: CodeType, token: str) -> str:
    """HTTPS://<PUBLIC HOST>/<K|M>/<token>."""
    return link(code_type, token, public_host=current_app.config["PUBLIC_HOST"])
