"""The signed-in user: who am I, and change my password."""

from __future__ import annotations

from flask import Blueprint, current_app

from rapportnotes.api.common import actor_for, load_body, query_args
from rapportnotes.errors import ApiError
from rapportnotes.extensions import db
from rapportnotes.schemas.auth import PasswordChangeIn
from rapportnotes.schemas.user import MeOut
from rapportnotes.security import account, authenticated, me
from rapportnotes.services import passwords, tokens
from rapportnotes.services.audit import record_event

bp = Blueprint("me", __name__, url_prefix="/me")
_out = MeOut()


@bp.get("")
@authenticated
def get_me():
    query_args(set())
    return _out.dump(me())


@bp.post("/password")
@authenticated
def change_password():
    """200 with fresh tokens: every other token of the user stops working, this client goes on."""
    user = account()
    data = load_body(PasswordChangeIn())
    if not passwords.verify_password(user.password_hash, data["current_password"]):
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
