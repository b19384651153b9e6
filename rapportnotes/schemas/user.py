"""User bodies. Passwords are load-only, hashes never leave the service."""

from marshmallow import Schema, fields, validate

from rapportnotes.models import ROLES
from rapportnotes.schemas.fields import StrictBool, StrictSchema, Text, TimestampOut, email_field


class UserIn(StrictSchema):
    email = email_field(required=True)
    display_name = Text(required=True, min_length=1, max_length=200)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = Text(required=True, min_length=12, max_length=256)
    is_active = StrictBool(load_default=True)


class UserPatch(StrictSchema):
    display_name = Text(min_length=1, max_length=200)
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = StrictBool()
    password = Text(min_length=12, max_length=256)


class OrganisationOut(Schema):
    id = fields.UUID()
    name = fields.String()
    timezone = fields.String()


class UserOut(Schema):
    id = fields.UUID()
    email = fields.String()
    display_name = fields.String()
    role = fields.String()
    is_active = fields.Boolean()
    created_at = TimestampOut()


class MeOut(UserOut):
    organisation = fields.Nested(OrganisationOut)
