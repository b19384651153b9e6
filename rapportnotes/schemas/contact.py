"""Contact bodies (SPEC §4). ``ContactIn`` creates, ``ContactPatch`` edits; output is built by the
service from the stored values (see ``services.contacts.contact_json``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marshmallow import ValidationError, fields, validate

from rapportnotes.models import MODALITIES
from rapportnotes.schemas.fields import ShortList, StrictInt, StrictSchema, Text, Timestamp

PEER_REF = r"^[A-Za-z0-9._:-]{1,64}\Z"  # \Z: "$" would also match before a final newline
_peer_ref = validate.Regexp(PEER_REF, error="1-64 characters of A-Z a-z 0-9 . _ : -")
MAX_BEHAVIOURS = 20
FUTURE_SLACK = timedelta(minutes=5)


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def _not_future(value: datetime) -> None:
    if value < EARLIEST:
        raise ValidationError("Must not be before 1900-01-01.")
    if value > datetime.now(UTC) + FUTURE_SLACK:
        raise ValidationError("Must not be more than 5 minutes in the future.")


def _behaviour_list(value: list[str]) -> None:
    if len(value) > MAX_BEHAVIOURS:
        raise ValidationError(f"At most {MAX_BEHAVIOURS} behaviours.")
    if len(set(value)) != len(value):
        raise ValidationError("Behaviour codes must be distinct.")


class _ContactFields(StrictSchema):
    peer_ref = fields.String(validate=_peer_ref)
    occurred_at = Timestamp(validate=_not_future)
    duration_minutes = StrictInt(validate=validate.Range(0, 1440))
    modality = fields.String(validate=validate.OneOf(MODALITIES))
    setting = Text(max_length=64, min_length=1, allow_none=True)
    behaviours = ShortList(Text(max_length=64), max_items=MAX_BEHAVIOURS, allow_none=True,
                           validate=_behaviour_list)
    notes = Text(max_length=10_000, multiline=True, allow_none=True)
    peer_rating = StrictInt(allow_none=True, validate=validate.Range(0, 10))
    external_id = Text(max_length=128, min_length=1, allow_none=True)


class ContactIn(_ContactFields):
    """Create. ``coach_id`` may be sent only as the caller's own id (SPEC §5)."""

    peer_ref = fields.String(required=True, validate=_peer_ref)
    occurred_at = Timestamp(required=True, validate=_not_future)
    duration_minutes = StrictInt(required=True, validate=validate.Range(0, 1440))
    modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    coach_id = fields.UUID(allow_none=True)


class ContactPatch(_ContactFields):
    """Edit: fields sent replace; ``null`` clears an optional field (``behaviours: null`` is ``[]``);
    the required ones cannot be null."""
