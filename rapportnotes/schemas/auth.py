"""Login, refresh, logout and password change bodies."""

from marshmallow import fields

from rapportnotes.schemas.fields import StrictSchema, Text


class LoginIn(StrictSchema):
    # Deliberately loose: any string up to the limits. Bad formats are just bad credentials,
    # so an attacker learns nothing from a 422 that a 401 would hide.
    email = Text(required=True, max_length=254)
    password = fields.String(required=True, validate=lambda s: 0 < len(s) <= 1024)


class LogoutIn(StrictSchema):
    refresh_token = fields.String(load_default=None, allow_none=True)


class PasswordChangeIn(StrictSchema):
    current_password = fields.String(required=True, validate=lambda s: 0 < len(s) <= 1024)
    new_password = Text(required=True, min_length=12, max_length=256)
