"""``Idempotency-Key`` for POST /contacts: a retry gets the first response, never a second contact.

The record is inserted in the same transaction as the contact it describes, keyed by
(organisation, caller, key). A concurrent duplicate therefore either waits for the first
transaction and hits the primary key (then replays it), or finds the record already complete.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from rapportnotes.errors import ApiError
from rapportnotes.models import IdempotencyRecord
from rapportnotes.models.types import utcnow

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}\Z")


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise ApiError(
            422,
            "Invalid Idempotency-Key header.",
            errors={"Idempotency-Key": ["1-255 printable ASCII characters, no spaces."]},
        )
    return key


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate still hashes (validation refuses the body afterwards)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Replay:
    status: int
    body: dict[str, Any]
    resource_id: str | None


def lookup(session: Session, org_id: uuid.UUID, actor_id: str, key: str, digest: str) -> Replay | None:
    """The stored first response for this key, None if the key is new (or expired)."""
    rec = session.get(IdempotencyRecord, (org_id, actor_id, key))
    if rec is None:
        return None
    if rec.expires_at <= utcnow():
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.organisation_id == org_id,
                IdempotencyRecord.actor_id == actor_id,
                IdempotencyRecord.key == key,
            )
        )
        return None
    if rec.request_hash != digest:
        raise ApiError(
            422,
            "This Idempotency-Key was used with a different request.",
            errors={"Idempotency-Key": ["Already used with a different body."]},
        )
    if rec.state != "done" or rec.response_body is None:
        raise ApiError(409, "A request with this Idempotency-Key is still being processed.")
    return Replay(rec.response_status or 201, json.loads(rec.response_body), rec.resource_id)


def store(
    session: Session,
    org_id: uuid.UUID,
    actor_id: str,
    key: str,
    digest: str,
    status: int,
    body: dict[str, Any],
    resource_id: str,
    ttl_hours: int,
) -> None:
    """Record the response in the caller's transaction (commits or rolls back with the contact)."""
    now = utcnow()
    session.execute(
        insert(IdempotencyRecord),
        [
            {
                "organisation_id": org_id,
                "actor_id": actor_id,
                "key": key,
                "request_hash": digest,
                "state": "done",
                "response_status": status,
                "response_body": json.dumps(body),
                "resource_id": resource_id,
                "created_at": now,
                "expires_at": now + timedelta(hours=ttl_hours),
            }
        ],
    )

