"""Issuing, rotating and revoking tokens.

Access tokens are short-lived and checked against a revocation table; refresh tokens are
recorded when issued so each can be used exactly once. Using one a second time means it leaked:
the whole family (every token descended from the same login) is revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapportnotes.models import RefreshToken, RevokedToken, User
from rapportnotes.models.types import utcnow

if TYPE_CHECKING:  # security imports this module
    from rapportnotes.security import Principal


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_json(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def _claims(user: User | Principal) -> dict[str, object]:
    """``org`` lets the per-request user lookup use the (organisation_id, id) primary key; the
    user's role and organisation still come from that row, never from the token."""
    return {"gen": user.token_generation, "org": str(user.organisation_id)}


def issue_pair(
    session: Session, user: User | Principal, access_ttl: timedelta, family_id: str | None = None
) -> TokenPair:
    """A new access token and a recorded refresh token (a new family unless one is given)."""
    claims = _claims(user)
    access = create_access_token(identity=str(user.id), additional_claims=claims)
    refresh = create_refresh_token(identity=str(user.id), additional_claims=claims)
    decoded = decode_token(refresh)
    session.add(
        RefreshToken(
            jti=decoded["jti"],
            organisation_id=user.organisation_id,
            user_id=user.id,
            family_id=family_id or uuid.uuid4().hex,
            issued_at=utcnow(),
            expires_at=datetime.fromtimestamp(decoded["exp"], UTC),
        )
    )
    return TokenPair(access, refresh, int(access_ttl.total_seconds()))


class RefreshReused(Exception):
    """A refresh token was presented after it had been used or revoked."""


def rotate(session: Session, user: User | Principal, jti: str, access_ttl: timedelta) -> TokenPair:
    """Spend refresh token ``jti`` and issue its successor in the same family.

    The row is claimed with a conditional UPDATE so two concurrent uses cannot both succeed.
    """
    row = session.get(RefreshToken, jti)
    if row is None or row.user_id != user.id:
        raise RefreshReused()
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.jti == jti,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked.is_(False),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        revoke_family(session, row.organisation_id, row.family_id)
        raise RefreshReused()
    return issue_pair(session, user, access_ttl, family_id=row.family_id)


def revoke_family(session: Session, organisation_id: uuid.UUID, family_id: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.organisation_id == organisation_id, RefreshToken.family_id == family_id)
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )


def revoke_refresh_token(session: Session, user: User | Principal, jti: str) -> bool:
    """Revoke the family of a refresh token the user owns; False when it is not theirs."""
    row = session.get(RefreshToken, jti)
    if row is None or row.user_id != user.id:
        return False
    revoke_family(session, row.organisation_id, row.family_id)
    return True


def revoke_access_token(session: Session, user: User | Principal, jti: str, expires_at: datetime) -> None:
    if session.get(RevokedToken, jti) is None:
        session.add(
            RevokedToken(
                jti=jti,
                organisation_id=user.organisation_id,
                user_id=user.id,
                expires_at=expires_at,
            )
        )


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every token the user holds: bump the generation and revoke refresh families."""
    user.token_generation = (user.token_generation or 0) + 1
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.organisation_id == user.organisation_id, RefreshToken.user_id == user.id)
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )


def is_access_revoked(session: Session, jti: str) -> bool:
    return session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def is_refresh_usable(session: Session, jti: str) -> bool:
    row = session.get(RefreshToken, jti)
    return row is not None and not row.revoked


def purge_expired(session: Session, now: datetime | None = None) -> None:
    """Drop token rows whose tokens would be rejected as expired anyway."""
    now = now or utcnow()
    session.query(RevokedToken).filter(RevokedToken.expires_at < now).delete()
    session.query(RefreshToken).filter(RefreshToken.expires_at < now).delete()
