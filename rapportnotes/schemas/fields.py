"""Strict field types shared by every input schema (SPEC §8 "Fields")."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

# Unicode's Cc (control) category is exactly U+0000-U+001F and U+007F-U+009F, and may never
# change (Unicode's stability policy); surrogates are U+D800-U+DFFF. Searched by the regex
# engine, not character by character in Python: a 10,000-character note took 1.3 ms that way.
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, admitting tab, LF, and CR where a LF follows it.
_REFUSED_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|\r(?!\n)")


def text_problem(value: str, *, allow_newlines: bool = False) -> str | None:
    """Why ``value`` is not acceptable text, or None: no NUL, control chars or lone surrogates.

    ``allow_newlines`` admits tab and newline (SPEC §8). A newline may arrive as CRLF, which
    browsers and Windows clients send for a line break, so a CR is admitted only right before
    a LF; a lone CR is a control character like any other. The first refused character names
    the problem."""
    found = (_REFUSED_MULTILINE if allow_newlines else _REFUSED).search(value)
    if found is None:
        return None
    if 0xD800 <= ord(found.group()) <= 0xDFFF:
        return "Contains an invalid (surrogate) character."
    return "Contains a control character."


class Text(fields.String):
    """A string with a maximum length that refuses control characters (and NUL) and surrogates."""

    def __init__(self, *, max_length: int, min_length: int = 0, multiline: bool = False,
                 **kwargs: Any) -> None:
        validators = list(kwargs.pop("validate", []) or [])
        validators.insert(0, validate.Length(min=min_length, max=max_length))
        super().__init__(validate=validators, **kwargs)
        self.multiline = multiline

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        result = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(result, allow_newlines=self.multiline)
        if problem:
            raise ValidationError(problem)
        return result


class StrictInt(fields.Integer):
    """An integer that is really an integer: ``1.9``, ``1.0``, ``"45"`` and ``true`` are refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Must be an integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class ShortList(fields.List):
    """A list refused at once when longer than ``max_items``, before any item is validated: a
    small body of a million bad items must not cost a million error messages."""

    def __init__(self, cls_or_instance: Any, *, max_items: int, **kwargs: Any) -> None:
        super().__init__(cls_or_instance, **kwargs)
        self.max_items = max_items

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list) and len(value) > self.max_items:
            raise ValidationError(f"At most {self.max_items} items.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBool(fields.Boolean):
    """Only JSON ``true``/``false``; no ``"yes"``, ``1`` or ``"true"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z"
)


class Timestamp(fields.AwareDateTime):
    """RFC 3339 with an offset; naive timestamps are refused (SPEC §4)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not RFC3339.match(value):
            raise ValidationError("Must be an RFC 3339 timestamp with an offset.")
        v = value.replace("z", "Z").replace("t", "T")
        # Python <3.11 quirk-free: fromisoformat handles Z and up to 6 fraction digits.
        m = re.match(r"^(.*\.\d{6})\d+(.*)$", v)
        if m:
            v = m.group(1) + m.group(2)
        value = super()._deserialize(v, attr, data, **kwargs)
        return to_utc(value)


def to_utc(value: Any) -> Any:
    """The instant in UTC; one that has no UTC representation (year 1 with a positive offset,
    year 9999 with a negative one) is a validation error, never an ``OverflowError``."""
    from datetime import UTC

    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError("Out of the supported range of timestamps.")


class StrictSchema(Schema):
    """Unknown fields are errors; ``null`` for an optional field means "not sent" on create."""

    class Meta:
        unknown = RAISE


def _stored_email_length(value: str) -> None:
    # Measured as stored (trimmed, lower-cased): some characters grow when lower-cased ("İ").
    if len(value.strip().lower()) > 254:
        raise ValidationError("Longer than maximum length 254.")


def email_field(**kwargs: Any) -> fields.Email:
    return fields.Email(validate=_stored_email_length, **kwargs)


def iso_z(value: Any) -> str | None:
    """UTC out, with a ``Z`` (STYLE: RFC 3339 in, UTC ``Z`` out)."""
    if value is None:
        return None
    from datetime import UTC

    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TimestampOut(fields.Field):
    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso_z(value)
