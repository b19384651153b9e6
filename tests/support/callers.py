"""What can happen to a caller between two requests: each a ``world.run`` change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt

from rapportnotes.models import User


def deactivate(s, user):
    s.get(User, (uuid.UUID(user.org_id), uuid.UUID(user.id))).is_active = False


def move_generation(s, user):  # what a password change or "log out everywhere" does
    s.get(User, (uuid.UUID(user.org_id), uuid.UUID(user.id))).token_generation += 1


def make_admin(s, user):
    s.get(User, (uuid.UUID(user.org_id), uuid.UUID(user.id))).role = "admin"


def revoke_token(s, user):
    from rapportnotes.services import tokens

    jti = pyjwt.decode(user.access_token, options={"verify_signature": False})["jti"]
    tokens.revoke_access_token(s, s.get(User, (uuid.UUID(user.org_id), uuid.UUID(user.id))), jti,
                               datetime.now(UTC) + timedelta(hours=1))
