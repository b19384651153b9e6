"""Team and membership bodies."""

from marshmallow import Schema, fields, validate

from rapportnotes.models import MEMBER_ROLES
from rapportnotes.schemas.fields import StrictSchema, Text, TimestampOut


class TeamIn(StrictSchema):
    name = Text(required=True, min_length=1, max_length=200)


class TeamPatch(StrictSchema):
    name = Text(min_length=1, max_length=200)


class MemberIn(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(MEMBER_ROLES))


class MemberOut(Schema):
    user_id = fields.UUID()
    role = fields.String()


class TeamOut(Schema):
    id = fields.UUID()
    name = fields.String()
    members = fields.List(fields.Nested(MemberOut))
    created_at = TimestampOut()
