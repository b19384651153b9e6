"""Issuing, rotating and revoking tokens.

Access tokens are short-lived and checked against a revocation table; refresh tokens are
recorded when issued (with the access token issued beside them) so each can be used exactly
once. Using one a second time means it leaked: the whole family (every token descended from the
same login, refresh and access alike) is revoked.

Concurrent requests on the same tokens are the normal case for a leaked token, so every change
here is safe against them: a change to a user's refresh tokens first locks the user's row (so
they take turns, always user row first, then tokens), a user's token generation only moves from
the value the request read, and a revocation row that a concurrent request already wrote is
simply there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from rapportnotes.errors import ApiError
from rapportnotes.models import RefreshToken, RevokedToken, User
from rapportnotes.models.types import utcnow
from rapportnotes.services.inserts import insert_or_ignore
from rapportnotes.services.locks import lock_user

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
    decoded, decoded_access = decode_token(refresh), decode_token(access)
    session.add(
        RefreshToken(
            jti=decoded["jti"],
            organisation_id=user.organisation_id,
            user_id=user.id,
            family_id=family_id or uuid.uuid4().hex,
            issued_at=utcnow(),
            expires_at=datetime.fromtimestamp(decoded["exp"], UTC),
            access_jti=decoded_access["jti"],
            access_expires_at=datetime.fromtimestamp(decoded_access["exp"], UTC),
        )
    )
    return TokenPair(access, refresh, int(access_ttl.total_seconds()))


class RefreshReused(Exception):
    """A refresh token was presented after it had been used or revoked."""


def rotate(session: Session, user: User | Principal, jti: str, access_ttl: timedelta) -> TokenPair:
    """Spend refresh token ``jti`` and issue its successor in the same family.

    Concurrent uses of one token take turns (``locks.lock_user``): the first spends it, every later
    one finds it spent and revokes the family.
    """
    row = session.get(RefreshToken, (user.organisation_id, jti))
    if row is None or row.user_id != user.id:
        raise RefreshReused()
    lock_user(session, row.organisation_id, row.user_id)
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.organisation_id == row.organisation_id,
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
    """Revoke every refresh token of the family and every access token issued with one of them
    that has not expired yet. The caller holds the family's user locked (``locks.lock_user``)."""
    now = utcnow()
    r = RefreshToken.__table__.c
    session.execute(
        insert_or_ignore(session, RevokedToken.__table__).from_select(
            ["jti", "organisation_id", "user_id", "expires_at", "revoked_at"],
            select(r.access_jti, r.organisation_id, r.user_id, r.access_expires_at, literal(now))
            .where(r.organisation_id == organisation_id, r.family_id == family_id,
                   r.access_jti.is_not(None), r.access_expires_at > now),
        )
    )
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.organisation_id == organisation_id, RefreshToken.family_id == family_id)
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )


def revoke_refresh_token(session: Session, user: User | Principal, jti: str) -> bool:
    """Revoke the family of a refresh token the user owns; False when it is not theirs."""
    row = session.get(RefreshToken, (user.organisation_id, jti))
    if row is None or row.user_id != user.id:
        return False
    lock_user(session, row.organisation_id, row.user_id)
    revoke_family(session, row.organisation_id, row.family_id)
    return True


def revoke_access_token(session: Session, user: User | Principal, jti: str, expires_at: datetime) -> bool:
    """Revoke an access token; False when it already was (a concurrent logout got there first).

    The user's row is locked first, as for every token change: a logout that also revokes a
    refresh token's family would otherwise hold this row while waiting for the user lock, and a
    concurrent reuse detection revoking the same family would wait for the row: a deadlock."""
    lock_user(session, user.organisation_id, user.id)
    inserted = session.execute(
        insert_or_ignore(session, RevokedToken.__table__).values(
            jti=jti, organisation_id=user.organisation_id, user_id=user.id, expires_at=expires_at,
            revoked_at=utcnow(),
        ).returning(RevokedToken.__table__.c.jti)
    ).first()
    return inserted is not None


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every token the user holds: bump the generation and revoke refresh families.

    The generation moves only from the value this request loaded. When a concurrent request
    (another password change, a reset, a deactivation) moved it first, this one is refused with
    a 409 and changes nothing: otherwise both would write the same next generation, and the
    tokens the first one issued would outlive the second one's change. A retry then checks
    again against what the other request stored.
    """
    generation = user.token_generation
    bumped = session.execute(
        update(User)
        .where(User.organisation_id == user.organisation_id, User.id == user.id,
               User.token_generation == generation)
        .values(token_generation=generation + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if bumped != 1:
        raise ApiError(409, "The account was changed by another request at the same time; please retry.")
    set_committed_value(user, "token_generation", generation + 1)  # the UPDATE locked the user row
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.organisation_id == user.organisation_id, RefreshToken.user_id == user.id)
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )


def is_access_revoked(session: Session, organisation_id: uuid.UUID, jti: str) -> bool:
    return session.scalar(select(RevokedToken.jti).where(
        RevokedToken.organisation_id == organisation_id, RevokedToken.jti == jti)) is not None


def is_refresh_usable(session: Session, organisation_id: uuid.UUID, jti: str) -> bool:
    row = session.get(RefreshToken, (organisation_id, jti))
    return row is not None and not row.revoked


def purge_expired(session: Session, now: datetime | None = None) -> None:
    """Drop token rows whose tokens would be rejected as expired anyway."""
    now = now or utcnow()
    session.query(RevokedToken).filter(RevokedToken.expires_at < now).delete()
    session.query(RefreshToken).filter(RefreshToken.expires_at < now).delete()
