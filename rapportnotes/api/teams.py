"""Teams and their membership. Admins manage; supervisors read the teams they supervise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, url_for
from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

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
from rapportnotes.models import Team, TeamMember, User
from rapportnotes.models.types import code_point_order
from rapportnotes.schemas.team import MemberIn, TeamIn, TeamOut, TeamPatch
from rapportnotes.security import me, parse_id, roles_required, supervises_team
from rapportnotes.services.audit import record_event
from rapportnotes.services.inserts import upsert
from rapportnotes.services.locks import lock_user
from rapportnotes.services.organisations import may_hold_membership

bp = Blueprint("teams", __name__, url_prefix="/teams")
_out = TeamOut()


def get_visible_team(team_id: str) -> Team:
    """The team if the caller may see it (admin: any in the org; supervisor: their own)."""
    user = me()
    tid = parse_id(team_id, "team")
    team = db.session.get(Team, (user.organisation_id, tid))
    if team is None or (user.role == "supervisor" and not supervises_team(user, tid)):
        raise not_found("team")
    return team


def _name_taken(organisation_id, name: str, exclude=None) -> bool:
    q = select(Team.id).where(Team.organisation_id == organisation_id, Team.name == name)
    if exclude is not None:
        q = q.where(Team.id != exclude)
    return db.session.scalar(q) is not None


def _conflict() -> ApiError:
    return ApiError(409, "A team with that name already exists.",
                    errors={"name": ["Already in use."]})


@contextmanager
def _name_race(organisation_id, name: str, exclude=None) -> Iterator[None]:
    """Around the write (audit flush and commit): a concurrent request that took the name first
    is a 409, anything else re-raises."""
    try:
        yield
    except IntegrityError:
        db.session.rollback()
        if _name_taken(organisation_id, name, exclude):
            raise _conflict()
        raise


@bp.post("")
@roles_required("admin")
def create():
    admin = me()
    data = load_body(TeamIn())
    if _name_taken(admin.organisation_id, data["name"]):
        raise _conflict()
    team = Team(organisation_id=admin.organisation_id, id=uuid.uuid4(), name=data["name"])
    db.session.add(team)
    with _name_race(admin.organisation_id, data["name"]):
        record_event(db.session, actor_for(admin), "team.create", target_type="team",
                     target_id=team.id, status=201)
        db.session.commit()
    return _out.dump(team), 201, {"Location": url_for("api.teams.get", team_id=team.id)}


@bp.get("")
@roles_required("admin", "supervisor")
def list_():
    user = me()
    args = query_args({"limit", "cursor"})
    limit = int_arg(args, "limit", 50, 1, 200)
    after = decode_cursor(args.get("cursor"), 2)
    name = code_point_order(Team.name, db.session.get_bind().dialect)
    # Members are loaded on use elsewhere; a page of teams loads them all in one more query.
    q = select(Team).options(selectinload(Team.members)).where(Team.organisation_id == user.organisation_id)
    if user.role == "supervisor":
        q = q.where(Team.id.in_(
            select(TeamMember.team_id).where(
                TeamMember.organisation_id == user.organisation_id,
                TeamMember.user_id == user.id,
                TeamMember.role == "supervisor",
            )
        ))
    if after:
        try:
            after_id = uuid.UUID(after[1])
        except ValueError:
            raise bad_query("cursor", "Invalid cursor.")
        q = q.where(tuple_(name, Team.id) > (after[0], after_id))
    rows = list(db.session.scalars(q.order_by(name, Team.id).limit(limit + 1)))
    last = rows[limit - 1] if len(rows) > limit else None
    nxt = encode_cursor([last.name, str(last.id)]) if last else None
    return page_response([_out.dump(t) for t in rows[:limit]], nxt, "api.teams.list_")


@bp.get("/<team_id>")
@roles_required("admin", "supervisor")
def get(team_id: str):
    query_args(set())
    return _out.dump(get_visible_team(team_id))


@bp.patch("/<team_id>")
@roles_required("admin")
def update(team_id: str):
    admin = me()
    team = get_visible_team(team_id)
    data = load_body(TeamPatch())
    name = data.get("name", team.name)
    if name != team.name:
        if _name_taken(admin.organisation_id, name, exclude=team.id):
            raise _conflict()
        team.name = name
    with _name_race(admin.organisation_id, name, exclude=team.id):
        record_event(db.session, actor_for(admin), "team.update", target_type="team",
                     target_id=team.id)
        db.session.commit()
    return _out.dump(team)


@bp.put("/<team_id>/members/<user_id>")
@roles_required("admin")
def put_member(team_id: str, user_id: str):
    admin = me()
    team = get_visible_team(team_id)
    uid = parse_id(user_id, "user")
    user = db.session.get(User, (admin.organisation_id, uid))
    if user is None:
        raise not_found("user")
    data = load_body(MemberIn())
    # The user's role decides which membership they may hold, and a concurrent role change
    # checks the memberships: both lock the user first and read it afresh, so they take turns.
    lock_user(db.session, admin.organisation_id, uid)
    db.session.refresh(user)
    if not may_hold_membership(user.role, data["role"]):
        raise ApiError(422, "That user's role cannot hold this membership.",
                       errors={"role": [f"A {user.role} cannot be a {data['role']} member."]})
    db.session.execute(upsert(db.session, TeamMember.__table__, ["organisation_id", "team_id", "user_id"],
                              {"organisation_id": admin.organisation_id, "team_id": team.id,
                               "user_id": uid, "role": data["role"]}))
    record_event(db.session, actor_for(admin), "team.member_put", target_type="team_member",
                 target_id=f"{team.id}/{uid}")
    db.session.commit()
    db.session.expire(team, ["members"])
    return _out.dump(team)


@bp.delete("/<team_id>/members/<user_id>")
@roles_required("admin")
def delete_member(team_id: str, user_id: str):
    admin = me()
    team = get_visible_team(team_id)
    uid = parse_id(user_id, "user")
    gone = db.session.execute(
        delete(TeamMember)
        .where(TeamMember.organisation_id == admin.organisation_id, TeamMember.team_id == team.id,
               TeamMember.user_id == uid)
        .execution_options(synchronize_session=False)
    ).rowcount
    if gone != 1:  # never there, or a concurrent request removed it first
        raise not_found("team member")
    record_event(db.session, actor_for(admin), "team.member_delete", target_type="team_member",
                 target_id=f"{team.id}/{uid}", status=204)
    db.session.commit()
    return "", 204
