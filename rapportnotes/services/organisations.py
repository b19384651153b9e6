"""Organisations and their users: the pieces the CLI, the demo seed and the API share."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.orm import Session

from rapportnotes.errors import ApiError
from rapportnotes.models import Contact, Organisation, User
from rapportnotes.models.types import utcnow
from rapportnotes.services import audit, locks, passwords
from rapportnotes.services.taxonomy import ensure_default_behaviours
from rapportnotes.services.timezones import is_valid_zone, local_date

# Which user roles may hold which team-membership role.
_MEMBERSHIP = {"coach": {"coach", "supervisor"}, "supervisor": {"supervisor", "admin"}}


def may_hold_membership(user_role: str, member_role: str) -> bool:
    """A coach member is a coach or supervisor user; a supervisor member a supervisor or admin."""
    return user_role in _MEMBERSHIP[member_role]


def create_organisation(session: Session, name: str, timezone: str = "UTC") -> Organisation:
    """A new organisation with the default taxonomy; ``ValueError`` for an unknown time zone."""
    if not is_valid_zone(timezone):
        raise ValueError(f"unknown time zone {timezone!r}")
    org = Organisation(id=uuid.uuid4(), name=name, timezone=timezone)
    session.add(org)
    session.flush()
    ensure_default_behaviours(session, org.id)
    return org


def normalise_email(email: str) -> str:
    """Emails are stored lower-cased, which makes the plain unique index case-insensitive."""
    return email.strip().lower()


def email_taken(session: Session, email: str) -> bool:
    """In use anywhere in the deployment (an equality lookup, so the unique index serves it)."""
    return session.scalar(select(User.id).where(User.email == normalise_email(email))) is not None


def email_conflict() -> ApiError:
    return ApiError(409, "That email is already in use.", errors={"email": ["Already in use."]})


def create_user(
    session: Session,
    organisation_id: uuid.UUID,
    *,
    email: str,
    display_name: str,
    role: str,
    password: str,
    is_active: bool = True,
) -> User:
    """Create a user; 409 when the email is in use anywhere in the deployment."""
    if email_taken(session, email):
        raise email_conflict()
    user = User(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        email=normalise_email(email),
        display_name=display_name,
        role=role,
        is_active=is_active,
        password_hash=passwords.hash_password(password),
        token_generation=0,
    )
    session.add(user)
    return user


# A request reads the organisation's time zone when it starts and writes a contact's local date
# before it ends; one that started before a change and wrote after it is caught by a second
# pass over contacts written since the change began (requests end long before this: statement
# timeout, gunicorn's worker timeout).
TIMEZONE_SETTLE = timedelta(minutes=2)


def change_timezone(session: Session, organisation_id: uuid.UUID, timezone: str,
                    actor: audit.Actor, batch_size: int = 1000) -> int:
    """Move an organisation to another time zone and recompute its contacts' local dates.

    Reports group by ``contacts.local_date`` (the contact's date in the organisation's zone,
    fixed at write time), so a new zone needs every stored date recomputed, by the same Python
    function that computes it on write. The zone change commits first, so new writes use it;
    the dates are then rewritten in committed batches (keyset on id, so memory stays flat on a
    large history), then contacts written since the change began get a second pass. The
    ``organisation.update`` audit event by ``actor`` commits with the zone change, so a change
    never exists without its audit row, even if the recompute stops midway (running the command
    again finishes it). A run overtaken by a later change stops: that one redates every contact.
    Commits; returns how many contacts' dates changed. ``ValueError`` for an
    unknown zone or organisation.
    """
    if not is_valid_zone(timezone):
        raise ValueError(f"unknown time zone {timezone!r}")
    org = session.execute(select(Organisation).where(Organisation.id == organisation_id)
                          .with_for_update()).scalar_one_or_none()
    if org is None:
        raise ValueError(f"no organisation {organisation_id}")
    began = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        # Also the database's clock: creates are stamped by PostgreSQL (services.contacts), and
        # with its clock behind this host's by more than the settle window the second pass would
        # look only past a create that read the old zone.
        began = min(began, session.execute(text("SELECT clock_timestamp()")).scalar_one())
    org.timezone = timezone
    audit.record_event(session, actor, "organisation.update", target_type="organisation",
                       target_id=organisation_id, status=200)
    session.commit()
    changed = _recompute_local_dates(session, organisation_id, timezone, batch_size, since=None)
    changed += _recompute_local_dates(session, organisation_id, timezone, batch_size,
                                      since=began - TIMEZONE_SETTLE)
    return changed


def _recompute_local_dates(session: Session, organisation_id: uuid.UUID, timezone: str,
                           batch_size: int, since: datetime | None) -> int:
    c = Contact.__table__.c
    # Only if occurred_at is still the one the date was computed from: an edit that moved it
    # meanwhile dated it itself, in the zone this run writes in (it reads the zone held here).
    update = (Contact.__table__.update()
              .where(c.organisation_id == organisation_id, c.id == bindparam("cid"),
                     c.occurred_at == bindparam("at", type_=c.occurred_at.type))
              .values(local_date=bindparam("day")))
    changed, after = 0, None
    while True:
        # Each batch holds the zone it writes in until it commits: a later change of zone waits
        # for the batch, and this run stops once it sees one (that run redates every contact).
        if locks.hold_timezone(session, organisation_id) != timezone:
            session.rollback()
            return changed
        q = (select(c.id, c.occurred_at, c.local_date).where(c.organisation_id == organisation_id)
             .order_by(c.id).limit(batch_size))
        if after is not None:
            q = q.where(c.id > after)
        if since is not None:
            q = q.where(or_(c.created_at >= since, c.updated_at >= since))
        rows = session.execute(q).all()
        if not rows:
            session.rollback()  # lets go of the zone
            return changed
        moved = [{"cid": r.id, "at": r.occurred_at, "day": day} for r in rows
                 if (day := local_date(r.occurred_at, timezone)) != r.local_date]
        if moved:  # counted as updated: a row an edit moved meanwhile is skipped, not redated
            changed += session.execute(update, moved).rowcount
        session.commit()
        after = rows[-1].id
