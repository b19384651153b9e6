"""``Idempotency-Key`` for POST /contacts: a retry gets the first response, never a second contact.

The record is inserted in the same transaction as the contact it describes, keyed by
(organisation, caller, key). While the first request runs its key is held (``claim``): a
duplicate sent meanwhile is a 409; one sent after it finished finds the record complete and
replays it. Should two ever race past the hold, the primary key still stores one contact.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
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


_running: set[tuple[str, str, str]] = set()  # SQLite: keys whose first request is still running
_running_lock = threading.Lock()


def claim(session: Session, org_id: uuid.UUID, actor_id: str, key: str) -> Callable[[], None]:
    """Hold the caller's key while its request runs, or raise 409 when a request with the same
    key is still running (SPEC §8: a 409, not a wait). Returns what releases the hold.

    PostgreSQL: a transaction-level advisory lock on the key, taken in the request's session, so
    it lasts until the contact and its record commit (or roll back), on any host; releasing is
    then a no-op. SQLite (one host, usually one process): a set shared by the process's threads;
    between processes the database's write lock still makes a duplicate wait and replay."""
    if session.get_bind().dialect.name == "postgresql":
        name = f"idempotency:{org_id}:{actor_id}:{key}"
        if not session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtextextended(name, 0)))):
            raise still_running()
        return lambda: None
    ident = (str(org_id), actor_id, key)
    with _running_lock:
        if ident in _running:
            raise still_running()
        _running.add(ident)

    def release() -> None:
        with _running_lock:
            _running.discard(ident)

    return release


def still_running() -> ApiError:
    return ApiError(409, "A request with this Idempotency-Key is still being processed.")


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate still hashes (validation refuses the body afterwards)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Replay:
    status: int
    body: dict[str, Any]
    resource_id: str | None


def lookup(session: Session, org_id: uuid.UUID, actor_id: str, key: str, digest: str,
           remove_expired: bool = True) -> Replay | None:
    """The stored first response for this key, None if the key is new (or expired). An expired
    record is deleted unless ``remove_expired`` is false (a request that does not hold the key:
    the holder may be deleting it, and this one must not wait for it)."""
    rec = session.get(IdempotencyRecord, (org_id, actor_id, key))
    if rec is None:
        return None
    if rec.expires_at <= utcnow():
        if not remove_expired:
            return None
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
        raise still_running()
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

