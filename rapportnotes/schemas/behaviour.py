"""Behaviour (taxonomy) bodies. Codes and polarity are permanent; they are history for reports."""

from marshmallow import Schema, fields, validate

from rapportnotes.models import POLARITIES
from rapportnotes.schemas.fields import StrictBool, StrictSchema, Text
from rapportnotes.services.report_csv import RESERVED_CODES

SNAKE = r"^[a-z][a-z0-9_]{0,63}\Z"  # \Z: "$" would also match before a final newline
_snake = validate.Regexp(SNAKE, error="Must be snake_case, 1-64 chars.")
_not_a_csv_column = validate.NoneOf(sorted(RESERVED_CODES),
                                    error="Reserved: a column of the report CSV has this name.")


class BehaviourIn(StrictSchema):
    code = fields.String(required=True, validate=[_snake, _not_a_csv_column])
    label = Text(required=True, min_length=1, max_length=120)
    description = Text(load_default="", max_length=1000, multiline=True)
    category = fields.String(required=True, validate=_snake)
    polarity = fields.String(required=True, validate=validate.OneOf(POLARITIES))


class BehaviourPatch(StrictSchema):
    label = Text(min_length=1, max_length=120)
    description = Text(max_length=1000, multiline=True)
    category = fields.String(validate=_snake)
    active = StrictBool()


class BehaviourOut(Schema):
    code = fields.String()
    label = fields.String()
    description = fields.String()
    category = fields.String()
    polarity = fields.String()
    active = fields.Boolean()
