"""Organisations and their users: the pieces the CLI, the demo seed and the API share."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapportnotes.errors import ApiError
from rapportnotes.models import Organisation, User
from rapportnotes.services import passwords
from rapportnotes.services.taxonomy import ensure_default_behaviours
from rapportnotes.services.timezones import is_valid_zone

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
