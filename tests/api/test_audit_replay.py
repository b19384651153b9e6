"""Audit completeness at the edges: a request that answers with a contact record writes its event."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from rapportnotes.models import AuditEvent, Contact

URL = "/api/v1/contacts"
BODY = {"peer_ref": "P-7", "occurred_at": "2025-01-01T10:00:00Z", "duration_minutes": 5,
        "modality": "phone", "notes": "said the landlord is threatening eviction"}


def _events(world, org_id):
    return world.run(lambda s: [
        (e.action, e.actor_type, e.actor_id, e.target_type, e.target_id, e.status, e.request_id, e.ip)
        for e in s.scalars(select(AuditEvent).where(AuditEvent.organisation_id == uuid.UUID(org_id))
                           .order_by(AuditEvent.at, AuditEvent.id))
    ])


def test_an_idempotent_replay_is_audited_once(client, cast, world):
    """A replay answers with the stored contact, notes included: a read of a contact record
    (SPEC §5: every contact create and read writes one event), never an unrecorded one."""
    h = {**cast.coach.headers, "Idempotency-Key": "visit-3"}
    first = client.post(URL, json=BODY, headers={**h, "X-Request-ID": "req-first"})
    assert first.status_code == 201
    before = _events(world, cast.org)
    again = client.post(URL, json=BODY, headers={**h, "X-Request-ID": "req-retry"})
    assert again.status_code == 201 and again.get_json() == first.get_json()
    new = _events(world, cast.org)[len(before):]
    assert new == [("contact.create_replay", "user", cast.coach.id, "contact", first.get_json()["id"],
                    201, "req-retry", "127.0.0.1")]
    assert world.count(Contact) == 1
    assert [e[0] for e in _events(world, cast.org)].count("contact.create") == 1
