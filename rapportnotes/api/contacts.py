"""Contacts: log, read, correct, soft-delete, list and sync (SPEC §5 Contacts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import Blueprint, current_app, g, request, url_for
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from rapportnotes.api.common import (
    actor_for,
    bad_query,
    bool_arg,
    date_arg,
    encode_cursor,
    instant_id_cursor,
    int_arg,
    load_body,
    page_response,
    query_args,
    timestamp_arg,
    uuid_arg,
)
from rapportnotes.errors import ApiError, flatten_messages
from rapportnotes.extensions import db
from rapportnotes.jsonbody import json_body
from rapportnotes.models import MODALITIES, Contact
from rapportnotes.schemas.contact import PEER_REF, ContactIn, ContactPatch
from rapportnotes.schemas.fields import iso_z
from rapportnotes.security import (
    TokenCaller,
    checks_caller_itself,
    known_zone,
    me,
    parse_id,
    require_caller,
    roles_required,
    token_caller,
    writes_take_no_query,
)
from rapportnotes.services import contacts as svc
from rapportnotes.services import idempotency
from rapportnotes.services.audit import record_event

bp = Blueprint("contacts", __name__, url_prefix="/contacts")
_in = ContactIn()
_patch = ContactPatch()
LIST_ARGS = {"coach_id", "peer_ref", "from", "to", "behaviour", "modality", "updated_since",
             "include_deleted", "limit", "cursor"}


def _created(body: dict, status: int = 201):
    headers = {"Location": url_for("api.contacts.get", contact_id=body["id"]),
               "ETag": svc.etag(body["version"])}
    return body, status, headers


def _replayed(replay: idempotency.Replay, caller: TokenCaller):
    """A retry answered with the first response: it hands out the contact record (notes included),
    so it is audited like any read of one, under its own action so the trail still has one
    ``contact.create`` per stored contact."""
    record_event(db.session, actor_for(caller), "contact.create_replay", target_type="contact",
                 target_id=replay.body["id"], status=replay.status)
    db.session.commit()
    return _created(replay.body, replay.status)


def _replay_stored(caller: TokenCaller, key: str, digest: str | None):
    """The first response of ``key``, if a duplicate that won a race has stored it by now."""
    replay = idempotency.lookup(db.session, caller.organisation_id, str(caller.id), key, digest)
    return _replayed(replay, caller) if replay is not None else None


def _one_statement() -> bool:
    """On PostgreSQL, a create without an Idempotency-Key is one atomic statement that also
    checks the caller, run as its own transaction (``services.contacts.create_contact``):
    nothing else touches the database unless it stores nothing (a caller lookup for an uncached
    zone is finished before it). With a key, the idempotency
    record must commit together with the contact, so that request keeps its transaction and
    checks the caller first as usual."""
    return "Idempotency-Key" not in request.headers and db.engine.dialect.name == "postgresql"


@bp.post("")
@checks_caller_itself
def create():
    """With a valid ``Idempotency-Key``, the key is held while the request runs: a duplicate sent
    meanwhile is a 409 (SPEC §8); one sent after it finished replays its response."""
    key = request.headers.get("Idempotency-Key")
    if key is None or not idempotency.KEY_PATTERN.match(key):
        return _create()  # an invalid key is refused in there, after the caller checks
    caller = token_caller()
    try:
        release = idempotency.claim(db.session, caller.organisation_id, str(caller.id), key)
    except ApiError:
        # Held: by the first request, or by another retry of one that has finished (which must
        # still replay). Every check runs as usual; whatever would store a contact is the 409.
        return _create(held=True)
    try:
        return _create()
    finally:
        release()


def _create(held: bool = False):
    key = request.headers.get("Idempotency-Key")
    caller = token_caller()
    one_statement = _one_statement()
    tz = known_zone(caller.organisation_id) if one_statement else None
    if tz is None:
        tz = require_caller(*svc.LOGGING_ROLES).organisation.timezone
        if one_statement:
            # Those reads are done and the store runs on a connection of its own: nothing may
            # touch this session once it has committed (a failure then would be a 503 for a
            # stored contact, inviting a retry that stores it twice).
            db.session.rollback()
    try:
        writes_take_no_query()
        raw = json_body()
        digest = None
        if key is not None:
            idempotency.check_key(key)
            digest = idempotency.request_hash("POST", request.path, raw)
            replay = idempotency.lookup(db.session, caller.organisation_id, str(caller.id), key, digest,
                                        remove_expired=not held)
            if replay is not None:
                return _replayed(replay, caller)
            if held:  # the first request is still running
                raise idempotency.still_running()
        try:
            data = _in.load(raw)
        except ValidationError as exc:
            raise ApiError(422, "The request has invalid fields.", errors=flatten_messages(exc.messages))
        if data.get("coach_id") not in (None, caller.id):
            raise ApiError(422, "You can only log your own contacts.",
                           errors={"coach_id": ["Must be your own id (or left out)."]})
    except (ApiError, HTTPException):
        require_caller(*svc.LOGGING_ROLES)  # a refused caller hears that first, as everywhere
        raise
    try:
        body = svc.create_contact(db.session, caller=caller, tz=tz, data=data, actor=actor_for(caller),
                                  own_transaction=key is None)
        if body is None:  # the statement stored nothing: find out why, and say so
            g.pop("rn_principal", None)  # loaded before the statement ran: the zone may have moved
            user = require_caller(*svc.LOGGING_ROLES)
            tz = user.organisation.timezone
            svc.check_codes(db.session, user.organisation_id, data.get("behaviours") or [])
            if key is None:  # these reads are done; the retry takes a connection of its own
                db.session.rollback()
            # Every check passes now: the zone had changed, or the taxonomy is changing under
            # us (a code being added). Once more, then give up cleanly.
            body = svc.create_contact(db.session, caller=caller, tz=tz, data=data, actor=actor_for(caller),
                                      own_transaction=key is None)
            if body is None:
                raise ApiError(409, "The behaviour taxonomy changed while saving; please retry.")
        if key is not None:
            idempotency.store(db.session, caller.organisation_id, str(caller.id), key, digest, 201, body,
                              body["id"], current_app.config["IDEMPOTENCY_TTL_HOURS"])
        if db.session().in_transaction():  # not when the one statement was all this request did
            db.session.commit()
    except ApiError as exc:
        # SQLite checks a taken external_id before it inserts, under the write lock: a duplicate
        # that raced past the hold (held per process there) waited for that lock while the first
        # request committed, and finds the first one's own contact. It replays, as below.
        if key is None or exc.errors is None or "external_id" not in exc.errors:
            raise
        db.session.rollback()
        if (replayed := _replay_stored(caller, key, digest)) is not None:
            return replayed
        raise
    except IntegrityError:
        db.session.rollback()
        # A concurrent duplicate won the race: answer with its response.
        if key is not None and (replayed := _replay_stored(caller, key, digest)) is not None:
            return replayed
        if data.get("external_id") is not None:  # lost a race for the same external_id
            svc.check_external_id(db.session, caller.organisation_id, data["external_id"])
        raise
    return _created(body)


@bp.get("")
@roles_required("coach", "supervisor", "admin")
def list_():
    user = me()
    args = query_args(LIST_ARGS)
    limit = int_arg(args, "limit", 50, 1, 200)
    f = svc.ListFilters(
        coach_id=uuid_arg(args, "coach_id"),
        peer_ref=args.get("peer_ref"),
        first=date_arg(args, "from"),
        last=date_arg(args, "to"),
        behaviour=args.get("behaviour"),
        modality=args.get("modality"),
        updated_since=timestamp_arg(args, "updated_since"),
        include_deleted=bool_arg(args, "include_deleted"),
    )
    if f.peer_ref is not None:
        import re

        if not re.match(PEER_REF, f.peer_ref):
            raise bad_query("peer_ref", "1-64 characters of A-Z a-z 0-9 . _ : -")
    if f.modality is not None and f.modality not in MODALITIES:
        raise bad_query("modality", f"Must be one of {', '.join(MODALITIES)}.")
    if f.behaviour is not None and len(f.behaviour) > 64:
        raise bad_query("behaviour", "Unknown behaviour code.")
    if f.first and f.last and f.first > f.last:
        raise bad_query("from", "Must not be after 'to'.")
    after = instant_id_cursor(args.get("cursor"))
    settle = timedelta(seconds=current_app.config["SYNC_SETTLE_SECONDS"])
    items, key = svc.list_contacts(db.session, user, f, limit, after, settle)
    record_event(db.session, actor_for(user), "contact.list", target_type="contact")
    db.session.commit()
    nxt = encode_cursor([iso_z(key[0]), str(key[1])]) if key else None
    return page_response(items, nxt, "api.contacts.list_")


def _visible(contact_id: str) -> Contact:
    return svc.get_visible(db.session, me(), parse_id(contact_id, "contact"))


def _check_if_match(contact: Contact) -> None:
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = [t.strip() for t in header.split(",")]
    if "*" in tags or svc.etag(contact.version) in tags:
        return
    raise ApiError(412, "The contact has changed since you read it (If-Match does not match).")


@contextmanager
def _lost_race_is_412() -> Iterator[None]:
    """Another request changed the row since we read it (the version check failed): 412."""
    try:
        yield
    except StaleDataError:
        db.session.rollback()
        raise ApiError(412, "The contact was changed by another request; read it again.")


@bp.get("/<contact_id>")
@roles_required("coach", "supervisor", "admin")
def get(contact_id: str):
    user = me()
    query_args(set())
    c = _visible(contact_id)
    codes = svc.codes_for(db.session, c.organisation_id, [c.id])[c.id]
    body = svc.contact_json(c, codes)
    record_event(db.session, actor_for(user), "contact.read", target_type="contact", target_id=c.id)
    db.session.commit()
    return body, 200, {"ETag": svc.etag(body["version"])}


@bp.patch("/<contact_id>")
@roles_required("coach", "supervisor", "admin")
def update(contact_id: str):
    user = me()
    c = _visible(contact_id)
    svc.require_owner(user, c)
    data = load_body(_patch)  # a malformed request is a 422 whatever the precondition says
    _check_if_match(c)
    try:
        with _lost_race_is_412():
            codes = svc.update_contact(db.session, c, data, user.organisation.timezone)
            body = svc.contact_json(c, codes)
            record_event(db.session, actor_for(user), "contact.update", target_type="contact",
                         target_id=c.id)
            db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if data.get("external_id") is not None:
            svc.check_external_id(db.session, user.organisation_id, data["external_id"], exclude=c.id)
        raise
    return body, 200, {"ETag": svc.etag(body["version"])}


@bp.delete("/<contact_id>")
@roles_required("coach", "supervisor", "admin")
def delete(contact_id: str):
    user = me()
    c = _visible(contact_id)
    svc.require_owner(user, c)
    _check_if_match(c)
    with _lost_race_is_412():
        svc.soft_delete(db.session, c)
        record_event(db.session, actor_for(user), "contact.delete", target_type="contact",
                     target_id=c.id, status=204)
        db.session.commit()
    return "", 204
