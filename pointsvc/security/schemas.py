"""Request and response shapes of the auth endpoints."""

from marshmallow import fields, validate

from ..common import StrictSchema
from .passwords import MIN_PASSWORD_LENGTH


class TokenRequest(StrictSchema):
    username = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Username or phone number"},
    )
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class RefreshRequest(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class LogoutRequest(StrictSchema):
    refresh_token = fields.String(validate=validate.Length(min=10, max=200))


class TokenResponse(StrictSchema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    refresh_token = fields.String()


class PasswordChange(StrictSchema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    new_password = fields.String(
        required=True, validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=256)
    )
