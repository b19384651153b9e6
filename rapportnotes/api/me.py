"""The signed-in user: who am I, and change my password."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from rapportnotes.api.common import actor_for, load_body, query_args
from rapportnotes.attempts import only_failures_count
from rapportnotes.errors import ApiError
from rapportnotes.extensions import db, limiter
from rapportnotes.schemas.auth import PasswordChangeIn
from rapportnotes.schemas.user import MeOut
from rapportnotes.security import account, authenticated, me, signed_subject
from rapportnotes.services import passwords, tokens
from rapportnotes.services.audit import record_event

bp = Blueprint("me", __name__, url_prefix="/me")
_out = MeOut()


@bp.get("")
@authenticated
def get_me():
    query_args(set())
    return _out.dump(me())


def _password_limit() -> str:
    return current_app.config["PASSWORD_CHANGE_LIMIT_PER_USER"]


def _account_key() -> str:
    """Rate-limit key: the account a verified access token names. Only a request whose current
    password was wrong counts against it."""
    return f"password-change:{signed_subject()}"


def _token_does_not_verify() -> bool:
    """Such a request is a 401 anyway, and is not limited: a forged token naming someone must not
    learn whether that account is being guessed at."""
    return signed_subject() is None


def _wrong_current_password(response) -> bool:
    return bool(g.get("rn_wrong_current_password"))


@bp.post("/password")
@limiter.limit(_password_limit, key_func=_account_key, exempt_when=_token_does_not_verify)
@only_failures_count(_wrong_current_password)
@authenticated
def change_password():
    """200 with fresh tokens: every other token of the user stops working, this client goes on.

    Wrong current passwords are rate limited per account like failed logins: a stolen access
    token must not become a way to guess the password it was issued for."""
    user = account()
    data = load_body(PasswordChangeIn())
    if not passwords.verify_password(user.password_hash, data["current_password"]):
        g.rn_wrong_current_password = True
        record_event(db.session, actor_for(user), "user.password_change", target_type="user",
                     target_id=user.id, status=401)
        db.session.commit()
        raise ApiError(401, "The current password is wrong.",
                       headers={"WWW-Authenticate": "Bearer"})
    if data["new_password"] == data["current_password"]:
        raise ApiError(422, "The new password must differ from the current one.",
                       errors={"new_password": ["Must differ from the current password."]})
    user.password_hash = passwords.hash_password(data["new_password"])
    tokens.end_all_sessions(db.session, user)
    pair = tokens.issue_pair(db.session, user, current_app.config["JWT_ACCESS_TOKEN_EXPIRES"])
    record_event(db.session, actor_for(user), "user.password_change", target_type="user",
                 target_id=user.id)
    db.session.commit()
    return pair.as_json()
