"""Contacts: create, read, edit, soft-delete and list, scoped to what the caller may see.

The create path is the hot one (every contact a coach logs), so it writes with single Core
INSERTs and builds the response from the validated values instead of reloading the row.
Edits go through the ORM so ``version_id_col`` makes concurrent edits lose cleanly.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Insert,
    Select,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from rapportnotes import driver
from rapportnotes.errors import ApiError
from rapportnotes.models import (
    AuditEvent,
    Behaviour,
    Contact,
    ContactBehaviour,
    Organisation,
)
from rapportnotes.models.types import utcnow
from rapportnotes.schemas.fields import iso_z
from rapportnotes.security import Principal, TokenCaller, checked_caller, supervised_coach_ids
from rapportnotes.services import audit, locks
from rapportnotes.services.behaviours import check_codes
from rapportnotes.services.timezones import local_date

OPTIONAL = ("setting", "notes", "peer_rating", "external_id")
_INSERT_CONTACT = Contact.__table__.insert()
_INSERT_TAGS = ContactBehaviour.__table__.insert()


def contact_json(c: Any, codes: list[str]) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "coach_id": str(c.coach_id),
        "peer_ref": c.peer_ref,
        "occurred_at": iso_z(c.occurred_at),
        "duration_minutes": c.duration_minutes,
        "modality": c.modality,
        "setting": c.setting,
        "behaviours": sorted(codes),
        "notes": c.notes,
        "peer_rating": c.peer_rating,
        "external_id": c.external_id,
        "created_at": iso_z(c.created_at),
        "updated_at": iso_z(c.updated_at),
        "version": c.version,
        "deleted": bool(c.deleted),
    }


def etag(version: int) -> str:
    return f'"{version}"'


def _external_id_conflict() -> ApiError:
    return ApiError(
        409, "external_id is already used in this organisation.", errors={"external_id": ["Already used."]}
    )


def check_external_id(
    session: Session, org_id: uuid.UUID, external_id: str | None, exclude: uuid.UUID | None = None
) -> None:
    if external_id is None:
        return
    q = select(Contact.id).where(Contact.organisation_id == org_id, Contact.external_id == external_id)
    if exclude is not None:
        q = q.where(Contact.id != exclude)
    if session.scalar(q) is not None:
        raise _external_id_conflict()


LOGGING_ROLES = ("coach", "supervisor")


@functools.cache
def _pg_create_statement() -> Insert:
    """PostgreSQL: the whole create as one statement, so one round trip and no transaction block.

    ``caller`` is the user the token names, only if ``security.checked_caller`` passes them (so
    the request needs no separate lookup), which includes that the organisation's zone is still
    the one ``local_date`` was computed with (in Python, as on every other path: PostgreSQL
    would read some zone names, such as ``CET``, as fixed abbreviations). ``known`` counts the
    listed codes that are active behaviours of the organisation; the contact row is inserted
    only for a valid caller and if that is all of them (the body has no duplicates), and the
    tags and the audit row are inserted from the contact's RETURNING, so either everything is
    written or nothing is (no audit row inserted: the view finds out why and says so).

    ``created_at``, ``updated_at`` and the event's ``at`` are the statement's transaction start,
    taken by PostgreSQL and returned: a stamp taken in Python before the statement is sent is
    older than the transaction that commits it, and a pause in between (a starved or stopped
    worker) longer than the sync settle window would let a client's sync cursor pass it for good.
    """
    b, c = Behaviour.__table__, Contact.__table__
    t, a = ContactBehaviour.__table__, AuditEvent.__table__
    org, coach = bindparam("c_organisation_id", type_=c.c.organisation_id.type), bindparam("c_coach_id")
    caller = checked_caller(org, coach)
    codes = bindparam("codes", type_=ARRAY(b.c.code.type))
    known = (
        select(func.count().label("n"))
        .where(b.c.organisation_id == org, b.c.code == any_(codes), b.c.active)
        .cte("known")
    )
    value = {"organisation_id": org, "coach_id": coach, "created_at": func.now(), "updated_at": func.now()}
    values = select(*(value.get(col.name, bindparam(f"c_{col.name}", type_=col.type)) for col in c.columns))
    contact = (
        c.insert()
        .from_select([col.name for col in c.columns],
                     values.select_from(caller.join(known, known.c.n == bindparam("n_codes"))))
        .returning(c.c.organisation_id, c.c.id)
        .cte("contact")
    )
    tags = t.insert().from_select(
        ["organisation_id", "contact_id", "code"],
        select(contact.c.organisation_id, contact.c.id, func.unnest(codes)),
    ).cte("tags")
    event = select(*(func.now() if col.name == "at" else bindparam(f"a_{col.name}", type_=col.type)
                     for col in a.columns)).select_from(contact)
    return a.insert().from_select([col.name for col in a.columns], event).add_cte(tags).returning(a.c.at)


def create_contact(
    session: Session, *, caller: TokenCaller, tz: str, data: dict[str, Any], actor: audit.Actor,
    own_transaction: bool = False,
) -> dict[str, Any] | None:
    """Insert a contact logged by ``caller``, its tags and its ``contact.create`` audit row;
    return the contact's JSON. The body is already validated.

    The hot path (every contact a coach logs) writes with statements built once and answers
    from the values it wrote, without reloading the row. ``local_date`` is computed with ``tz``.
    On PostgreSQL that is one atomic statement (``_pg_create_statement``) that itself checks the
    caller, the codes and that ``tz`` is still the organisation's zone; it returns None when it
    stored nothing. With ``own_transaction`` that statement is its own transaction, run as
    driver SQL on an engine connection (``rapportnotes.driver``); the view asks for it when
    nothing else has to commit with the contact. Elsewhere the caller must already be checked
    (``security.require_caller``): the codes and a taken external_id are checked first (a clean
    422 or 409), then one statement per table in the session's transaction.
    """
    codes = data.get("behaviours") or []
    org_id = caller.organisation_id
    row = {
        "organisation_id": org_id,
        "id": uuid.uuid4(),
        "coach_id": caller.id,
        "peer_ref": data["peer_ref"],
        "occurred_at": data["occurred_at"],
        "local_date": local_date(data["occurred_at"], tz),
        "duration_minutes": data["duration_minutes"],
        "modality": data["modality"],
        "setting": data.get("setting"),
        "notes": data.get("notes"),
        "peer_rating": data.get("peer_rating"),
        "external_id": data.get("external_id"),
        "created_at": None,  # stamped where the write is ordered: below, per database
        "updated_at": None,
        "version": 1,
        "deleted": False,
        "deleted_at": None,
    }
    engine = session.get_bind()
    if engine.dialect.name == "postgresql":
        event = audit.event_row(actor, "contact.create", target_type="contact", target_id=row["id"],
                                status=201)

        stamps = {"created_at", "updated_at", "at"}  # the statement's own (see above)
        params = {f"c_{k}": v for k, v in row.items() if k not in stamps}
        params.update({f"a_{k}": v for k, v in event.items() if k not in stamps}, codes=codes,
                      n_codes=len(codes), roles=list(LOGGING_ROLES), generation=caller.token_generation,
                      jti=caller.jti, timezone=tz)
        if own_transaction:
            stored = driver.fetch_autocommit(engine, _pg_create_statement(), params)
        else:
            stored = session.connection().execute(_pg_create_statement(), params).all()
        if len(stored) != 1:
            return None
        row["created_at"] = row["updated_at"] = stored[0][0].astimezone(UTC)
        return contact_json(_Row(row), codes)
    locks.stamp_in_commit_order(session)
    row["created_at"] = row["updated_at"] = utcnow()
    body = contact_json(_Row(row), codes)
    check_codes(session, org_id, codes)
    check_external_id(session, org_id, data.get("external_id"))
    conn = session.connection()
    conn.execute(_INSERT_CONTACT, row)
    if (zone := _zone_now(session, org_id)) != tz:  # moved since the request read it
        _set_local_date(session, org_id, row["id"], local_date(data["occurred_at"], zone))
    if codes:
        tags = [{"organisation_id": org_id, "contact_id": row["id"], "code": c} for c in codes]
        conn.execute(_INSERT_TAGS, tags)
    audit.record_event(session, actor, "contact.create", target_type="contact", target_id=row["id"],
                       status=201)
    return body


class _Row:
    """Attribute access over the inserted values, so ``contact_json`` serves both paths."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def codes_for(
    session: Session, org_id: uuid.UUID, contact_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    out: dict[uuid.UUID, list[str]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return out
    rows = session.execute(
        select(ContactBehaviour.contact_id, ContactBehaviour.code).where(
            ContactBehaviour.organisation_id == org_id, ContactBehaviour.contact_id.in_(contact_ids)
        )
    )
    for cid, code in rows:
        out[cid].append(code)
    return out


def visible_coaches(user: Principal) -> set[uuid.UUID] | None:
    """The coach ids whose contacts ``user`` may see; None means the whole organisation."""
    if user.role == "admin":
        return None
    if user.role == "supervisor":
        return supervised_coach_ids(user) | {user.id}
    return {user.id}


def get_visible(session: Session, user: Principal, contact_id: uuid.UUID) -> Contact:
    """A live contact the caller may see, else 404 (never revealing that it exists)."""
    c = session.get(Contact, (user.organisation_id, contact_id))
    allowed = visible_coaches(user)
    if c is None or c.deleted or (allowed is not None and c.coach_id not in allowed):
        raise ApiError(404, "No such contact.")
    return c


def require_owner(user: Principal, contact: Contact) -> None:
    """Only the coach who logged a contact changes it; others who can see it get 403."""
    if contact.coach_id != user.id:
        raise ApiError(403, "Only the coach who logged this contact may change it.")


def _zone_now(session: Session, organisation_id: uuid.UUID) -> str:
    """The organisation's zone, read once this transaction has written the contact.

    A request computes ``local_date`` with the zone it loaded when it began; ``set-timezone``
    may commit a new zone in between and recompute every date it can see, missing this one.
    Read again here, the zone is final for this contact: on PostgreSQL the ``KEY SHARE`` lock
    makes a zone change wait for this transaction (and one that already committed is seen);
    on SQLite this transaction already holds the write lock, so any change committed first.
    """
    q = select(Organisation.timezone).where(Organisation.id == organisation_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(read=True, key_share=True)
    return session.execute(q).scalar_one()


def _set_local_date(session: Session, organisation_id: uuid.UUID, contact_id: uuid.UUID, day: date) -> None:
    """A zone correction, not an edit: no new version."""
    c = Contact.__table__.c
    session.execute(Contact.__table__.update()
                    .where(c.organisation_id == organisation_id, c.id == contact_id).values(local_date=day))


def update_contact(session: Session, contact: Contact, data: dict[str, Any], tz: str) -> list[str]:
    """Apply a validated PATCH; returns the contact's codes afterwards.

    Nothing is flushed until the end, so the row's version goes up exactly once per edit (and a
    concurrent edit of the same version makes that one flush raise ``StaleDataError``). A PATCH
    that changes nothing (``{}``, or every value as it is; tags compared as a set) is not a
    change: ``version`` goes up "on each change" (SPEC §4), so the ETag a client holds stays
    valid and sync does not send the contact again.
    """
    current = codes_for(session, contact.organisation_id, [contact.id])[contact.id]
    with session.no_autoflush:
        for field in ("peer_ref", "occurred_at", "duration_minutes", "modality", *OPTIONAL):
            if field in data:
                setattr(contact, field, data[field])
        if "occurred_at" in data:
            contact.local_date = local_date(data["occurred_at"], tz)
        if "external_id" in data:
            check_external_id(session, contact.organisation_id, data["external_id"], exclude=contact.id)
        codes = current
        if "behaviours" in data:
            codes = list(data["behaviours"] or [])
            check_codes(session, contact.organisation_id, codes, allowed_retired=current)
        if not session.is_modified(contact) and set(codes) == set(current):
            _check_unchanged(session, contact)
            return current
        locks.stamp_in_commit_order(session)
        contact.updated_at = utcnow()
    # The versioned UPDATE goes first: of two edits of the same version, the loser fails here
    # (412) before it touches the tags, where it would meet the winner's rows (a 500).
    session.flush()
    if "occurred_at" in data and (zone := _zone_now(session, contact.organisation_id)) != tz:
        day = local_date(data["occurred_at"], zone)
        _set_local_date(session, contact.organisation_id, contact.id, day)
        set_committed_value(contact, "local_date", day)
    if "behaviours" in data:
        _replace_tags(session, contact, set(current), set(codes))
    return codes


def _check_unchanged(session: Session, contact: Contact) -> None:
    """A PATCH that changes nothing writes nothing, so no versioned UPDATE tells it that another
    edit (or a delete) committed after it read the row: its tags, read after the row, may then
    be the new version's, and it would answer 200 with the old version and ETag (an If-Match
    passed against a version already gone). The row's version, read again now, decides (412)."""
    c = Contact.__table__.c
    now = session.execute(select(c.version).where(c.organisation_id == contact.organisation_id,
                                                  c.id == contact.id)).scalar()
    if now != contact.version:
        raise StaleDataError("the contact changed while a PATCH that changes nothing read it")


def _replace_tags(session: Session, contact: Contact, old: set[str], new: set[str]) -> None:
    if old - new:
        session.execute(
            delete(ContactBehaviour)
            .where(
                ContactBehaviour.organisation_id == contact.organisation_id,
                ContactBehaviour.contact_id == contact.id,
                ContactBehaviour.code.in_(old - new),
            )
            .execution_options(synchronize_session=False)
        )
    if new - old:
        session.execute(
            insert(ContactBehaviour),
            [
                {"organisation_id": contact.organisation_id, "contact_id": contact.id, "code": c}
                for c in sorted(new - old)
            ],
        )


def soft_delete(session: Session, contact: Contact) -> None:
    locks.stamp_in_commit_order(session)
    now = utcnow()
    contact.deleted = True
    contact.deleted_at = now
    contact.updated_at = now
    session.flush()


@dataclass
class ListFilters:
    coach_id: uuid.UUID | None = None
    peer_ref: str | None = None
    first: date | None = None
    last: date | None = None
    behaviour: str | None = None
    modality: str | None = None
    updated_since: datetime | None = None
    include_deleted: bool = False


def sync_horizon(session: Session, settle: timedelta) -> datetime:
    """The latest ``updated_at`` a sync page may include: every change up to it has committed.

    A change is stamped before its transaction commits, so a page must stop short of stamps that
    an open transaction may still commit: ``settle`` before now, and on PostgreSQL also
    ``settle`` before the start of the oldest transaction still open (a write stalled longer
    than ``settle`` would otherwise land behind a client's cursor and never be synced). Such a
    transaction only holds sync back while it lasts. Sessions of other database roles are not
    visible here, so the app's writers must share one role. SQLite runs one writer at a time,
    and its writes commit in the order they are stamped, give or take the settle window.
    """
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # Also the database's clock: a create is stamped by PostgreSQL (its transaction start),
        # so with the database's clock behind this host's, a create starting after this page
        # could carry a stamp below a horizon read from this host's clock alone.
        oldest = session.execute(text(
            "SELECT least(clock_timestamp(), min(xact_start)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        now = min(now, oldest)
    return now - settle


def list_contacts(
    session: Session,
    user: Principal,
    f: ListFilters,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    settle: timedelta,
) -> tuple[list[dict[str, Any]], tuple[datetime, uuid.UUID] | None]:
    """One page of visible contacts and the key to continue after it (None at the end).

    Normal listing: newest first, keyset on (occurred_at, id) descending. Sync
    (``updated_since``): oldest change first, keyset on (updated_at, id) ascending, tombstones
    included, and only changes older than ``sync_horizon`` — so a write whose transaction
    commits late can never land behind a cursor a client has already passed.
    """
    org = user.organisation_id
    q = select(Contact).where(Contact.organisation_id == org)
    coaches = visible_coaches(user)
    if f.coach_id is not None:
        coaches = {f.coach_id} if coaches is None or f.coach_id in coaches else set()
    if f.peer_ref is not None:
        q = q.where(Contact.peer_ref == f.peer_ref)
    # ``local_date`` decides; the same days widened by a day on each side as UTC instants (wider
    # than any zone's offset) bound ``occurred_at`` too, so the listing indexes scan only the
    # period, not every newer contact of the organisation.
    if f.first is not None:
        q = q.where(Contact.local_date >= f.first)
        if f.first > date.min + timedelta(days=1):
            q = q.where(Contact.occurred_at >= datetime.combine(f.first - timedelta(days=1), time(0), UTC))
    if f.last is not None:
        q = q.where(Contact.local_date <= f.last)
        if f.last < date.max - timedelta(days=2):
            q = q.where(Contact.occurred_at < datetime.combine(f.last + timedelta(days=2), time(0), UTC))
    if f.modality is not None:
        q = q.where(Contact.modality == f.modality)
    if f.behaviour is not None:
        q = q.where(
            exists().where(
                ContactBehaviour.organisation_id == Contact.organisation_id,
                ContactBehaviour.contact_id == Contact.id,
                ContactBehaviour.code == f.behaviour,
            )
        )
    sync = f.updated_since is not None
    if sync:
        horizon = sync_horizon(session, settle)
        q = q.where(Contact.updated_at >= f.updated_since, Contact.updated_at <= horizon)
        if after is not None:  # a row comparison: the index range starts at the cursor
            q = q.where(tuple_(Contact.updated_at, Contact.id) > (after[0], after[1]))
    else:
        if not f.include_deleted:
            q = q.where(Contact.deleted == false())
        if after is not None:
            q = q.where(tuple_(Contact.occurred_at, Contact.id) < (after[0], after[1]))
    rows = _first_rows(session, q, coaches, ("updated_at", "id") if sync else ("occurred_at", "id"),
                       descending=not sync, n=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    codes = codes_for(session, org, [c.id for c in rows])
    items = [contact_json(c, codes[c.id]) for c in rows]
    last = rows[-1] if more else None
    key = None
    if last is not None:
        key = (last.updated_at, last.id) if sync else (last.occurred_at, last.id)
    return items, key



# Past this many coaches, one statement over the organisation's index (the planner's choice):
# the merged statement grows by a subquery a coach (about 2 KB of SQL, compiled once per shape),
# and a supervisor of that many coaches sees enough of the organisation that its index serves.
MAX_COACHES_MERGED = 32


def _first_rows(session: Session, q: Select[Any], coaches: set[uuid.UUID] | None, keys: tuple[str, str],
                descending: bool, n: int) -> list[Contact]:
    """The first ``n`` rows of ``q`` in ``keys`` order, from ``coaches``' contacts (None: all).

    For a few coaches (a supervisor's teams, a coach's own), the first ``n`` of each coach, read
    from the index that leads with the coach, then merged: at most n index entries per coach,
    however large the organisation. One ``coach_id IN (…)`` statement cannot read that index in
    order across coaches, so the planner either walks the organisation's index skipping every
    other coach's rows (one coach in twenty: 19 rows read for each returned) or sorts all of the
    coaches' history.
    """
    def ordered(entity: Any) -> list[Any]:
        columns = [getattr(entity, key) for key in keys]
        return [c.desc() for c in columns] if descending else columns

    if coaches is None or len(coaches) > MAX_COACHES_MERGED:
        if coaches is not None:
            q = q.where(Contact.coach_id.in_(coaches))
        return list(session.scalars(q.order_by(*ordered(Contact)).limit(n)))
    if not coaches:
        return []
    if len(coaches) == 1:
        return list(session.scalars(q.where(Contact.coach_id == next(iter(coaches)))
                                    .order_by(*ordered(Contact)).limit(n)))
    firsts = [select(q.where(Contact.coach_id == coach).order_by(*ordered(Contact)).limit(n).subquery())
              for coach in sorted(coaches)]
    merged = aliased(Contact, union_all(*firsts).subquery())
    return list(session.scalars(select(merged).order_by(*ordered(merged)).limit(n)))
