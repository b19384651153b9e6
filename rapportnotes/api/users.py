"""Users of the caller's organisation (admin only)."""

from __future__ import annotations

from flask import Blueprint, url_for
from sqlalchemy import select

from rapportnotes.api.common import (
    actor_for,
    decode_cursor,
    encode_cursor,
    int_arg,
    load_body,
    page_response,
    query_args,
)
from rapportnotes.errors import ApiError, not_found
from rapportnotes.extensions import db
from rapportnotes.models import User
from rapportnotes.schemas.user import UserIn, UserOut, UserPatch
from rapportnotes.security import me, parse_id, roles_required
from rapportnotes.services import passwords, tokens
from rapportnotes.services.audit import record_event
from rapportnotes.services.organisations import create_user

bp = Blueprint("users", __name__, url_prefix="/users")
_out = UserOut()


def _get(user_id: str) -> User:
    uid = parse_id(user_id, "user")
    user = db.session.get(User, (me().organisation_id, uid))
    if user is None:
        raise not_found("user")
    return user


@bp.post("")
@roles_required("admin")
def create():
    admin = me()
    data = load_body(UserIn())
    user = create_user(db.session, admin.organisation_id, **data)
    record_event(db.session, actor_for(admin), "user.create", target_type="user",
                 target_id=user.id, status=201)
    db.session.commit()
    return _out.dump(user), 201, {"Location": url_for("api.users.get", user_id=user.id)}


@bp.get("")
@roles_required("admin")
def list_():
    admin = me()
    args = query_args({"limit", "cursor", "role"})
    limit = int_arg(args, "limit", 50, 1, 200)
    after = decode_cursor(args.get("cursor"), 1)
    q = select(User).where(User.organisation_id == admin.organisation_id)
    if "role" in args:
        if args["role"] not in ("coach", "supervisor", "admin"):
            from rapportnotes.api.common import bad_query

            raise bad_query("role", "Must be coach, supervisor or admin.")
        q = q.where(User.role == args["role"])
    if after:
        q = q.where(User.email > after[0])
    rows = list(db.session.scalars(q.order_by(User.email).limit(limit + 1)))
    nxt = encode_cursor([rows[limit - 1].email]) if len(rows) > limit else None
    return page_response([_out.dump(u) for u in rows[:limit]], nxt, "api.users.list_")


@bp.get("/<user_id>")
@roles_required("admin")
def get(user_id: str):
    return _out.dump(_get(user_id))


@bp.patch("/<user_id>")
@roles_required("admin")
def update(user_id: str):
    admin = me()
    user = _get(user_id)
    data = load_body(UserPatch())
    if user.id == admin.id and (
        data.get("is_active") is False or ("role" in data and data["role"] != "admin")
    ):
        raise ApiError(409, "You cannot deactivate or demote yourself.")
    ends_sessions = False
    for field in ("display_name", "role"):
        if field in data:
            setattr(user, field, data[field])
    if "is_active" in data and data["is_active"] != user.is_active:
        user.is_active = data["is_active"]
        ends_sessions = not data["is_active"]
    if "password" in data:
        user.password_hash = passwords.hash_password(data["password"])
        ends_sessions = True
    if ends_sessions:
        tokens.end_all_sessions(db.session, user)
    record_event(db.session, actor_for(admin), "user.update", target_type="user",
                 target_id=user.id)
    db.session.commit()
    return _out.dump(user)
