"""Users of the caller's organisation (admin only)."""

from __future__ import annotations

from flask import Blueprint, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rapportnotes.api.common import (
    actor_for,
    bad_query,
    decode_cursor,
    encode_cursor,
    int_arg,
    load_body,
    page_response,
    query_args,
)
from rapportnotes.errors import ApiError, not_found
from rapportnotes.extensions import db
from rapportnotes.models import ROLES, TeamMember, User
from rapportnotes.models.types import code_point_order
from rapportnotes.schemas.user import UserIn, UserOut, UserPatch
from rapportnotes.security import Principal, me, parse_id, roles_required
from rapportnotes.services import passwords, tokens
from rapportnotes.services.audit import record_event
from rapportnotes.services.locks import lock_user
from rapportnotes.services.organisations import (
    create_user,
    email_conflict,
    email_taken,
    may_hold_membership,
)

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
    try:
        record_event(db.session, actor_for(admin), "user.create", target_type="user",
                     target_id=user.id, status=201)
        db.session.commit()
    except IntegrityError:  # a concurrent request took the email between check and insert
        db.session.rollback()
        if email_taken(db.session, data["email"]):
            raise email_conflict()
        raise
    return _out.dump(user), 201, {"Location": url_for("api.users.get", user_id=user.id)}


@bp.get("")
@roles_required("admin")
def list_():
    """Ordered by email (unique), keyset-paginated on it."""
    admin = me()
    args = query_args({"limit", "cursor", "role"})
    limit = int_arg(args, "limit", 50, 1, 200)
    after = decode_cursor(args.get("cursor"), 1)
    q = select(User).where(User.organisation_id == admin.organisation_id)
    if "role" in args:
        if args["role"] not in ROLES:
            raise bad_query("role", "Must be coach, supervisor or admin.")
        q = q.where(User.role == args["role"])
    email = code_point_order(User.email, db.session.get_bind().dialect)
    if after:
        q = q.where(email > after[0])
    rows = list(db.session.scalars(q.order_by(email).limit(limit + 1)))
    nxt = encode_cursor([rows[limit - 1].email]) if len(rows) > limit else None
    return page_response([_out.dump(u) for u in rows[:limit]], nxt, "api.users.list_")


@bp.get("/<user_id>")
@roles_required("admin")
def get(user_id: str):
    query_args(set())
    return _out.dump(_get(user_id))


def _check_memberships(user: User, new_role: str) -> None:
    """A role change may not leave the user in a team role their new role cannot hold."""
    held = set(db.session.scalars(
        select(TeamMember.role).where(TeamMember.organisation_id == user.organisation_id,
                                      TeamMember.user_id == user.id)
    ))
    if not all(may_hold_membership(new_role, r) for r in held):
        raise ApiError(409, "The user's team memberships do not allow that role; change them first.",
                       errors={"role": [f"The user is a team member who cannot be a {new_role}."]})


def _update_action(user: User, data: dict) -> str:
    """One event per change request, named after its most significant part."""
    if "password" in data:
        return "user.password_reset"
    if "is_active" in data and data["is_active"] != user.is_active:
        return "user.activate" if data["is_active"] else "user.deactivate"
    if "role" in data and data["role"] != user.role:
        return "user.role_change"
    return "user.update"


def _keep_an_admin(admin: Principal, user: User, data: dict) -> None:
    """Demoting or deactivating an admin must leave the organisation an active admin.

    Each request alone refuses only "yourself"; two admins demoting each other at the same
    moment would each still see the other in place. So the organisation's admin rows are
    locked first (``FOR UPDATE`` on PostgreSQL, SQLite's one write lock there) and read after
    the lock is held: the second request then sees the first one's change.
    """
    if data.get("role", "admin") == "admin" and data.get("is_active") is not False:
        return
    conn = db.session.connection()
    if conn.dialect.name == "sqlite":
        # pysqlite opens its transaction only at the first write, so the read below would be
        # unprotected: take SQLite's write lock first (nothing has been written yet here).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    admins = set(db.session.scalars(
        select(User.id)
        .where(User.organisation_id == admin.organisation_id, User.role == "admin",
               User.is_active.is_(True))
        .with_for_update()
    ))
    if admin.id not in admins:  # demoted or deactivated since this request's token check
        raise ApiError(403, "Your role may not use this endpoint.")
    if user.id in admins and not admins - {user.id}:
        raise ApiError(409, "The organisation must keep at least one active admin.")


@bp.patch("/<user_id>")
@roles_required("admin")
def update(user_id: str):
    """An admin may not deactivate or demote themself, and the organisation always keeps an
    active admin: it keeps a way in. Nor reset their own password: changing one's password needs
    the current one (SPEC §8), so a stolen admin token cannot lock the admin out of their account."""
    admin = me()
    user = _get(user_id)
    data = load_body(UserPatch())
    if user.id == admin.id and (
        data.get("is_active") is False or data.get("role", "admin") != "admin"
    ):
        raise ApiError(409, "You cannot deactivate or demote yourself.")
    if user.id == admin.id and "password" in data:
        raise ApiError(409, "Change your own password with POST /me/password; it needs the current one.")
    _keep_an_admin(admin, user, data)
    if "role" in data:  # checked against the memberships, which a concurrent PUT may be adding:
        lock_user(db.session, user.organisation_id, user.id)  # both lock the user first
        db.session.refresh(user)
    if data.get("role", user.role) != user.role:
        _check_memberships(user, data["role"])
    action = _update_action(user, data)
    ends_sessions = "password" in data or (data.get("is_active") is False and user.is_active)
    if "display_name" in data:
        user.display_name = data["display_name"]
    if "role" in data:
        user.role = data["role"]
    if "is_active" in data:
        user.is_active = data["is_active"]
    if "password" in data:
        user.password_hash = passwords.hash_password(data["password"])
    if ends_sessions:
        tokens.end_all_sessions(db.session, user)
    record_event(db.session, actor_for(admin), action, target_type="user", target_id=user.id)
    db.session.commit()
    return _out.dump(user)
