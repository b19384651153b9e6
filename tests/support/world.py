"""Builders for test data. Each call opens its own app context and returns plain values
(ids as strings, emails, auth headers), so tests never share ORM objects with requests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Flask

PASSWORD = "correct-horse-battery-staple"
T = TypeVar("T")
_seq = itertools.count(1)


@dataclass
class UserRef:
    id: str
    org_id: str
    email: str
    role: str
    password: str
    access_token: str = ""
    refresh_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class World:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, ...)`` in a fresh app context and commit."""
        from rapportnotes.extensions import db

        with self.app.app_context():
            result = fn(db.session, *args, **kwargs)
            db.session.commit()
            return result

    def org(self, name: str | None = None, timezone: str = "UTC") -> str:
        from rapportnotes.services.organisations import create_organisation

        return self.run(lambda s: str(create_organisation(s, name or f"Org {next(_seq)}", timezone).id))

    def user(self, org_id: str, role: str = "coach", *, email: str | None = None,
             password: str = PASSWORD, display_name: str | None = None,
             is_active: bool = True, login: bool = True) -> UserRef:
        from rapportnotes.services.organisations import create_user

        email = email or f"{role}{next(_seq)}@example.org"

        def make(s):
            u = create_user(s, uuid.UUID(org_id), email=email, role=role, password=password,
                            display_name=display_name or email.split("@")[0],
                            is_active=is_active)
            s.flush()
            return str(u.id)

        ref = UserRef(self.run(make), org_id, email.lower(), role, password)
        if login and is_active:
            self.login(ref)
        return ref

    def login(self, ref: UserRef) -> UserRef:
        """Issue real tokens for ``ref`` exactly as the login endpoint would."""
        from rapportnotes.models import User
        from rapportnotes.services import tokens

        def issue(s):
            u = s.get(User, (uuid.UUID(ref.org_id), uuid.UUID(ref.id)))
            return tokens.issue_pair(s, u, self.app.config["JWT_ACCESS_TOKEN_EXPIRES"])

        pair = self.run(issue)
        ref.access_token, ref.refresh_token = pair.access_token, pair.refresh_token
        return ref

    def team(self, org_id: str, name: str | None = None, *, supervisors: list[UserRef] = (),
             coaches: list[UserRef] = ()) -> str:
        from rapportnotes.models import Team, TeamMember

        def make(s):
            t = Team(organisation_id=uuid.UUID(org_id), name=name or f"Team {next(_seq)}")
            s.add(t)
            s.flush()
            for role, refs in (("supervisor", supervisors), ("coach", coaches)):
                for r in refs:
                    t.members.append(TeamMember(organisation_id=t.organisation_id,
                                                user_id=uuid.UUID(r.id), role=role))
            return str(t.id)

        return self.run(make)

    def count(self, model: Any, **filters: Any) -> int:
        from sqlalchemy import func, select

        def q(s):
            stmt = select(func.count()).select_from(model)
            for k, v in filters.items():
                stmt = stmt.where(getattr(model, k) == v)
            return s.scalar(stmt)

        return self.run(q)

    def audit_actions(self, org_id: str) -> list[tuple[str, int]]:
        """(action, status) of every audit event of an organisation, oldest first."""
        from sqlalchemy import select

        from rapportnotes.models import AuditEvent

        return self.run(lambda s: [
            (e.action, e.status) for e in s.scalars(
                select(AuditEvent).where(AuditEvent.organisation_id == uuid.UUID(org_id))
                .order_by(AuditEvent.at, AuditEvent.id))
        ])


@dataclass
class Cast:
    """Two organisations with every role, for authorization tests.

    Org A: admin, supervisor (supervises coach and coach2 via team), coach, coach2,
    lone_coach (in no team the supervisor leads), other_supervisor (leads an empty team).
    Org B: admin_b, supervisor_b, coach_b (in team_b).
    """

    org: str
    admin: UserRef
    supervisor: UserRef
    coach: UserRef
    coach2: UserRef
    lone_coach: UserRef
    other_supervisor: UserRef
    team: str
    other_team: str
    org_b: str
    admin_b: UserRef
    supervisor_b: UserRef
    coach_b: UserRef
    team_b: str


def build_cast(world: World, timezone: str = "UTC") -> Cast:
    org = world.org("Org A", timezone)
    admin = world.user(org, "admin")
    sup = world.user(org, "supervisor")
    coach = world.user(org, "coach")
    coach2 = world.user(org, "coach")
    lone = world.user(org, "coach")
    other_sup = world.user(org, "supervisor")
    team = world.team(org, "Team A", supervisors=[sup], coaches=[coach, coach2])
    other_team = world.team(org, "Team A2", supervisors=[other_sup], coaches=[lone])
    org_b = world.org("Org B", timezone)
    admin_b = world.user(org_b, "admin")
    sup_b = world.user(org_b, "supervisor")
    coach_b = world.user(org_b, "coach")
    team_b = world.team(org_b, "Team B", supervisors=[sup_b], coaches=[coach_b])
    return Cast(org, admin, sup, coach, coach2, lone, other_sup, team, other_team,
                org_b, admin_b, sup_b, coach_b, team_b)


def now_utc() -> datetime:
    return datetime.now(UTC)
