"""Organisations and their users: the pieces the CLI, the demo seed and the API share."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapportnotes.errors import ApiError
from rapportnotes.models import Organisation, User
from rapportnotes.services import passwords
from rapportnotes.services.taxonomy import ensure_default_behaviours
from rapportnotes.services.timezones import is_valid_zone


def create_organisation(session: Session, name: str, timezone: str = "UTC") -> Organisation:
    if not is_valid_zone(timezone):
        raise ValueError(f"unknown time zone {timezone!r}")
    org = Organisation(id=uuid.uuid4(), name=name, timezone=timezone)
    session.add(org)
    session.flush()
    ensure_default_behaviours(session, org.id)
    return org


def email_taken(session: Session, email: str, exclude: uuid.UUID | None = None) -> bool:
    q = select(User.id).where(func.lower(User.email) == email.strip().lower())
    if exclude is not None:
        q = q.where(User.id != exclude)
    return session.scalar(q) is not None


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
        raise ApiError(409, "That email is already in use.", errors={"email": ["Already in use."]})
    user = User(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        email=email.strip().lower(),
        display_name=display_name,
        role=role,
        is_active=is_active,
        password_hash=passwords.hash_password(password),
        token_generation=0,
    )
    session.add(user)
    return user
