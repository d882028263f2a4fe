"""The one envelope every QR code uses (DESIGN.md §4).

    token = PREFIX + base32(body || tag)        PREFIX = "PS" + type letter + version digit

Base32 is RFC 4648, upper case, without padding: it lies inside the QR alphanumeric set and
is safe in a URL path. Parsing checks prefix, length and alphabet before any cryptography
or database work, so a malformed code costs nothing and is always a 4xx. The MAC or the
signature covers a domain-separation string, the prefix and the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOMAIN = b"pointsvc-code-v1|"
MAC_BYTES = 16
SIGNATURE_BYTES = 64
BASE32 = re.compile(r"^[A-Z2-7]+$")


class CodeError(Exception):
    """A code that cannot be accepted; `reason` is the API's reason code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass(frozen=True)
class CodeType:
    letter: str
    name: str
    body_format: str  # struct format, big-endian
    fields: tuple[str, ...]
    signed: bool  # Ed25519 (verifiable offline) rather than HMAC with the server key
    link_path: str | None  # "K" / "M" for codes residents scan as links, None for bare tokens

    @property
    def prefix(self) -> str:
        return f"PS{self.letter}1"

    @property
    def body_size(self) -> int:
        return struct.calcsize(self.body_format)

    @property
    def token_length(self) -> int:
        raw = self.body_size + (SIGNATURE_BYTES if self.signed else MAC_BYTES)
        return len(self.prefix) + (raw * 8 + 4) // 5


CHECKIN = CodeType("K", "checkin", ">QBI", ("event_id", "direction", "step"), False, "K")
CARD = CodeType("C", "card", ">QI", ("resident_id", "serial"), True, None)
PAYCODE = CodeType("P", "paycode", ">Q6sI", ("resident_id", "nonce", "step"), False, None)
MERCHANT = CodeType("M", "merchant", ">IH", ("merchant_id", "version"), True, "M")
TYPES = {code_type.prefix: code_type for code_type in (CHECKIN, CARD, PAYCODE, MERCHANT)}
BY_LINK_PATH = {t.link_path: t for t in TYPES.values() if t.link_path}


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _message(code_type: CodeType, body: bytes) -> bytes:
    return DOMAIN + code_type.prefix.encode() + b"|" + body


def _mac(key: bytes, code_type: CodeType, body: bytes) -> bytes:
    return hmac.new(key, _message(code_type, body), hashlib.sha256).digest()[:MAC_BYTES]


def issue(
    code_type: CodeType, *, mac_key: bytes, signing_key: Ed25519PrivateKey, **values: Any
) -> str:
    """Encode and protect a code of the given type."""
    body = struct.pack(code_type.body_format, *(values[name] for name in code_type.fields))
    if code_type.signed:
        tag = signing_key.sign(_message(code_type, body))
    else:
        tag = _mac(mac_key, code_type, body)
    return code_type.prefix + _b32encode(body + tag)


def extract_token(text: str, *, public_host: str) -> tuple[str, str | None]:
    """Accept a bare token or a link on our public host; returns (token, link path letter)."""
    text = (text or "").strip()
    if len(text) > 400:
        raise CodeError("invalid", "the code is too long")
    upper = text.upper()
    for scheme in ("HTTPS://", "HTTP://"):
        if upper.startswith(scheme):
            rest = upper[len(scheme):]
            host, _, path = rest.partition("/")
            if host != public_host.upper():
                raise CodeError("invalid", "the link is not one of ours")
            letter, _, token = path.partition("/")
            if letter not in BY_LINK_PATH or "/" in token:
                raise CodeError("invalid", "unknown link")
            return token, letter
    return upper, None


def parse(text: str, *, expected: CodeType, mac_key: bytes, public_key, public_host: str
          ) -> dict[str, Any]:
    """Check shape, type and protection of a code; returns its fields or raises CodeError."""
    token, link_letter = extract_token(text, public_host=public_host)
    prefix = token[:4]
    code_type = TYPES.get(prefix)
    if code_type is None:
        raise CodeError("invalid", "not a pointsvc code")
    if code_type is not expected:
        raise CodeError("wrong_type", f"this is a {code_type.name} code, not a "
                                      f"{expected.name} code")
    if link_letter is not None and link_letter != code_type.link_path:
        raise CodeError("invalid", "the link path does not match the code")
    payload = token[4:]
    if len(token) != code_type.token_length or not BASE32.match(payload):
        raise CodeError("invalid", "malformed code")
    try:
        raw = _b32decode(payload)
    except (ValueError, TypeError) as exc:
        raise CodeError("invalid", "malformed code") from exc
    if _b32encode(raw) != payload:  # only the canonical spelling: no two texts for one code
        raise CodeError("invalid", "malformed code")
    body, tag = raw[: code_type.body_size], raw[code_type.body_size:]
    if code_type.signed:
        try:
            public_key.verify(tag, _message(code_type, body))
        except InvalidSignature as exc:
            raise CodeError("invalid", "the signature does not verify") from exc
    elif not hmac.compare_digest(tag, _mac(mac_key, code_type, body)):
        raise CodeError("invalid", "the code was not issued by this service")
    values = dict(zip(code_type.fields, struct.unpack(code_type.body_format, body), strict=True))
    values["token"] = token
    return values


def link(code_type: CodeType, token: str, *, public_host: str) -> str:
    """The upper-case link a phone camera opens (stays in QR alphanumeric mode)."""
    if code_type.link_path is None:
        raise ValueError(f"{code_type.name} codes are bare tokens")
    return f"HTTPS://{public_host.upper()}/{code_type.link_path}/{token}"
