"""Retention: a purged contact leaves no copy of itself behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from rapportnotes.models import Contact, IdempotencyRecord

URL = "/api/v1/contacts"
BODY = {"peer_ref": "P-7", "occurred_at": "2025-01-01T10:00:00Z", "duration_minutes": 5,
        "modality": "phone", "notes": "said the landlord is threatening eviction"}


def test_purge_leaves_no_copy_of_a_purged_contact_in_idempotency_records(client, cast, world, runner):
    """Retention hard-deletes a tombstone for good (SPEC §3): the stored first response of its
    create, which holds the contact's notes, goes with it rather than living on (and replaying)
    until the key expires."""
    h = {**cast.coach.headers, "Idempotency-Key": "visit-4"}
    created = client.post(URL, json=BODY, headers=h).get_json()
    kept = client.post(URL, json=BODY, headers={**h, "Idempotency-Key": "visit-5"}).get_json()
    assert client.delete(f"{URL}/{created['id']}", headers=cast.coach.headers).status_code == 204

    def age(s):
        row = s.get(Contact, (uuid.UUID(cast.org), uuid.UUID(created["id"])))
        row.deleted_at = datetime.now(UTC) - timedelta(days=2)

    world.run(age)
    result = runner.invoke(args=["purge", "--older-than", "1"])
    assert result.exit_code == 0, result.output
    assert world.count(Contact) == 1
    left = world.run(lambda s: [(r.resource_id, r.response_body)
                                for r in s.scalars(select(IdempotencyRecord))])
    assert [r for r, _ in left] == [kept["id"]]
    assert not any(BODY["notes"] in body and created["id"] in body for _, body in left)
    # The key is free again: a retry now is a new request, not a replay of the purged contact.
    again = client.post(URL, json=BODY, headers=h)
    assert again.status_code == 201 and again.get_json()["id"] != created["id"]
